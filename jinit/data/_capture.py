"""Capturing the inputs and outputs of Dense/Linear and Conv layers during a forward pass.

Shared by :func:`jinit.lsuv` and :func:`jinit.diagnose`, so both see the same layers in
the same (call) order.

- nnx: while tracing, the ``__call__`` of each layer class found in the model is wrapped
  (and restored afterwards) to record ``(module, input, output)``; records are mapped to
  paths with :func:`flax.nnx.iter_modules` on the traced copy of the model.
- linen: :func:`flax.linen.intercept_methods` records ``(module.path, input, output)``
  for every ``__call__`` of a Dense/Conv module, wherever it runs (also inside a user's
  own apply function).

A layer called several times (weight sharing) is recorded at its first call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

# flax is imported inside the functions: `import jinit` stays light.

_local = threading.local()


def nnx_layer_types() -> tuple[type, ...]:
    from flax import nnx

    return (nnx.Linear, nnx.Conv, nnx.ConvTranspose)


def linen_layer_types() -> tuple[type, ...]:
    from flax import linen as nn

    return (nn.Dense, nn.Conv, nn.ConvTranspose)


def path_str(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def nnx_layers(model: Any) -> dict[str, Any]:
    """Dense/Conv layers of an nnx model by path (graph order, not call order)."""
    from flax import nnx

    types = nnx_layer_types()
    return {path_str(p): m for p, m in nnx.iter_modules(model) if isinstance(m, types)}


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _wrap(call: Callable) -> Callable:
    def __call__(self, *args, **kwargs):
        stack = _stack()
        if not stack or id(self) in stack[-1]["active"]:
            return call(self, *args, **kwargs)
        frame = stack[-1]
        frame["active"].add(id(self))
        try:
            out = call(self, *args, **kwargs)
        finally:
            frame["active"].discard(id(self))
        x = args[0] if args else next(iter(kwargs.values()), None)
        frame["records"].append((self, x, out))
        return out

    __call__._jinit_wrapped = True  # type: ignore[attr-defined]
    return __call__


@contextlib.contextmanager
def _patched(classes: set[type]) -> Iterator[None]:
    saved = []
    try:
        for cls in classes:
            if getattr(cls.__call__, "_jinit_wrapped", False):
                continue  # already wrapped by an enclosing capture
            saved.append((cls, cls.__dict__.get("__call__")))
            cls.__call__ = _wrap(cls.__call__)
        yield
    finally:
        for cls, own in reversed(saved):
            if own is None:
                del cls.__call__
            else:
                cls.__call__ = own


@contextlib.contextmanager
def record_nnx(model: Any) -> Iterator[list[tuple[str, str, Any, Any]]]:
    """Within the block, calls of ``model``'s Dense/Conv layers are recorded.

    Yields a list that is filled, after the block, with ``(path, kind, input, output)`` in
    call order (first call of each layer; ``kind`` is the class name). Use inside a traced
    function on the traced model.
    """
    from flax import nnx

    paths = {id(m): path_str(p) for p, m in nnx.iter_modules(model)}
    types = nnx_layer_types()
    classes = {type(m) for _, m in nnx.iter_modules(model) if isinstance(m, types)}
    frame: dict[str, Any] = {"active": set(), "records": []}
    result: list[tuple[str, str, Any, Any]] = []
    _stack().append(frame)
    try:
        with _patched(classes):
            yield result
    finally:
        _stack().pop()
    seen = set()
    for mod, x, y in frame["records"]:
        p = paths.get(id(mod))
        if p is None or p in seen:
            continue
        seen.add(p)
        result.append((p, type(mod).__name__, x, y))


@contextlib.contextmanager
def record_linen() -> Iterator[list[tuple[str, str, Any, Any]]]:
    """Within the block, ``__call__`` of every linen Dense/Conv module is recorded.

    Yields a list filled with ``(path, kind, input, output)`` in call order (first call per
    path); the path is the module's scope path joined with ``/``, e.g. ``"Dense_0"``.
    """
    from flax import linen as nn

    types = linen_layer_types()
    records: list[tuple[str, str, Any, Any]] = []
    seen: set[str] = set()

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        mod = context.module
        if context.method_name == "__call__" and isinstance(mod, types):
            p = path_str(tuple(mod.path))
            if p not in seen:
                seen.add(p)
                x = args[0] if args else next(iter(kwargs.values()), None)
                records.append((p, type(mod).__name__, x, out))
        return out

    with nn.intercept_methods(interceptor):
        yield records


def _is_boxed(x: Any) -> bool:
    if not type(x).__module__.startswith("flax"):
        return False
    from flax.core import meta

    return isinstance(x, meta.AxisMetadata)


def unbox(x: Any) -> Any:
    """The array inside a linen metadata box (``nn.with_partitioning``), else ``x``."""
    return x.unbox() if _is_boxed(x) else x


def rebox(old: Any, new: Any) -> Any:
    """``new`` in ``old``'s metadata box, if ``old`` was boxed."""
    return old.replace_boxed(new) if _is_boxed(old) else new


def get_in(tree: Any, path: tuple) -> Any:
    for p in path:
        if not hasattr(tree, "__getitem__") or p not in tree:
            return None
        tree = tree[p]
    return tree


def set_in(tree: Any, path: tuple, value: Any) -> Any:
    """Returns a copy of the nested dict ``tree`` with ``tree[path] = value``."""
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = set_in(tree[path[0]], path[1:], value)
    return out


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and (population) variance over all elements, computed in float32 or wider."""
    x = jnp.asarray(x)
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        x = jnp.abs(x)
    x = x.astype(dtype)
    return jnp.mean(x), jnp.var(x)


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)

    cells = [headers] + [[fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
