"""``.safetensors`` files and sharded Hugging Face checkpoints, read with the ``safetensors``
library (the reference implementation: it parses and validates the header, rejects
overlapping offsets, holes and malformed ``__metadata__``).

jinit adds what the library leaves out: every malformed file is a ``ValueError`` naming
the file (and the tensor, where known) instead of a ``SafetensorError``; duplicate tensor
names, which the library's JSON parser lets through (the last one wins), are refused; and
the float8 dtypes NumPy lacks are read through ``ml_dtypes``.

A sharded checkpoint is a ``*.safetensors.index.json`` file whose ``weight_map`` says
which shard holds each tensor (what ``transformers``' ``save_pretrained`` writes).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from typing import Any

import ml_dtypes
import numpy as np

from jinit.tools._ckpt_common import ArrayInfo, Reader, missing_error, optional_import

DTYPES: dict[str, np.dtype] = {
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
# dtypes the library's NumPy backend cannot build (NumPy has no float8); read by jinit
# from the offsets of the header the library has validated.
_RAW_DTYPES = ("F8_E4M3", "F8_E5M2")


def _library() -> Any:
    return optional_import("safetensors", ".safetensors checkpoints", "safetensors")


def bad(path: str, what: str) -> ValueError:
    return ValueError(f"{path!r} is not a valid safetensors file: {what}.")


def _culprit(path: str, message: str) -> str | None:
    """The tensor a library error is about, where it can be told."""
    m = re.search(r"tensor `([^`]*)`", message)
    if m:
        return m.group(1)
    try:
        header = _raw_header(path)
    except (OSError, ValueError, RecursionError, struct.error):
        return None
    if not isinstance(header, dict):
        return None
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    # "invalid shape, data type, or offset for tensor": the byte count that does not add up
    for name, e in entries.items():
        try:
            size = math.prod(e["shape"]) * DTYPES[e["dtype"]].itemsize
            begin, end = e["data_offsets"]
            if end - begin != size:
                return name
        except (KeyError, TypeError, ValueError):
            return name
    # a JSON error "at line 1 column N": the last top-level name that starts before N
    m = re.search(r"line 1 column (\d+)", message)
    if m:
        column, text = int(m.group(1)), _raw_header_text(path)
        starts = [(text.find(json.dumps(k) + ":"), k) for k in header]
        before = [(s, k) for s, k in starts if 0 <= s < column]
        if before:
            return max(before)[1]
    return None


def _raw_header_text(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
        (n,) = struct.unpack("<Q", head)
        if n > os.path.getsize(path) - 8:
            raise ValueError("header length")
        return f.read(n).decode("utf-8")


def _parse_header(text: str) -> tuple[Any, list[str], list[str]]:
    """``(header, names given twice, keys repeated inside an entry or __metadata__)``."""
    repeats: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeats.append([k for i, k in enumerate(keys) if k in keys[:i]])
        return dict(pairs)

    header = json.loads(text, object_pairs_hook=hook)  # objects close inside out: top last
    top = repeats.pop() if repeats else []
    return header, top, [k for r in repeats for k in r]


def _raw_header(path: str) -> Any:
    return _parse_header(_raw_header_text(path))[0]


def _wrap(path: str, e: BaseException) -> ValueError:
    message = str(e).rstrip(".").removeprefix("Error while deserializing header: ")
    name = _culprit(path, message)
    where = ""
    if name == "__metadata__":
        where = " (in __metadata__)"
    elif name is not None and f"`{name}`" not in message:
        where = f" (tensor {name!r})"
    return bad(path, f"{message}{where}")


class SafetensorsFile(Reader):
    """One ``.safetensors`` file, validated by the library when opened."""

    kind = "safetensors"

    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
        st = _library()
        try:
            with st.safe_open(path, framework="numpy") as f:
                names = list(f.keys())
                raw = {n: f.get_slice(n) for n in names}
                specs = {n: (s.get_dtype(), tuple(s.get_shape())) for n, s in raw.items()}
        except st.SafetensorError as e:
            raise _wrap(path, e) from None
        except OSError as e:
            raise bad(path, str(e)) from None
        # The library accepted the header, so it is a JSON object of well-formed entries;
        # read it once more for what the library does not check: duplicate names.
        try:
            text = _raw_header_text(path)
            header, twice, repeated = _parse_header(text)
            self._offsets = {n: tuple(header[n]["data_offsets"]) for n in names}
        except (OSError, ValueError, KeyError, TypeError, struct.error) as e:  # rewritten
            raise bad(path, f"the header changed while it was read ({e!r})") from None
        if twice:
            raise bad(path, f"the header names tensor {twice[0]!r} twice")
        if repeated:
            raise bad(path, f"a header object repeats the key {repeated[0]!r}")
        self._start = 8 + len(text.encode("utf-8"))
        infos = {}
        for n in sorted(names, key=lambda n: self._offsets[n]):  # file order
            code, shape = specs[n]
            if code not in DTYPES:
                raise ValueError(
                    f"{path!r}: tensor {n!r} has dtype {code}, which jinit does not load; "
                    f"supported: {', '.join(DTYPES)}."
                )
            infos[n] = ArrayInfo(n, shape, DTYPES[code])
        self._infos = infos
        self._codes = {n: specs[n][0] for n in names}

    def infos(self) -> dict[str, ArrayInfo]:
        return self._infos

    def read(self, name: str) -> np.ndarray:
        return self.read_many({name: None})[name]

    def read_many(self, requests: dict[str, Any]) -> dict[str, Any]:
        for name in requests:
            if name not in self._infos:
                raise missing_error(self.path, name, list(self._infos))
        st = _library()
        try:
            with st.safe_open(self.path, framework="numpy") as f:
                return {n: self._read(f, n) for n in requests}
        except st.SafetensorError as e:
            raise _wrap(self.path, e) from None
        except OSError as e:
            raise bad(self.path, str(e)) from None

    def _read(self, f: Any, name: str) -> np.ndarray:
        info = self._infos[name]
        if self._codes[name] in _RAW_DTYPES:
            begin, end = self._offsets[name]
            with open(self.path, "rb") as f:
                f.seek(self._start + begin)
                buf = f.read(end - begin)
            if len(buf) != end - begin:
                raise bad(self.path, f"tensor {name!r}: the file ended while reading its data")
            return np.frombuffer(buf, dtype=info.dtype).reshape(info.shape).copy()
        arr = f.get_tensor(name)
        if arr.shape != info.shape or arr.dtype != info.dtype:  # rewritten since opened
            raise bad(self.path, f"tensor {name!r} changed while it was read")
        return arr


def _bad_index(path: str, what: str) -> ValueError:
    return ValueError(f"{path!r} is not a valid sharded safetensors index: {what}.")


class ShardedSafetensors(Reader):
    """``model.safetensors.index.json`` and the shards its ``weight_map`` names."""

    kind = "sharded safetensors"

    def __init__(self, index_path: str, only: str | None = None):
        """Opens every shard, or only the one holding tensor ``only`` if given."""
        self.path = index_path
        if not os.path.isfile(index_path):
            raise FileNotFoundError(f"Checkpoint index {index_path!r} does not exist.")
        try:
            with open(index_path, encoding="utf-8") as f:
                index = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise _bad_index(index_path, f"not UTF-8 JSON ({e})") from None
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
        ):
            raise _bad_index(
                index_path, "expected an object with a 'weight_map' of tensor name -> shard file"
            )
        folder = os.path.dirname(index_path)
        shards: dict[str, list[str]] = {}
        for tensor, shard in weight_map.items():
            if os.path.basename(shard) != shard or shard in ("", ".", ".."):
                raise _bad_index(
                    index_path,
                    f"tensor {tensor!r} is mapped to {shard!r}; shard files must be plain file "
                    "names in the index's folder",
                )
            shards.setdefault(shard, []).append(tensor)
        if only is not None:
            weight_map = {only: weight_map[only]} if only in weight_map else {}
            shards = {s: [only] for s in weight_map.values()}
        absent = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
        if absent:
            listed = ", ".join(f"{s!r} (holds {shards[s][0]!r}, ...)" for s in absent)
            raise _bad_index(index_path, f"shard file(s) missing from the folder: {listed}")
        self._files = {s: SafetensorsFile(os.path.join(folder, s)) for s in shards}
        infos: dict[str, ArrayInfo] = {}
        self._where: dict[str, SafetensorsFile] = {}
        for shard, tensors in shards.items():
            reader = self._files[shard]
            have = reader.infos()
            for t in tensors:
                if t not in have:
                    raise _bad_index(
                        index_path,
                        f"weight_map puts tensor {t!r} in {shard!r}, which has no such tensor",
                    )
        for tensor, shard in weight_map.items():  # index order
            infos[tensor] = self._files[shard].infos()[tensor]
            self._where[tensor] = self._files[shard]
        self._infos = infos

    def infos(self) -> dict[str, ArrayInfo]:
        return self._infos

    def read(self, name: str) -> np.ndarray:
        return self.read_many({name: None})[name]

    def read_many(self, requests: dict[str, Any]) -> dict[str, Any]:
        for name in requests:
            if name not in self._infos:
                raise missing_error(self.path, name, list(self._infos))
        out: dict[str, Any] = {}
        for shard in self._files.values():
            mine = {n: s for n, s in requests.items() if self._where[n] is shard}
            if mine:
                out.update(shard.read_many(mine))
        return {n: out[n] for n in requests}


def find_index(folder: str) -> str | None:
    """The ``*.safetensors.index.json`` in a folder, if there is exactly one."""
    found = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors.index.json"))
    if len(found) > 1:
        raise ValueError(
            f"{folder!r} holds several safetensors indexes ({', '.join(found)}); pass the path "
            "of the one to read."
        )
    return os.path.join(folder, found[0]) if found else None
