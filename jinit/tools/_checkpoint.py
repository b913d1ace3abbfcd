"""Checkpoint files: which reader opens a path, and jinit's casting policy and layouts.

Sources (all read without unpickling anything):

- a ``.safetensors`` file, or a sharded Hugging Face checkpoint (its
  ``*.safetensors.index.json``, or the folder holding it), via the ``safetensors`` library
  (:mod:`jinit.tools._ckpt_safetensors`);
- an orbax checkpoint folder (``StandardCheckpointer``/``PyTreeCheckpointer`` output, or a
  ``CheckpointManager`` step or root), via ``orbax.checkpoint``
  (:mod:`jinit.tools._ckpt_orbax`);
- a ``.npz`` file (:mod:`jinit.tools._ckpt_npz`).

Every reader gives names, shapes and dtypes before any data is read, so requests are checked
against the file first.
"""

from __future__ import annotations

import os
from typing import Literal

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from jinit.tools._ckpt_common import ArrayInfo as ArrayInfo
from jinit.tools._ckpt_common import Reader
from jinit.tools._ckpt_common import missing_error as missing_error

Casting = Literal["no", "safe", "same_kind", "unsafe"]
CASTINGS: tuple[str, ...] = ("no", "safe", "same_kind", "unsafe")

_PICKLES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
_SUPPORTED = (
    "a .safetensors file, a sharded safetensors checkpoint (its .safetensors.index.json or "
    "its folder), an orbax checkpoint folder, or a .npz file"
)


def open_checkpoint(path: str | os.PathLike, only: str | None = None) -> Reader:
    """The reader for ``path``; raises FileNotFoundError or a ValueError naming the path.

    With ``only``, readers that can skip the other arrays' headers (``.npz`` members,
    the shards of a sharded checkpoint) read just what array ``only`` needs.
    """
    from jinit.tools import _ckpt_npz, _ckpt_orbax, _ckpt_safetensors

    path = os.path.abspath(os.fspath(path))
    lower = path.lower()
    if lower.endswith(_PICKLES):
        raise ValueError(
            f"{path!r} looks like a pickle (PyTorch .pt/.bin or a pickle file); jinit never "
            "unpickles files. Save the state dict with safetensors "
            "(safetensors.torch.save_file(model.state_dict(), 'model.safetensors')) or as .npz."
        )
    if os.path.isdir(path):
        index = _ckpt_safetensors.find_index(path)
        if index is not None:
            return _ckpt_safetensors.ShardedSafetensors(index, only)
        found = _ckpt_orbax.resolve(path)
        if found is not None:
            return _ckpt_orbax.OrbaxCheckpoint(*found)
        files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
        if len(files) == 1:
            return _ckpt_safetensors.SafetensorsFile(os.path.join(path, files[0]))
        raise ValueError(
            f"Unsupported checkpoint folder {path!r}: it holds no *.safetensors.index.json, "
            f"no orbax checkpoint and {len(files)} .safetensors files (expected {_SUPPORTED})."
        )
    if lower.endswith(".safetensors.index.json"):
        return _ckpt_safetensors.ShardedSafetensors(path, only)
    if lower.endswith(".safetensors"):
        return _ckpt_safetensors.SafetensorsFile(path)
    if lower.endswith(".npz"):
        return _ckpt_npz.NpzFile(path, only)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    raise ValueError(f"Unsupported checkpoint {path!r}: expected {_SUPPORTED}.")


def read_header(path: str | os.PathLike) -> dict[str, ArrayInfo]:
    """Names, shapes and dtypes of every array in a checkpoint, without reading data."""
    return dict(open_checkpoint(path).infos())


def read_array(path: str | os.PathLike, name: str) -> np.ndarray:
    """Reads one array from a checkpoint (only its bytes), never unpickling."""
    return open_checkpoint(path).read(name)


def read_all(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every array of a checkpoint into a dict ``name -> np.ndarray`` (file order)."""
    reader = open_checkpoint(path)
    return {n: np.asarray(a) for n, a in reader.read_many(dict.fromkeys(reader.infos())).items()}


# --------------------------------------------------------------------------------------
# Casting policy
# --------------------------------------------------------------------------------------


def _category(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    if jnp.issubdtype(dtype, jnp.floating):
        return "float"
    if jnp.issubdtype(dtype, jnp.integer):
        return "int"
    return "other"


def can_cast(src: np.dtype, dst: np.dtype, casting: str) -> bool:
    """Whether jinit's casting rule allows the dtype pair (values are checked separately).

    - ``"no"``: the dtypes must be equal.
    - ``"safe"``: only casts that keep every value (``np.can_cast(..., "safe")``, which
      knows bfloat16 and float8 through ml_dtypes): e.g. bfloat16 -> float32.
    - ``"same_kind"`` (the default): any float -> any float (any precision, bfloat16
      included), float -> complex, int -> int; never across kinds (no int -> float,
      float -> int, complex -> float, bool -> anything). The values must fit: see
      :func:`cast_checked`.
    - ``"unsafe"``: anything numeric, with NumPy's conversion (integers wrap, floats
      overflow to inf).
    """
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst or casting == "unsafe":
        return True
    if casting == "no":
        return False
    if casting == "safe":
        try:
            return bool(np.can_cast(src, dst, "safe"))
        except TypeError:
            return False
    a, b = _category(src), _category(dst)
    return a == b or (a == "float" and b == "complex")


def cast_checked(arr, dst: np.dtype, casting: str, what: str):
    """``arr`` cast to ``dst``; a ValueError naming ``what`` if a value does not fit.

    Under every casting but ``"unsafe"``, an integer outside ``dst``'s range (which NumPy
    would wrap: int64 ``2**62 + 5`` -> int32 ``5``) and a finite float beyond ``dst``'s
    largest value (which would become ``inf``: float64 ``1e300`` -> float32) are errors.
    Rounding to ``dst``'s precision, and tiny values flushing towards zero, are what a
    precision change means and are allowed. Works on NumPy and (sharded) jax arrays.
    """
    src, dst = np.dtype(arr.dtype), np.dtype(dst)
    if src == dst:
        return arr
    xp = jnp if isinstance(arr, jax.Array) else np
    a, b = _category(src), _category(dst)
    if casting != "unsafe" and a == "int" and b == "int" and arr.size:
        info = np.iinfo(dst)
        lo, hi = int(xp.min(arr)), int(xp.max(arr))
        if lo < info.min or hi > info.max:
            bad = lo if lo < info.min else hi
            raise ValueError(
                f"{what}: the stored value {bad} does not fit the requested dtype {dst.name} "
                f"(range [{info.min}, {info.max}]); casting would wrap it around. Request a "
                "wider dtype, or pass casting='unsafe' to accept NumPy's conversion."
            )
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked just below
        out = arr.astype(dst)
    if casting != "unsafe" and a in ("float", "complex") and arr.size:
        overflow = xp.isinf(out) & xp.isfinite(arr)
        if bool(overflow.any()):
            bad = np.asarray(arr).reshape(-1)[int(xp.argmax(overflow.reshape(-1)))]
            raise ValueError(
                f"{what}: the stored value {bad!s} is beyond the largest {dst.name} "
                f"({ml_dtypes.finfo(dst).max!s}) and would become inf. Request a wider dtype, "
                "or pass casting='unsafe' to accept NumPy's conversion."
            )
    return out


def check_casting(casting: str) -> str:
    if casting not in CASTINGS:
        options = ", ".join(repr(c) for c in CASTINGS)
        raise ValueError(f"`casting` must be one of {options}; got {casting!r}.")
    return casting


def cast_error(what: str, src: np.dtype, dst: np.dtype, casting: str) -> TypeError:
    return TypeError(
        f"{what}: cannot cast the stored dtype {np.dtype(src).name} to the requested dtype "
        f"{np.dtype(dst).name} under casting={casting!r}. Pass casting='unsafe' (or "
        "'same_kind' for a float precision change) if this conversion is intended."
    )


# --------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------


def torch_to_jax_kernel(arr: np.ndarray) -> np.ndarray:
    """PyTorch weight layout -> JAX kernel layout.

    Linear ``(out, in)`` -> ``(in, out)``; Conv ``(out, in/groups, *k)`` ->
    ``(*k, in/groups, out)``. Arrays with fewer than 2 dimensions are returned as is.
    """
    if arr.ndim < 2:
        return arr
    return np.transpose(arr, (*range(2, arr.ndim), 1, 0))


def torch_to_jax_conv_transpose_kernel(arr: np.ndarray, *, transpose_kernel: bool) -> np.ndarray:
    """PyTorch ``ConvTranspose`` weight ``(in, out, *k)`` -> Flax ``ConvTranspose`` kernel.

    PyTorch's transposed convolution is the gradient of a convolution: it correlates the
    stride-dilated input with the spatially flipped kernel. Flax's ``ConvTranspose``
    (``jax.lax.conv_transpose``) does not flip unless ``transpose_kernel=True``, so:

    - ``transpose_kernel=False`` (Flax's default; kernel ``(*k, in, out)``): the axes are
      moved to ``(*k, in, out)`` and every spatial axis is reversed;
    - ``transpose_kernel=True`` (kernel ``(*k, out, in)``): lax flips and swaps the kernel
      itself, so this is the Conv transpose ``(*k, out, in)`` with no reversal.

    With these kernels the layers compute what PyTorch does for ``groups=1`` (padding,
    ``output_padding`` and NCHW -> NHWC inputs stay the caller's job: PyTorch ``padding=0``
    is Flax ``padding="VALID"``).
    """
    spatial = tuple(range(2, arr.ndim))
    if transpose_kernel:
        return np.transpose(arr, (*spatial, 1, 0))
    moved = np.transpose(arr, (*spatial, 0, 1))
    return np.flip(moved, axis=tuple(range(arr.ndim - 2)))
