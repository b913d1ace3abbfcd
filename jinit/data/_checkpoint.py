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

import json
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

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


def _safetensors_header(path: str) -> tuple[dict[str, dict], int]:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path!r} is not a safetensors file: it is shorter than 8 bytes.")
        (n,) = struct.unpack("<Q", raw)
        if n > min(_MAX_HEADER, size - 8):
            raise ValueError(
                f"{path!r} is not a valid safetensors file: header length {n} exceeds the file."
            )
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path!r} is not a valid safetensors file: {e}.") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path!r} is not a valid safetensors file: the header is not a dict.")
    header.pop("__metadata__", None)
    data_size = size - 8 - n
    for name, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(
                f"{path!r}: tensor {name!r} has unsupported dtype {dtype!r}; "
                f"supported: {', '.join(_SAFETENSORS_DTYPES)}."
            )
        shape = tuple(int(d) for d in entry.get("shape", ()))
        begin, end = (int(o) for o in entry.get("data_offsets", (-1, -1)))
        nbytes = int(np.prod(shape, dtype=np.int64)) * _SAFETENSORS_DTYPES[dtype].itemsize
        if not (0 <= begin <= end <= data_size) or end - begin != nbytes:
            raise ValueError(
                f"{path!r}: tensor {name!r} has data offsets {[begin, end]} that do not fit "
                f"its shape {shape} and dtype {dtype} (or lie outside the file)."
            )
    return header, 8 + n


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
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            name = member[:-4] if member.endswith(".npy") else member
            shape, _, dtype = _npz_header(zf, member)
            if dtype.hasobject:
                raise ValueError(
                    f"{path!r}: array {name!r} has dtype {dtype} (Python objects), which can "
                    "only be loaded by unpickling; jinit refuses to unpickle files. Save numeric "
                    "arrays only (e.g. np.asarray(x, dtype=np.float32))."
                )
            out[name] = ArrayInfo(name, tuple(shape), dtype)
    return out


# --------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------


def _missing(path: str, name: str, names: list[str]) -> KeyError:
    shown = ", ".join(repr(n) for n in names[:50])
    more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
    return KeyError(f"{path!r} has no array named {name!r}; available names: {shown}{more}.")


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
        entry = header[name]
        dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        with open(path, "rb") as f:
            f.seek(start + begin)
            buf = f.read(end - begin)
        arr = np.frombuffer(buf, dtype=dtype.newbyteorder("<"))
        return arr.astype(dtype).reshape(entry["shape"])
    with np.load(path, allow_pickle=False) as npz:
        if name not in npz.files:
            raise _missing(path, name, list(npz.files))
        try:
            return npz[name]
        except ValueError as e:  # numpy: "Object arrays cannot be loaded when allow_pickle=False"
            raise ValueError(
                f"{path!r}: array {name!r} is an object array, which can only be loaded by "
                "unpickling; jinit refuses to unpickle files. Save numeric arrays only."
            ) from e


def read_all(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every array of a checkpoint into a dict ``name -> np.ndarray`` (file order)."""
    path = os.fspath(path)
    names = list(read_header(path))  # validates the whole file (object arrays included) first
    if checkpoint_format(path) == "npz":
        with np.load(path, allow_pickle=False) as npz:
            return {n: npz[n] for n in names}
    return {n: read_array(path, n) for n in names}


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


def flatten_source(tree: Mapping | object, sep: str = "/") -> dict[str, np.ndarray]:
    """Flattens a nested mapping of arrays to ``{"a/b/c": array}`` (flat mappings pass)."""
    out: dict[str, object] = {}

    def visit(prefix: str, node: object) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                visit(f"{prefix}{sep}{k}" if prefix else str(k), v)
        else:
            out[prefix] = node

    visit("", tree)
    return out  # type: ignore[return-value]
