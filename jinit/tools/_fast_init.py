"""Whole-model initialization that compiles once per distinct draw (``jinit.fast_init``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jinit.tools import _fast_init_rewrite as _rw

__all__ = ["fast_init"]


def fast_init(fn: Callable[..., Any], *, chunk_bytes: int = 64 * 2**20) -> Callable[..., Any]:
    """Wraps an init function so that its compiled program has one copy of each distinct draw.

    ``jax.jit(model.init)`` compiles the random-number code once per parameter: a Threefry
    ``fold_in`` for each parameter's key and a sampler for each array, so compile time grows
    with the depth of the model. ``fast_init(fn)`` traces ``fn`` to a jaxpr, finds the
    independent draws that run the same computation on the same shapes and dtypes (key
    derivations and samplers, from jinit or from ``jax.random`` / ``jax.nn.initializers``,
    which every Flax default uses), and emits each such group once, as a ``lax.map`` over
    the stacked keys, sliced back into the parameters. Compile time then grows with the
    number of distinct (sampler, shape, dtype), not with the number of parameters.

    The results equal ``jax.jit(fn)(*args)`` bit for bit: each draw keeps its own key and
    its follow-up constants (``* stddev``) stay with it in the mapped body, so XLA folds
    them as in plain ``jax.jit``. A draw whose inputs depend on another draw is never put
    in that draw's group.

    The wrapper has ``fn``'s signature. Called directly it compiles itself (cached per
    input shapes and dtypes; arguments that are not arrays, such as ``train=False`` or a
    config, are static; an unhashable one, such as a config holding a list, is not cached
    on: each such call compiles again). It composes with ``jax.jit`` (``out_shardings``,
    ``in_shardings``), ``jax.eval_shape`` and the partitioning metadata of
    ``nn.with_partitioning`` / ``nnx.with_partitioning``; under ``out_shardings`` each
    device still generates only its own shards.

    ``fn`` may also be an ``nnx.Module`` class or any function that returns an nnx Module
    (its arguments may hold ``nnx.Rngs``): the wrapper then returns the Module, with the
    same state as the constructor run under ``jax.jit``, and advances the ``Rngs`` passed
    in as the constructor does. (Run eagerly, the constructor may differ from its own
    ``jax.jit`` in the last bit: jax's ``normal * stddev`` is rounded twice eagerly and
    folded into one constant under jit; ``nnx.Embed``'s default is such a draw.)

    Args:
      fn: a function returning a pytree of arrays (a linen ``model.init``, a function that
        builds a parameter dict, anything ``jax.jit`` accepts), or an ``nnx.Module`` class
        or a function returning a Module.
      chunk_bytes: the largest number of output bytes one group produces at once; larger
        groups are split into chunks of at most this size (at least one draw each), which
        bounds the stacked temporaries. Default 64 MiB.

    Returns:
      A function with ``fn``'s signature returning what ``fn`` returns.

    Raises:
      TypeError: if ``fn`` is not callable or ``chunk_bytes`` is not a positive int.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
      >>> model = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(16), nn.relu, nn.Dense(1)])
      >>> x = jnp.ones((1, 16))
      >>> params = jinit.fast_init(model.init)(jax.random.key(0), x)
      >>> ref = jax.jit(model.init)(jax.random.key(0), x)
      >>> all(jax.tree.leaves(jax.tree.map(lambda a, b: bool((a == b).all()), params, ref)))
      True
    """
    if not callable(fn):
        raise TypeError(
            "`fn` must be callable (a function returning arrays, a `model.init`, or an "
            f"nnx.Module class); got {fn!r} of type {type(fn).__name__}."
        )
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, (int, np.integer)):
        raise TypeError(f"`chunk_bytes` must be a positive int; got {chunk_bytes!r}.")
    if chunk_bytes <= 0:
        raise ValueError(f"`chunk_bytes` must be a positive int; got {chunk_bytes!r}.")
    options = _rw.Options(chunk_bytes=int(chunk_bytes))
    wrapper = _FastInit(fn, options)
    try:
        functools.update_wrapper(wrapper, fn)
    except (AttributeError, TypeError):
        pass
    return wrapper


def _hashable(static: Any) -> bool:
    """Whether the static arguments can key the compile cache.

    A static argument that is not hashable (a config dataclass holding a list, like Flax's
    Gemma ``TransformerConfig``) is not cached on: each call traces and compiles again, so a
    value changed between calls can never reuse a program built for the old one.
    """
    try:
        hash(static)
    except TypeError:
        return False
    return True


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) or hasattr(x, "aval")


def _annotations(tree: Any) -> list[Any]:
    """The partitioning annotation of every leaf of ``tree`` (None where there is none):
    ``nn.Partitioned`` / ``nn.LogicallyPartitioned`` names, nnx Variables' sharding."""
    from flax import nnx
    from flax.core import meta

    def is_box(x: Any) -> bool:
        return isinstance(x, (meta.AxisMetadata, nnx.Variable))

    out: list[Any] = []
    for node in jax.tree.leaves(tree, is_leaf=is_box):
        n = len(jax.tree.leaves(node)) if is_box(node) else 1
        ann: Any = None
        if isinstance(node, meta.AxisMetadata):
            ann = (type(node).__name__, getattr(node, "names", None))
        elif isinstance(node, nnx.Variable):
            md = node.get_metadata()
            ann = md.get("out_sharding") or md.get("sharding_names") or md.get("sharding")
        out += [ann] * n
    return out


def _is_nnx_class(fn: Any) -> bool:
    if not isinstance(fn, type):
        return False
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return issubclass(fn, nnx.Module)


def _has_nnx_node(tree: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover
        return False
    kinds = (nnx.Pytree, nnx.Variable)
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, kinds))
    return any(isinstance(x, kinds) for x in leaves)


class _FastInit:
    """The callable that :func:`fast_init` returns."""

    def __init__(self, fn: Callable[..., Any], options: _rw.Options) -> None:
        self._fn = fn
        self._options = options
        self._jitted = jax.jit(self._impl, static_argnums=0)
        self._nnx_jitted = jax.jit(self._nnx_impl, static_argnums=0)
        self._nnx_out: dict[Any, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _is_nnx_class(self._fn) or _has_nnx_node((args, kwargs)):
            return self._call_nnx(args, kwargs)
        leaves, treedef = jax.tree.flatten((args, kwargs))
        dynamic = [x for x in leaves if _is_array(x)]
        static = tuple((i, x) for i, x in enumerate(leaves) if not _is_array(x))
        spec = (treedef, static, len(leaves))
        if _hashable(spec):
            return self._jitted(spec, *dynamic)
        return jax.jit(functools.partial(self._impl, spec))(*dynamic)

    # -------------------------------------------------------------------- pytree path

    def _impl(self, spec: Any, *dynamic: Any) -> Any:
        treedef, static, n = spec

        def rebuild(dyn: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
            it = iter(dyn)
            fixed = dict(static)
            leaves = [fixed[i] if i in fixed else next(it) for i in range(n)]
            return jax.tree.unflatten(treedef, leaves)

        def call(*dyn: Any) -> Any:
            args, kwargs = rebuild(dyn)
            return self._fn(*args, **kwargs)

        return self._grouped(call, dynamic)

    def _grouped(self, fn: Callable[..., Any], leaves: Sequence[Any]) -> Any:
        """``fn(*leaves)`` (a pytree) traced to a jaxpr and evaluated with grouped draws."""
        cell: list[Any] = []
        keys: list[Any] = []

        def flat_fn(*dyn: Any) -> list[Any]:
            out = fn(*dyn)
            out_leaves, out_tree = jax.tree.flatten(out)
            cell.append(out_tree)
            keys.append(_annotations(out))
            return out_leaves

        closed = jax.make_jaxpr(flat_fn)(*leaves)
        outs = _rw.evaluate(closed, leaves, self._options, keys[-1])
        return jax.tree.unflatten(cell[-1], outs)

    # -------------------------------------------------------------------- nnx path

    def _call_nnx(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from flax import nnx

        graphdef, state = nnx.split((args, kwargs))
        if _hashable(graphdef):
            in_state, model_state = self._nnx_jitted(graphdef, state)
            out_graphdef = self._nnx_out[graphdef]
        else:
            cell: list[Any] = []
            traced = functools.partial(self._nnx_trace, graphdef, cell)
            in_state, model_state = jax.jit(traced)(state)
            out_graphdef = cell[0]
        nnx.update((args, kwargs), in_state)
        return nnx.merge(out_graphdef, model_state)

    def _nnx_impl(self, graphdef: Any, state: Any) -> Any:
        cell: list[Any] = []
        out = self._nnx_trace(graphdef, cell, state)
        self._nnx_out[graphdef] = cell[0]
        return out

    def _nnx_trace(self, graphdef: Any, cell: list[Any], state: Any) -> Any:
        """The constructor traced with grouped draws; the Module's graphdef goes to ``cell``."""
        from flax import nnx

        leaves, state_tree = jax.tree.flatten(state)

        def build(*dyn: Any) -> Any:
            args, kwargs = nnx.merge(graphdef, jax.tree.unflatten(state_tree, dyn))
            model = self._fn(*args, **kwargs)
            if not isinstance(model, nnx.Module):
                raise TypeError(
                    "fast_init: `fn` was called with nnx objects and must return an "
                    f"nnx.Module; got {type(model).__name__}."
                )
            out_graphdef, model_state = nnx.split(model)
            cell.append(out_graphdef)
            return (nnx.state((args, kwargs)), model_state)

        return self._grouped(build, leaves)
