"""Reading arrays from ``.safetensors`` and ``.npz`` files, without unpickling anything.

Both readers look at a file's header first (names, shapes, dtypes) and read an array's
bytes only when it is asked for. ``.safetensors`` is parsed here (an 8-byte little-endian
header length, a JSON header, then raw little-endian C-order data), so the optional
``safetensors`` package is not needed at run time. ``.npz`` files are read with
``np.load(..., allow_pickle=False)``; object arrays (which only exist as pickles) are
refused with a message that says so.

Also here: the dtype casting policy shared by :func:`jinit.from_checkpoint` and
:func:`jinit.transfer`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

import jax.numpy as jnp
import ml_dtypes
import numpy as np

Casting = Literal["no", "safe", "same_kind", "unsafe"]
CASTINGS: tuple[str, ...] = ("no", "safe", "same_kind", "unsafe")

_SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "C64": np.dtype(np.complex64),
}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors spec's limit


@dataclass(frozen=True)
class ArrayInfo:
    """Name, shape and dtype of one array in a checkpoint (read from the header only)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def checkpoint_format(path: str) -> str:
    """Returns ``"safetensors"`` or ``"npz"`` from the file name; raises for anything else."""
    lower = path.lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith((".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")):
        raise ValueError(
            f"{path!r} looks like a pickle (PyTorch .pt/.bin or a pickle file); jinit never "
            "unpickles files. Save the state dict with safetensors "
            "(safetensors.torch.save_file(model.state_dict(), 'model.safetensors')) or as .npz."
        )
    raise ValueError(f"Unsupported checkpoint {path!r}: expected a .safetensors or .npz file.")


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------


def _bad(path: str, what: str) -> ValueError:
    return ValueError(f"{path!r} is not a valid safetensors file: {what}.")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_entry(path: str, name: str, entry: object, data_size: int) -> dict:
    """Validates one tensor's header entry; returns it with a tuple shape and offsets."""
    where = f"tensor {name!r}"
    if not isinstance(entry, dict):
        raise _bad(path, f"{where} has header entry {entry!r}, expected an object")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in entry:
            raise _bad(path, f"{where} has no {key!r} in its header entry {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _SAFETENSORS_DTYPES:
        raise ValueError(
            f"{path!r}: {where} has unsupported dtype {dtype!r}; "
            f"supported: {', '.join(_SAFETENSORS_DTYPES)}."
        )
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _bad(path, f"{where} has shape {shape!r}, expected a list of non-negative ints")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise _bad(path, f"{where} has data_offsets {offsets!r}, expected two ints [begin, end]")
    itemsize = _SAFETENSORS_DTYPES[dtype].itemsize
    if math.prod(d for d in shape if d) * itemsize >= 2**63:  # NumPy's limit, zeros aside
        raise _bad(path, f"{where} has shape {tuple(shape)}, too large for any array")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise _bad(
            path,
            f"{where} has data offsets {offsets} outside the data section "
            f"[0, {data_size}] (or begin > end)",
        )
    nbytes = math.prod(shape) * itemsize  # Python ints: no overflow
    if end - begin != nbytes:
        raise _bad(
            path,
            f"{where} has data offsets {offsets} ({end - begin} bytes), but its shape "
            f"{tuple(shape)} and dtype {dtype} need {nbytes} bytes",
        )
    return {"dtype": dtype, "shape": tuple(shape), "data_offsets": (begin, end)}


def _safetensors_header(path: str) -> tuple[dict[str, dict], int]:
    """Parses and validates the header; returns ``({name: entry}, data start)``.

    Every entry comes back as ``{"dtype": str, "shape": tuple of ints, "data_offsets":
    (begin, end)}``, checked against the file: later code can trust it.
    """
    size = os.path.getsize(path)
    if size < 8:
        raise _bad(path, f"it is {size} bytes long, shorter than the 8-byte header length")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > min(_MAX_HEADER, size - 8):
            raise _bad(path, f"header length {n} exceeds the file ({size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"the header is not UTF-8 JSON ({e})") from None
    except RecursionError:
        raise _bad(path, "the header's JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise _bad(path, f"the header is a JSON {type(header).__name__}, expected an object")
    header.pop("__metadata__", None)
    data_size = size - 8 - n
    checked = {name: _check_entry(path, name, e, data_size) for name, e in header.items()}
    return checked, 8 + n


def _npz_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    # Version 3.0 (utf-8 field names): read the array itself, still without pickles.
    with zf.open(member) as f:
        arr = np.lib.format.read_array(f, allow_pickle=False)
    return arr.shape, False, arr.dtype


@contextlib.contextmanager
def _npz_errors(path: str, name: str | None = None) -> Iterator[None]:
    """Re-raises what a corrupt zip archive or ``.npy`` member raises as a ValueError."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:
        where = f" (array {name!r})" if name is not None else ""
        raise ValueError(f"{path!r} is not a valid .npz file{where}: {e}") from e


@contextlib.contextmanager
def _npz(path: str) -> Iterator[zipfile.ZipFile]:
    with _npz_errors(path):
        zf = zipfile.ZipFile(path)
    with zf:
        yield zf


def _npz_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """``{array name: zip member}``, as ``np.load`` names them (``.npy`` dropped)."""
    return {(m[:-4] if m.endswith(".npy") else m): m for m in zf.namelist()}


def _object_array(path: str, name: str, dtype: np.dtype) -> ValueError:
    return ValueError(
        f"{path!r}: array {name!r} has dtype {dtype} (Python objects), which can "
        "only be loaded by unpickling; jinit refuses to unpickle files. Save numeric "
        "arrays only (e.g. np.asarray(x, dtype=np.float32))."
    )


def _npz_array(path: str, zf: zipfile.ZipFile, name: str, member: str) -> np.ndarray:
    with _npz_errors(path, name):
        _, _, dtype = _npz_header(zf, member)
    if dtype.hasobject:  # checked first: numpy's own refusal would read as corruption
        raise _object_array(path, name, dtype)
    with _npz_errors(path, name), zf.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def read_header(path: str | os.PathLike) -> dict[str, ArrayInfo]:
    """Names, shapes and dtypes of every array in a checkpoint, in file order.

    Args:
      path: a ``.safetensors`` or ``.npz`` file.

    Returns:
      A dict ``name -> ArrayInfo``.

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: for other formats, a malformed file, or an ``.npz`` member that holds an
        object array (loading it would need pickle).
    """
    path = os.fspath(path)
    fmt = checkpoint_format(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    if fmt == "safetensors":
        header, _ = _safetensors_header(path)
        return {
            name: ArrayInfo(name, tuple(e["shape"]), _SAFETENSORS_DTYPES[e["dtype"]])
            for name, e in header.items()
        }
    out = {}
    with _npz(path) as zf:
        for name, member in _npz_members(zf).items():
            with _npz_errors(path, name):
                shape, _, dtype = _npz_header(zf, member)
            if dtype.hasobject:
                raise _object_array(path, name, dtype)
            out[name] = ArrayInfo(name, tuple(shape), dtype)
    return out


# --------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------


def _missing(path: str, name: str, names: list[str]) -> KeyError:
    shown = ", ".join(repr(n) for n in names[:50])
    more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
    return KeyError(f"{path!r} has no array named {name!r}; available names: {shown}{more}.")


def _safetensors_array(path: str, f: BinaryIO, start: int, name: str, entry: dict) -> np.ndarray:
    dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
    begin, end = entry["data_offsets"]
    f.seek(start + begin)
    buf = f.read(end - begin)
    if len(buf) != end - begin:
        raise _bad(path, f"tensor {name!r}: the file ended while reading its data")
    arr = np.frombuffer(buf, dtype=dtype.newbyteorder("<"))
    return arr.astype(dtype).reshape(entry["shape"])


def read_array(path: str | os.PathLike, name: str) -> np.ndarray:
    """Reads one array from a checkpoint (only its bytes), never unpickling.

    Raises:
      KeyError: if ``name`` is not in the file; the message lists the available names.
      ValueError: for an object array or a malformed file.
    """
    path = os.fspath(path)
    if checkpoint_format(path) == "safetensors":
        header, start = _safetensors_header(path)
        if name not in header:
            raise _missing(path, name, list(header))
        with open(path, "rb") as f:
            return _safetensors_array(path, f, start, name, header[name])
    with _npz(path) as zf:
        members = _npz_members(zf)
        if name not in members:
            raise _missing(path, name, list(members))
        return _npz_array(path, zf, name, members[name])


def read_all(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every array of a checkpoint into a dict ``name -> np.ndarray`` (file order).

    The header is parsed once and validated in full (object arrays included) before any
    array is read.
    """
    path = os.fspath(path)
    if checkpoint_format(path) == "npz":
        names = list(read_header(path))
        with _npz(path) as zf:
            members = _npz_members(zf)
            return {n: _npz_array(path, zf, n, members[n]) for n in names}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    header, start = _safetensors_header(path)
    with open(path, "rb") as f:
        return {n: _safetensors_array(path, f, start, n, e) for n, e in header.items()}


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
    """jinit's casting rule for loaded weights.

    - ``"no"``: the dtypes must be equal.
    - ``"safe"``: only casts that keep every value (``np.can_cast(..., "safe")``, which
      knows bfloat16 and float8 through ml_dtypes): e.g. bfloat16 -> float32.
    - ``"same_kind"`` (the default): any float -> any float (any precision, bfloat16
      included), float -> complex, int -> int; never across kinds (no int -> float,
      float -> int, complex -> float, bool -> anything).
    - ``"unsafe"``: anything numeric.
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
