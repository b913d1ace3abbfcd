"""Random draws used by the samplers: jax.random's values, by the fastest safe route.

Each function returns exactly what the named ``jax.random`` function returns for the same
key. Where the installed jax's threefry bit scheme has been verified to match jinit's
unrolled implementation (:mod:`jinit._threefry`), that implementation is used (it is
several times faster on CPU); otherwise the call goes to ``jax.random`` itself.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding

from jinit import _orthogonal_methods, _threefry
from jinit._core import OutSharding, Shape, constrain, uses_explicit_axes


def _fast(key: jax.Array, dtype: np.dtype) -> bool:
    """Whether the unrolled threefry path reproduces jax.random for this key and dtype."""
    return np.issubdtype(dtype, np.floating) and _threefry.is_supported(key)


def _sharded_draw(draw, key, out_sharding: OutSharding) -> jax.Array:
    """``draw(key)`` laid out as ``out_sharding``, each device computing only its shard.

    On Explicit mesh axes the draw runs inside ``jax.sharding.auto_axes`` (as jax.random
    does), where a sharding constraint propagates back to the iota counters.
    """
    if not uses_explicit_axes(out_sharding):
        return constrain(draw(key), out_sharding)
    spec: Any
    if isinstance(out_sharding, NamedSharding):
        mesh, spec = out_sharding.mesh, out_sharding.spec
    else:
        mesh, spec = jax.sharding.get_abstract_mesh(), out_sharding
    explicit = tuple(
        name
        for name, kind in zip(mesh.axis_names, mesh.axis_types, strict=True)
        if kind == jax.sharding.AxisType.Explicit
    )

    def constrained(k):
        return jax.lax.with_sharding_constraint(draw(k), spec)

    return jax.sharding.auto_axes(constrained, axes=explicit, out_sharding=out_sharding)(key)


def _native(out_sharding: OutSharding) -> OutSharding:
    """The sharding to hand to jax.random itself: only Explicit-axis ones (jax refuses
    Auto axes); the caller constrains the result in every case."""
    return out_sharding if uses_explicit_axes(out_sharding) else None


def uniform(key, shape: Shape, dtype, minval, maxval, out_sharding: OutSharding) -> jax.Array:
    """Equals ``jax.random.uniform(key, shape, dtype, minval, maxval)``."""
    if _fast(key, dtype):
        draw = lambda k: _threefry.uniform(k, shape, dtype, minval, maxval)
        return _sharded_draw(draw, key, out_sharding)
    return jax.random.uniform(key, shape, dtype, minval, maxval, out_sharding=_native(out_sharding))


def normal(key, shape: Shape, dtype, out_sharding: OutSharding) -> jax.Array:
    """Equals ``jax.random.normal(key, shape, dtype)`` (complex dtypes included)."""
    if _fast(key, dtype):
        return _sharded_draw(lambda k: _threefry.normal(k, shape, dtype), key, out_sharding)
    return jax.random.normal(key, shape, dtype, out_sharding=_native(out_sharding))


def truncated_normal(key, lower, upper, shape: Shape, dtype, out_sharding) -> jax.Array:
    """Equals ``jax.random.truncated_normal(key, lower, upper, shape, dtype)``."""
    if _fast(key, dtype):
        draw = lambda k: _threefry.truncated_normal(k, lower, upper, shape, dtype)
        return _sharded_draw(draw, key, out_sharding)
    return jax.random.truncated_normal(
        key, lower, upper, shape, dtype, out_sharding=_native(out_sharding)
    )


def orthogonal(key, n: int, m: int, batch_shape: Shape, dtype, method: str) -> jax.Array:
    """A ``(*batch_shape, n, m)`` Haar-distributed semi-orthogonal matrix.

    ``method="qr"`` (and ``"auto"`` without batch dimensions) equals
    ``jax.random.orthogonal(key, n, batch_shape, dtype, m)``; the other methods sample the
    same distribution by other algorithms (:mod:`jinit._orthogonal_methods`).
    """
    return _orthogonal_methods.sample(key, n, m, batch_shape, dtype, method)
