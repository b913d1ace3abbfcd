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
from collections.abc import Callable, Iterator, Mapping
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
    __call__.__wrapped__ = call  # type: ignore[attr-defined]
    return __call__


# Patching a class is process-wide, so it is shared: the first capture that needs a class
# wraps its ``__call__``, the last one to finish restores it. The counts and the saved
# originals change only under the lock, so captures in two threads cannot unpatch a class
# the other one still needs (records go to the calling thread's own stack).
_patch_lock = threading.Lock()
_patch_count: dict[type, int] = {}
_patch_saved: dict[type, Any] = {}  # cls -> its own __call__ (None: inherited)


@contextlib.contextmanager
def _patched(classes: set[type]) -> Iterator[None]:
    ordered = sorted(classes, key=lambda c: (c.__module__, c.__qualname__))
    with _patch_lock:
        for cls in ordered:
            if _patch_count.get(cls, 0) == 0:
                _patch_saved[cls] = cls.__dict__.get("__call__")
                call = cls.__call__  # unwrap an inherited wrapper: never wrap twice
                if getattr(call, "_jinit_wrapped", False):
                    call = call.__wrapped__
                cls.__call__ = _wrap(call)
            _patch_count[cls] = _patch_count.get(cls, 0) + 1
    try:
        yield
    finally:
        with _patch_lock:
            for cls in reversed(ordered):
                _patch_count[cls] -= 1
                if _patch_count[cls]:
                    continue
                del _patch_count[cls]
                own = _patch_saved.pop(cls)
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


def linen_kernel_path(path: str) -> tuple[str, ...]:
    """Where the kernel of the linen layer at ``path`` lives in the variables dict."""
    return ("params", *path.split("/"), "kernel") if path else ("params", "kernel")


def set_linen_kernels(variables: Any, kernels: Mapping[str, Any], *, keep_box: bool = False):
    """A copy of ``variables`` with the kernel of each layer ``path`` set to ``kernels[path]``.

    With ``keep_box``, a kernel stored in a metadata box (``nn.with_partitioning``) is put
    back in its box; without, the bare array replaces it (fine inside ``apply``).
    """
    for p, k in kernels.items():
        where = linen_kernel_path(p)
        if keep_box:
            k = rebox(get_in(variables, where), k)
        variables = set_in(variables, where, k)
    return variables


def linen_layers(
    apply_fn: Callable, variables: Any, batch: Any, apply_kwargs: Mapping[str, Any]
) -> tuple[list[tuple[str, str]], dict[str, jax.Array]]:
    """The linen Dense/Conv layers ``apply_fn(variables, batch, **apply_kwargs)`` calls.

    The function runs abstractly (``jax.eval_shape``: shapes only, no FLOPs).

    Returns:
      ``(layers, kernels)``: ``[(path, kind), ...]`` in call order (first call of each
      path; ``kind`` is the class name), and ``{path: kernel}`` for the layers whose kernel
      (unboxed, at least 2-D) is in ``variables["params"]``; a layer under a lifted
      transform such as ``nn.scan`` has none.
    """
    layers: list[tuple[str, str]] = []

    def probe(variables: Any, batch: Any) -> None:
        with record_linen() as rec:
            apply_fn(variables, batch, **apply_kwargs)
        if not layers:
            layers.extend((p, kind) for p, kind, _, _ in rec)

    jax.eval_shape(probe, variables, batch)
    kernels = {}
    for p, _ in layers:
        k = unbox(get_in(variables, linen_kernel_path(p)))
        if k is not None and jnp.ndim(k) >= 2:
            kernels[p] = jnp.asarray(k)
    return layers, kernels


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
