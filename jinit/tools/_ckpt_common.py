"""What every checkpoint reader shares: array descriptions, the reader interface, digests."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArrayInfo:
    """Name, shape and dtype of one array in a checkpoint (read from the header only)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


class Reader:
    """A checkpoint opened for reading: names, shapes and dtypes first, bytes on request."""

    path: str
    kind: str = "checkpoint"

    def infos(self) -> dict[str, ArrayInfo]:
        raise NotImplementedError

    def read(self, name: str) -> np.ndarray:
        """The array ``name`` as a NumPy array."""
        raise NotImplementedError

    def read_many(self, requests: dict[str, Any]) -> dict[str, Any]:
        """``{name: sharding or None}`` -> ``{name: array}``; shardings are a hint that
        readers able to restore straight into them (orbax) use."""
        return {n: self.read(n) for n in requests}

    def fingerprint(self, name: str) -> bytes:
        """A digest of the array's content, shape and dtype (reads the array)."""
        return digest(self.read(name))

    def read_verified(self, name: str, fingerprint: bytes) -> np.ndarray | None:
        """The array, if its content still has ``fingerprint``; else None."""
        arr = self.read(name)
        return arr if digest(arr) == fingerprint else None

    def describe(self) -> str:
        return f"{self.kind} checkpoint {self.path!r}"


def digest(arr: np.ndarray) -> bytes:
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
    return h.digest()


def missing_error(path: str, name: str, names: list[str]) -> KeyError:
    shown = ", ".join(repr(n) for n in names[:50])
    more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
    return KeyError(f"{path!r} has no array named {name!r}; available names: {shown}{more}.")


def optional_import(module: str, files: str, package: str) -> Any:
    """``module``, imported on first use; without it an ImportError naming the extra.

    ``files`` says what needs it (``".safetensors checkpoints"``), ``package`` is its pip name.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - the package is a dependency of the extra
        raise ImportError(
            f"Reading {files} needs the `{package}` package: "
            f"pip install 'jinit[checkpoints]' (or pip install {package})."
        ) from e
