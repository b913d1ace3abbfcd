"""Module-level jit-compiled samplers.

Every sampler is one ``jax.jit`` function with ``shape``, ``dtype`` and the output
sharding static and the numeric hyperparameters traced: one compile per
(shape, dtype, sharding), shared by every initializer object, and an eager call is a
single dispatch. Inside a user's ``jax.jit`` they inline like any other jitted function.

The arithmetic mirrors :mod:`jax.nn.initializers` operation for operation (the sample is
drawn in the target dtype, then multiplied by a factor that was rounded to that dtype),
so that jinit returns the same values as jax for the same key.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _random
from jinit._core import OutSharding, Shape, constrain, replicated

_STATIC = ("shape", "dtype", "out_sharding")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a sample is computed in: float32 for floats narrower than 32 bits.

    jax samples float16/bfloat16 directly: its uniform then lies on a grid of 2^7..2^10
    points that includes the lower end of the range but not the upper, so every draw is
    biased low (a bfloat16 he_normal has mean -0.022 std; 8 standard errors at 131k
    samples), and the scale factor itself is rounded to 8 bits. jinit computes in float32
    and rounds once: the result equals jax's float32 values cast to the dtype.
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
        return np.dtype(np.float32)
    return dtype


def real_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.array(0, dtype).real.dtype)


# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=_STATIC)
def full(value, *, shape: Shape, dtype: np.dtype, out_sharding: OutSharding) -> jax.Array:
    """``value`` broadcast to ``shape`` (value may be an array broadcastable to shape)."""
    return constrain(jnp.broadcast_to(jnp.asarray(value, dtype), shape), out_sharding)


# --------------------------------------------------------------------------------------
# Real distributions: sample in dtype, times a dtype factor, plus a dtype offset
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=_STATIC)
def uniform(key, minval, maxval, factor, loc, *, shape, dtype, out_sharding) -> jax.Array:
    """``U[minval, maxval) * factor + loc`` in ``dtype``."""
    x = _random.uniform(key, shape, compute_dtype(dtype), minval, maxval, out_sharding)
    return constrain((x * factor + loc).astype(dtype), out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def normal(key, factor, loc, *, shape, dtype, out_sharding) -> jax.Array:
    """``N(0, 1) * factor + loc`` in ``dtype`` (complex: circular, E|z|^2 = 1).

    The draw is kept out of the multiply's fusion: fused, XLA's CPU code for erf_inv
    rounds differently in the last bit, and jinit promises jax's values exactly.
    """
    x = _random.normal(key, shape, compute_dtype(dtype), out_sharding)
    x = jax.lax.optimization_barrier(x)
    return constrain((x * factor + loc).astype(dtype), out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def truncated_normal(key, lower, upper, factor, loc, *, shape, dtype, out_sharding):
    """``TN(lower, upper) * factor + loc``: a standard normal truncated to (lower, upper)."""
    x = _random.truncated_normal(key, lower, upper, shape, compute_dtype(dtype), out_sharding)
    return constrain((x * factor + loc).astype(dtype), out_sharding)


# --------------------------------------------------------------------------------------
# Complex distributions (variance_scaling with a complex dtype)
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=_STATIC)
def complex_uniform(key, factor, *, shape, dtype, out_sharding) -> jax.Array:
    """Uniform on the unit-variance disk ``|z| <= sqrt(2)``, times ``factor``."""
    key_r, key_theta = jax.random.split(key)
    rdtype = real_dtype(dtype)
    r = jnp.sqrt(2 * _random.uniform(key_r, shape, rdtype, 0.0, 1.0, None)).astype(dtype)
    u = _random.uniform(key_theta, shape, rdtype, 0.0, 1.0, None)
    theta = 2 * np.pi * u.astype(dtype)
    return constrain(r * jnp.exp(1j * theta) * factor, out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def complex_truncated_normal(key, upper, factor, *, shape, dtype, out_sharding) -> jax.Array:
    """A circular complex normal (E|z|^2 = 1 before truncation) with ``|z| < upper``."""
    key_r, key_theta = jax.random.split(key)
    rdtype = real_dtype(dtype)
    t = (1 - jnp.exp(jnp.asarray(-(upper**2), dtype))) * _random.uniform(
        key_r, shape, rdtype, 0.0, 1.0, None
    ).astype(dtype)
    r = jnp.sqrt(-jnp.log(1 - t))
    u = _random.uniform(key_theta, shape, rdtype, 0.0, 1.0, None)
    theta = 2 * np.pi * u.astype(dtype)
    return constrain(r * jnp.exp(1j * theta) * factor, out_sharding)


# --------------------------------------------------------------------------------------
# Orthogonal
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=(*_STATIC, "column_axis", "batch_axes", "method"))
def orthogonal(
    key,
    scale,
    *,
    shape: Shape,
    dtype: np.dtype,
    column_axis: int,
    batch_axes: tuple[int, ...],
    method: str,
    out_sharding: OutSharding,
) -> jax.Array:
    """Semi-orthogonal matrices: the ``column_axis`` against all other non-batch axes.

    ``column_axis`` and ``batch_axes`` are non-negative. Every slice along ``batch_axes``
    is an independent Haar-distributed matrix; with no batch axes this is exactly
    ``jax.nn.initializers.orthogonal``. Low-precision targets are computed in float32.
    """
    if math.prod(shape) == 0:
        return constrain(jnp.zeros(shape, dtype), out_sharding)
    batch_shape = tuple(shape[a] for a in batch_axes)
    rest = [a for a in range(len(shape)) if a != column_axis and a not in batch_axes]
    n_rows = math.prod(shape[a] for a in rest)
    n_cols = shape[column_axis]
    q = _random.orthogonal(key, n_rows, n_cols, batch_shape, compute_dtype(dtype), method)
    # The factorization is replicated work: pinning it replicated keeps the partitioner from
    # splitting its reductions, which would change the rounding with the mesh.
    q = constrain(q, replicated(out_sharding))
    # q has shape (*batch, n_rows, n_cols): unflatten the rows and put every axis back.
    q = q.reshape(batch_shape + tuple(shape[a] for a in rest) + (n_cols,))
    source_order = (*batch_axes, *rest, column_axis)
    q = jnp.transpose(q, np.argsort(source_order))
    return constrain((jnp.asarray(scale, q.dtype) * q).astype(dtype), out_sharding)


# --------------------------------------------------------------------------------------
# Sparse
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=(*_STATIC, "num_zeros", "axis"))
def sparse(key, stddev, *, shape, dtype, num_zeros: int, axis: int, out_sharding):
    """``N(0, stddev^2)`` with exactly ``num_zeros`` zeros in each slice along ``axis``.

    ``shape`` is 2-D. The zero positions of each slice are a uniformly random subset
    (the ranks of i.i.d. uniforms), independent across slices.
    """
    key_values, key_mask = jax.random.split(key)
    zero = jnp.zeros((), compute_dtype(dtype))
    values = normal(key_values, stddev, zero, shape=shape, dtype=dtype, out_sharding=None)
    u = jax.random.uniform(key_mask, shape)
    ranks = jnp.argsort(jnp.argsort(u, axis=axis), axis=axis)
    ranks = constrain(ranks, replicated(out_sharding))  # the sort is replicated work
    return constrain(jnp.where(ranks < num_zeros, jnp.zeros((), dtype), values), out_sharding)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "column_axis"))
def delta_orthogonal(key, scale, *, shape, dtype, column_axis: int, out_sharding):
    """An orthogonal ``(in, out)`` block at the spatial centre ``(k - 1) // 2``, zeros elsewhere."""
    block = orthogonal(
        key,
        scale,
        shape=shape[-2:],
        dtype=dtype,
        column_axis=column_axis,
        batch_axes=(),
        method="qr",
        out_sharding=None,
    )
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    return constrain(jnp.zeros(shape, dtype).at[centre].set(block), out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def identity(scale, *, shape, dtype, out_sharding) -> jax.Array:
    """``scale * eye(shape[-2], shape[-1])`` broadcast over the leading axes."""
    eye = jnp.eye(shape[-2], shape[-1], dtype=dtype) * jnp.asarray(scale, dtype)
    return constrain(jnp.broadcast_to(eye, shape), out_sharding)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "groups"))
def dirac(scale, *, shape, dtype, groups: int, out_sharding) -> jax.Array:
    """Conv kernel ``(*spatial, in, out)`` passing channel ``d`` of each group through.

    At the spatial centre ``k // 2``, ``w[..., d, g * out_per_group + d] = scale`` for
    every group ``g`` and ``d < min(in, out_per_group)``.
    """
    in_ch, out_ch = shape[-2], shape[-1]
    per_group = out_ch // groups
    channels = np.arange(min(in_ch, per_group))
    rows = np.tile(channels, groups)
    cols = (np.arange(groups)[:, None] * per_group + channels[None, :]).reshape(-1)
    centre = tuple(k // 2 for k in shape[:-2])
    w = jnp.zeros(shape, dtype).at[(*centre, rows, cols)].set(jnp.asarray(scale, dtype))
    return constrain(w, out_sharding)
