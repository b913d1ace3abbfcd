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


@functools.lru_cache(maxsize=64)
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


# numpy (used by jax.random's shape checks) handles at most 32 dimensions: a weight of higher
# rank is drawn flat and reshaped, which gives jax's values (bits are drawn in flat order).
_MAX_RANK = 32


def _flat(shape: Shape) -> Shape:
    return (math.prod(shape),) if len(shape) > _MAX_RANK else shape


def _flat_arg(value, shape: Shape):
    """A broadcastable hyperparameter, laid out for :func:`_flat` draws."""
    if len(shape) <= _MAX_RANK or np.ndim(value) == 0:
        return value
    return jnp.broadcast_to(value, shape).reshape(-1)


@functools.partial(jax.jit, static_argnames=_STATIC)
def uniform(key, minval, maxval, factor, loc, *, shape, dtype, out_sharding) -> jax.Array:
    """``U[minval, maxval) * factor + loc`` in ``dtype``."""
    if len(shape) > _MAX_RANK:
        x = _random.uniform(key, _flat(shape), compute_dtype(dtype), minval, maxval, None)
        x = x.reshape(shape)
    else:
        x = _random.uniform(key, shape, compute_dtype(dtype), minval, maxval, out_sharding)
    return constrain((x * factor + loc).astype(dtype), out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def normal(key, factor, loc, *, shape, dtype, out_sharding) -> jax.Array:
    """``N(0, 1) * factor + loc`` in ``dtype`` (complex: circular, E|z|^2 = 1).

    The draw is kept out of the multiply's fusion: fused, XLA's CPU code for erf_inv
    rounds differently in the last bit, and jinit promises jax's values exactly.
    """
    if len(shape) > _MAX_RANK:
        x = _random.normal(key, _flat(shape), compute_dtype(dtype), None).reshape(shape)
    else:
        x = _random.normal(key, shape, compute_dtype(dtype), out_sharding)
    x = jax.lax.optimization_barrier(x)
    return constrain((x * factor + loc).astype(dtype), out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def truncated_normal(
    key, lower, upper, factor, loc, clip_lo, clip_hi, *, shape, dtype, out_sharding
):
    """``TN(lower, upper) * factor + loc``: a standard normal truncated to (lower, upper),
    by jax's algorithm (same values), clamped into ``[clip_lo, clip_hi]`` after the cast."""
    cdt = compute_dtype(dtype)
    if len(shape) > _MAX_RANK:
        lo, hi = _flat_arg(lower, shape), _flat_arg(upper, shape)
        x = _random.truncated_normal(key, lo, hi, _flat(shape), cdt, None).reshape(shape)
    else:
        x = _random.truncated_normal(key, lower, upper, shape, cdt, out_sharding)
    x = (x * factor + loc).astype(dtype)
    return constrain(clamp_inside(x, clip_lo, clip_hi), out_sharding)


def clamp_inside(x: jax.Array, lo, hi) -> jax.Array:
    """Clamps ``x`` to the values of its dtype that lie inside ``[lo, hi]``.

    A draw inside the bounds can round outward when cast to a narrow dtype (bfloat16:
    ``0.2999`` becomes ``0.30078`` > 0.3); each bound is replaced by its nearest
    representable value on the inside before clamping.
    """
    dtype = x.dtype
    top = float(jnp.finfo(dtype).max)  # not inf: float8_e4m3fn has no infinity
    lo = jnp.clip(jnp.asarray(lo), -top, top)
    hi = jnp.clip(jnp.asarray(hi), -top, top)
    lo_d, hi_d = lo.astype(dtype), hi.astype(dtype)
    up, down = jnp.asarray(top, dtype), jnp.asarray(-top, dtype)
    lo_d = jnp.where(lo_d.astype(lo.dtype) < lo, jnp.nextafter(lo_d, up), lo_d)
    hi_d = jnp.where(hi_d.astype(hi.dtype) > hi, jnp.nextafter(hi_d, down), hi_d)
    return jnp.clip(x, lo_d, hi_d)


def _log_ndtr_inverse(logp: jax.Array) -> jax.Array:
    """``y`` with ``log Phi(y) = logp``, accurate far into the lower tail.

    ``ndtri(exp(logp))`` where ``exp(logp)`` is a normal number; below that, the asymptote
    ``y ~ -sqrt(t - log t - log 2 pi)``, ``t = -2 logp``, refined by Newton steps on
    ``log Phi`` (whose derivative is the inverse Mills ratio).
    """
    dtype = logp.dtype
    tiny = float(np.log(np.finfo(dtype).tiny)) + 10.0
    direct = jax.scipy.special.ndtri(jnp.exp(jnp.maximum(logp, tiny)))
    t = -2.0 * jnp.minimum(logp, tiny)
    y = -jnp.sqrt(t - jnp.log(t) - math.log(2 * math.pi))
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    target = jnp.minimum(logp, tiny)

    def newton(_, y):
        log_cdf = jax.scipy.special.log_ndtr(y)
        log_pdf = -0.5 * y * y - half_log_2pi
        return y - (log_cdf - target) * jnp.exp(log_cdf - log_pdf)

    def refine():  # a loop, not unrolled: one copy of log_ndtr in the program
        return jnp.where(logp > tiny, direct, jax.lax.fori_loop(0, 4, newton, y))

    # Only draws beyond ~13 (float32) standard deviations need it: skip it otherwise.
    return jax.lax.cond(jnp.any(logp <= tiny), refine, lambda: direct)


def tail_truncated_normal(key, lower, upper, shape, dtype) -> jax.Array:
    """A standard normal truncated to ``(lower, upper)``, exact in the far tails.

    Inverse-CDF sampling in log space: the interval is reflected so that most of it lies
    left of 0, where ``log Phi`` is accurate, and
    ``log(Phi(a) + u (Phi(b) - Phi(a))) = log Phi(b) + log(u + (1 - u) Phi(a)/Phi(b))``
    is inverted by :func:`_log_ndtr_inverse`. ``(10, 11)`` has mean 10.098 here; the
    erf-based method (jax's) returns 11 for every draw there.
    """
    lower = jnp.asarray(lower, dtype)
    upper = jnp.asarray(upper, dtype)
    flip = lower + upper > 0
    a = jnp.where(flip, -upper, lower)
    b = jnp.where(flip, -lower, upper)
    u = jax.random.uniform(key, shape, dtype)
    log_b = jax.scipy.special.log_ndtr(b)
    ratio = jnp.exp(jax.scipy.special.log_ndtr(a) - log_b)
    logp = log_b + jnp.log(u + (1 - u) * ratio)
    y = _log_ndtr_inverse(jnp.minimum(logp, 0.0))
    y = jnp.clip(y, a, b)
    return jnp.where(flip, -y, y)


@functools.partial(jax.jit, static_argnames=_STATIC)
def tail_truncated_normal_scaled(
    key, lower, upper, factor, loc, clip_lo, clip_hi, *, shape, dtype, out_sharding
):
    """``TN(lower, upper) * factor + loc`` by :func:`tail_truncated_normal` (torch/keras
    semantics: the true truncated distribution, far tails included), clamped after the cast."""
    x = tail_truncated_normal(key, lower, upper, shape, compute_dtype(dtype))
    x = (x * factor + loc).astype(dtype)
    return constrain(clamp_inside(x, clip_lo, clip_hi), out_sharding)


# --------------------------------------------------------------------------------------
# Complex distributions (variance_scaling with a complex dtype)
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=_STATIC)
def complex_uniform(key, factor, *, shape, dtype, out_sharding) -> jax.Array:
    """Uniform on the unit-variance disk ``|z| <= sqrt(2)``, times ``factor``."""
    key_r, key_theta = jax.random.split(key)
    rdtype, flat = real_dtype(dtype), _flat(shape)
    r = jnp.sqrt(2 * _random.uniform(key_r, flat, rdtype, 0.0, 1.0, None)).astype(dtype)
    u = _random.uniform(key_theta, flat, rdtype, 0.0, 1.0, None)
    theta = 2 * np.pi * u.astype(dtype)
    return constrain((r * jnp.exp(1j * theta) * factor).reshape(shape), out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def complex_truncated_normal(key, upper, factor, *, shape, dtype, out_sharding) -> jax.Array:
    """A circular complex normal (E|z|^2 = 1 before truncation) with ``|z| < upper``."""
    key_r, key_theta = jax.random.split(key)
    rdtype, flat = real_dtype(dtype), _flat(shape)
    t = (1 - jnp.exp(jnp.asarray(-(upper**2), dtype))) * _random.uniform(
        key_r, flat, rdtype, 0.0, 1.0, None
    ).astype(dtype)
    r = jnp.sqrt(-jnp.log(1 - t))
    u = _random.uniform(key_theta, flat, rdtype, 0.0, 1.0, None)
    theta = 2 * np.pi * u.astype(dtype)
    return constrain((r * jnp.exp(1j * theta) * factor).reshape(shape), out_sharding)


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
    q = jnp.transpose(q, tuple(int(i) for i in np.argsort(source_order)))
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
    index = (*centre, rows, cols)
    w = jnp.zeros(shape, dtype).at[index].set(jnp.asarray(scale, dtype))
    return constrain(w, out_sharding)
