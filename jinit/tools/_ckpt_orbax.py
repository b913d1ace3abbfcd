"""Orbax checkpoints: what ``orbax.checkpoint`` ``StandardCheckpointer`` /
``PyTreeCheckpointer`` write (a Flax training run's checkpoints), and the step folders of a
``CheckpointManager``.

The tree's metadata (names, shapes, dtypes) is read first; arrays are restored only when
asked for, all at once, each one either to host memory or straight into a sharding (the
target's, when :func:`jinit.transfer` copies into a sharded model), so no device holds a
full copy of a sharded parameter. Orbax's own formats (OCDBT/TensorStore + JSON/msgpack
metadata) involve no pickle.

Names are the tree paths joined with ``/``: ``params/Dense_0/kernel`` for a linen variables
dict, ``fc/kernel`` for an ``nnx.State`` (the ``value`` level that nnx variables add is
dropped).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from jinit.tools._ckpt_common import ArrayInfo, Reader, missing_error, optional_import

_ITEM_FILES = ("_METADATA", "manifest.ocdbt")


def _library() -> Any:
    return optional_import("orbax.checkpoint", "orbax checkpoints", "orbax-checkpoint")


def is_item(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, f)) for f in _ITEM_FILES)


def _steps(folder: str) -> list[int]:
    return sorted(
        int(d) for d in os.listdir(folder) if d.isdigit() and os.path.isdir(os.path.join(folder, d))
    )


def resolve(folder: str) -> tuple[str, str] | None:
    """``(item folder, note)`` for an orbax checkpoint folder, else None.

    Accepts an item folder (``_METADATA``/``manifest.ocdbt`` inside), a CheckpointManager
    step folder holding one item (``5/default``), or a CheckpointManager root, read at its
    latest step (the note says which).
    """
    if is_item(folder):
        return folder, ""
    note = ""
    steps = _steps(folder)
    if steps:
        note = f"latest of steps {', '.join(map(str, steps[-5:]))}"
        if len(steps) > 5:
            note = f"latest of {len(steps)} steps, ..., {steps[-1]}"
        folder = os.path.join(folder, str(steps[-1]))
        if is_item(folder):
            return folder, note
    elif not os.path.isfile(os.path.join(folder, "_CHECKPOINT_METADATA")):
        return None
    items = sorted(
        d
        for d in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, d)) and is_item(os.path.join(folder, d))
    )
    if len(items) != 1:
        found = ", ".join(repr(i) for i in items) or "none"
        raise ValueError(
            f"{folder!r} is a CheckpointManager step holding {len(items)} orbax items "
            f"({found}); pass the path of the item to read (e.g. {folder}/default)."
        )
    return os.path.join(folder, items[0]), note


def _is_leaf(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _key(k: Any) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


class OrbaxCheckpoint(Reader):
    kind = "orbax"

    def __init__(self, path: str, note: str = ""):
        self.path, self.note = path, note
        ocp = _library()
        try:
            metadata = ocp.PyTreeCheckpointer().metadata(path)
        except Exception as e:  # orbax raises many kinds; none of them is the user's bug
            raise ValueError(
                f"{path!r} is not a readable orbax checkpoint: {type(e).__name__}: {e}"
            ) from None
        tree = getattr(getattr(metadata, "item_metadata", None), "tree", metadata)
        leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_leaf)[0]
        paths = [tuple(_key(k) for k in p) for p, leaf in leaves if _is_leaf(leaf)]
        arrays = [leaf for _, leaf in leaves if _is_leaf(leaf)]
        # nnx.State trees end every path in the variable's "value": name them without it
        strip = bool(paths) and all(len(p) > 1 and p[-1] == "value" for p in paths)
        self._tree = tree
        self._paths: dict[str, tuple[str, ...]] = {}
        infos = {}
        for p, leaf in zip(paths, arrays, strict=True):
            try:
                dtype = np.dtype(leaf.dtype)
            except TypeError:
                continue  # strings and other non-array leaves
            name = "/".join(p[:-1] if strip else p)
            self._paths[name] = p
            infos[name] = ArrayInfo(name, tuple(int(d) for d in leaf.shape), dtype)
        if not infos:
            raise ValueError(
                f"{path!r} is not a readable orbax checkpoint: its metadata lists no arrays."
            )
        self._infos = infos

    def infos(self) -> dict[str, ArrayInfo]:
        return self._infos

    def describe(self) -> str:
        return f"orbax checkpoint {self.path!r}" + (f" ({self.note})" if self.note else "")

    def read_many(self, requests: dict[str, Any]) -> dict[str, Any]:
        for name in requests:
            if name not in self._infos:
                raise missing_error(self.path, name, list(self._infos))
        if not requests:
            return {}
        ocp = _library()
        wanted = {self._paths[n]: (n, s) for n, s in requests.items()}
        # leaves not asked for are skipped (orbax's PLACEHOLDER); orbax versions without it
        # restore them to host memory and drop them
        skip = getattr(ocp, "PLACEHOLDER", None)
        host = ocp.RestoreArgs(restore_type=np.ndarray)

        def args(path: tuple, leaf: Any) -> Any:
            p = tuple(_key(k) for k in path)
            if skip is not None and (p not in wanted or not _is_leaf(leaf)):
                return skip
            if p not in wanted:
                return host if _is_leaf(leaf) else ocp.RestoreArgs()
            sharding = wanted[p][1]
            return host if sharding is None else ocp.ArrayRestoreArgs(sharding=sharding)

        restore_args = jax.tree_util.tree_map_with_path(args, self._tree, is_leaf=_is_leaf)
        item = jax.tree.map(
            lambda a: a if skip is not None and a is skip else 0,
            restore_args,
            is_leaf=lambda x: (skip is not None and x is skip) or isinstance(x, ocp.RestoreArgs),
        )
        try:
            out = ocp.PyTreeCheckpointer().restore(
                self.path, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args)
            )
        except Exception as e:
            raise ValueError(
                f"{self.path!r}: orbax could not restore {', '.join(map(repr, requests))}: "
                f"{type(e).__name__}: {e}"
            ) from None
        result = {}
        for p, (name, sharding) in wanted.items():
            node = out
            for k in p:
                node = node[int(k)] if isinstance(node, (list, tuple)) else node[k]
            info = self._infos[name]
            arr = node if sharding is not None else np.asarray(node)
            if tuple(arr.shape) != info.shape or np.dtype(arr.dtype) != info.dtype:
                raise ValueError(
                    f"{self.path!r}: array {name!r} was restored with shape {tuple(arr.shape)} "
                    f"and dtype {arr.dtype}, but its metadata says {info.shape} and {info.dtype}."
                )
            result[name] = arr
        return result

    def read(self, name: str) -> np.ndarray:
        return self.read_many({name: None})[name]
