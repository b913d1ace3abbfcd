"""Unrolled Threefry-2x32 samplers, bit-identical to :mod:`jax.random`.

jax lowers its ``threefry2x32`` primitive on CPU to a rolled ``while`` loop of five
iterations over whole arrays (``use_rolled_loops=True`` for the cpu platform), so every
random word costs five round trips through memory. This module expresses the same hash
(Salmon et al. 2011) directly with ``jax.numpy``/``lax`` ops, all twenty rounds unrolled,
so XLA emits one straight-line, vectorizable fused loop that goes through memory once.
The counters are built from ``iota`` exactly as jax builds them, so the results are
*bit-identical* to ``jax.random`` for threefry2x32 keys, and XLA's sharding propagation
partitions the counters: under ``jax.jit(..., out_shardings=...)`` each device hashes only
its own shard.

Both of jax's counter schemes are reproduced, selected by ``jax_threefry_partitionable``
(default ``True`` since jax 0.5):

* partitionable: element ``i`` (row-major linear index) hashes the 64-bit counter ``i``
  given as the word pair ``(i >> 32, i & 0xffffffff)``; 32-bit draws are ``y0 ^ y1``,
  64-bit draws ``y0 << 32 | y1``, 8/16-bit draws the low bits of ``y0 ^ y1``.
* original: ``ceil(bits * size / 32)`` words ``0, 1, ...`` are split in two halves which
  are hashed pairwise; the output words are concatenated and reinterpreted.

Every sampler (``random_bits``, ``uniform``, ``normal``, ``truncated_normal``) checks
:func:`is_supported` and falls back to ``jax.random`` when
the key is not a threefry2x32 key (rbg, unsafe_rbg, custom), when a configuration is in
effect that is not reproduced, on non-CPU backends (where jax's own lowering is already
unrolled), or when the installed jax/jaxlib pair is neither one the test suite verified
nor passes a one-time self-check against ``jax.random``. Whatever path is taken, the
numbers are the ones ``jax.random`` returns. The other names (``threefry2x32``,
``linear_iota``, ``bits_partitionable``, ``partitionable``, ``default_impl_is_threefry``) are
building blocks for :mod:`jinit.tools._fast_init_rewrite`, which checks
:func:`is_supported` itself.

References:
    Salmon, Moraes, Dror, Shaw (2011). "Parallel random numbers: as easy as 1, 2, 3".
    SC '11. https://doi.org/10.1145/2063384.2063405
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from jax import lax

__all__ = [
    "bits_partitionable",
    "default_impl_is_threefry",
    "is_supported",
    "linear_iota",
    "normal",
    "partitionable",
    "random_bits",
    "threefry2x32",
    "truncated_normal",
    "uniform",
]

# Rotation constants of Threefry-2x32 (Salmon et al. 2011, table 4), in two groups of four
# rounds that alternate, and the key-schedule parity constant.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KS_PARITY = 0x1BD11BDA
_BIT_WIDTHS = (8, 16, 32, 64)
_UINT_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
# Counter schemes reproduced, by value of `jax_threefry_partitionable`.
_SCHEMES = (True, False)
# jax.config exposes its flags as dynamic attributes, which type checkers cannot see.
_CONFIG: Any = jax.config
# Beyond 2**32 elements the partitionable counters need a high word; leave that to jax.
_MAX_SIZE = 2**32 - 1


# --------------------------------------------------------------------------- the hash


def _u32(x: int) -> np.uint32:
    return np.uint32(x)


def threefry2x32(
    k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds, unrolled (Salmon et al. 2011).

    Args:
        k0: first key word, uint32 (broadcastable against the counters).
        k1: second key word, uint32.
        x0: first counter word, uint32 array.
        x1: second counter word, uint32 array of the same shape.

    Returns:
        The two hashed words, each of the counters' shape.
    """
    ks = (k0, k1, k0 ^ k1 ^ _u32(_KS_PARITY))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = lax.shift_left(x1, _u32(r)) | lax.shift_right_logical(x1, _u32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + _u32(i + 1)
    return x0, x1


def linear_iota(shape: tuple[int, ...]) -> jax.Array:
    """Row-major linear index of every element, modulo 2**32, built from broadcasted iotas.

    Written as ``sum_d iota_d * stride_d`` (as jax does) rather than ``iota(size).reshape``
    so that XLA's sharding propagation can partition it along any axis.
    """
    if not shape:
        return jnp.zeros((), np.uint32)
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    out = None
    for d, s in enumerate(strides):
        if shape[d] == 1:
            continue
        term = lax.broadcasted_iota(np.uint32, shape, d)
        if s != 1:
            term = term * _u32(s % 2**32)
        out = term if out is None else out + term
    if out is None:
        return jnp.zeros(shape, np.uint32)
    return out


def bits_partitionable(
    kd: jax.Array, shape: tuple[int, ...], bit_width: int, offset: jax.Array | None = None
) -> jax.Array:
    """jax's partitionable-scheme bits of the raw key ``kd``: element ``i`` hashes the
    64-bit counter ``i`` (high word 0: size < 2**32, low word ``i``). ``offset``, a uint32
    zero that XLA cannot prove, may be added to the counters to keep them inside a loop
    body (``jinit.tools._fast_init_rewrite``)."""
    lo = linear_iota(shape)
    if offset is not None:
        lo = lo + offset
    y0, y1 = threefry2x32(kd[0], kd[1], jnp.zeros_like(lo), lo)
    dtype = _UINT_DTYPES[bit_width]
    if bit_width == 64:
        return lax.shift_left(y0.astype(dtype), dtype(32)) | y1.astype(dtype)
    out = y0 ^ y1
    return out if bit_width == 32 else out.astype(dtype)


def _bits_original(kd: jax.Array, shape: tuple[int, ...], bit_width: int) -> jax.Array:
    size = math.prod(shape)
    n_words = -(-bit_width * size // 32)
    dtype = _UINT_DTYPES[bit_width]
    if n_words == 0:
        return jnp.zeros(shape, dtype)
    # jax hashes the pairs (c[j], c[j + h]) of the count vector c = [0, ..., n_words - 1],
    # zero-padded to even length 2h, and concatenates the two output halves.
    half = -(-n_words // 2)
    x0 = lax.iota(np.uint32, half)
    x1 = x0 + _u32(half)
    if n_words % 2:
        x1 = jnp.where(x0 == _u32(half - 1), _u32(0), x1)
    y0, y1 = threefry2x32(kd[0], kd[1], x0, x1)
    words = jnp.concatenate([y0, y1])[:n_words]
    if bit_width == 64:
        return lax.shift_left(y0.astype(dtype), dtype(32)).reshape(shape) | y1.astype(
            dtype
        ).reshape(shape)
    if bit_width == 32:
        return words.reshape(shape)
    # Little-endian view of each word as 32 // bit_width narrower values.
    per_word = 32 // bit_width
    shifts = (np.arange(per_word, dtype=np.uint32) * np.uint32(bit_width))[None, :]
    parts = lax.shift_right_logical(words[:, None], jnp.asarray(shifts))
    return parts.reshape(-1)[:size].astype(dtype).reshape(shape)


def _bits(kd: jax.Array, shape: tuple[int, ...], bit_width: int, partitionable: bool) -> jax.Array:
    if partitionable:
        return bits_partitionable(kd, shape, bit_width)
    return _bits_original(kd, shape, bit_width)


# ------------------------------------------------------------------- the distributions


def _uniform_core(
    kd: jax.Array,
    minval: jax.Array,
    maxval: jax.Array,
    shape: tuple[int, ...],
    dtype: np.dtype,
    partitionable: bool,
) -> jax.Array:
    # Same op sequence as jax.random.uniform: random mantissa with exponent 0 -> [1, 2),
    # minus one, affine map, then max with minval.
    minval = lax.convert_element_type(minval, dtype)
    maxval = lax.convert_element_type(maxval, dtype)
    minval = lax.broadcast_to_rank(minval, len(shape))
    maxval = lax.broadcast_to_rank(maxval, len(shape))
    finfo = jnp.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    rng_bits = 8 if nmant < 8 else nbits
    uint_dtype = _UINT_DTYPES[nbits]
    bits = _bits(kd, shape, rng_bits, partitionable)
    if rng_bits != nbits:
        bits = lax.convert_element_type(bits, uint_dtype)
    float_bits = lax.shift_right_logical(bits, jnp.array(rng_bits - nmant, uint_dtype))
    one_bits = np.array(1.0, dtype).view(uint_dtype)
    float_bits = lax.bitwise_or(float_bits, jnp.asarray(one_bits, dtype=uint_dtype))
    floats = lax.bitcast_convert_type(float_bits, dtype) - jnp.array(1.0, dtype)
    return lax.max(minval, lax.reshape(floats * (maxval - minval) + minval, shape))


@functools.partial(jax.jit, static_argnames=("shape", "bit_width", "partitionable"))
def _random_bits_jit(kd, *, shape, bit_width, partitionable):
    return _bits(kd, shape, bit_width, partitionable)


@functools.partial(jax.jit, static_argnames=("shape", "dtype", "partitionable"))
def _uniform_jit(kd, minval, maxval, *, shape, dtype, partitionable):
    return _uniform_core(kd, minval, maxval, shape, dtype, partitionable)


@functools.partial(jax.jit, static_argnames=("shape", "dtype", "partitionable"))
def _normal_jit(kd, *, shape, dtype, partitionable):
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    hi = np.array(1.0, dtype)
    u = _uniform_core(kd, lo, hi, shape, dtype, partitionable)
    return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(u))


@functools.partial(jax.jit, static_argnames=("shape", "dtype", "partitionable"))
def _truncated_normal_jit(kd, lower, upper, *, shape, dtype, partitionable):
    sqrt2 = np.array(np.sqrt(2), dtype)
    lower = lax.convert_element_type(lower, dtype)
    upper = lax.convert_element_type(upper, dtype)
    a = lax.erf(lower / sqrt2)
    b = lax.erf(upper / sqrt2)
    u = _uniform_core(kd, a, b, shape, dtype, partitionable)
    out = sqrt2 * lax.erf_inv(u)
    # Clamp into the open interval (lower, upper), as jax does.
    return jnp.clip(
        out,
        lax.nextafter(lax.stop_gradient(lower), np.array(np.inf, dtype=dtype)),
        lax.nextafter(lax.stop_gradient(upper), np.array(-np.inf, dtype=dtype)),
    )


# ---------------------------------------------------------------------------- the guard


def default_impl_is_threefry() -> bool:
    """Whether raw ``uint32`` keys are Threefry keys (``jax_default_prng_impl``)."""
    return _CONFIG.jax_default_prng_impl == "threefry2x32"


def partitionable() -> bool:
    """Whether jax draws with the partitionable counter scheme (``jax_threefry_partitionable``)."""
    return bool(_CONFIG.jax_threefry_partitionable)


def _config_state() -> tuple[Any, ...]:
    return (
        _CONFIG.jax_threefry_partitionable,
        _CONFIG.jax_enable_x64,
        _CONFIG.jax_default_prng_impl,
        _CONFIG.jax_legacy_prng_key,
    )


def _probe() -> bool:
    """Compare this module against ``jax.random`` on small draws for the current config.

    Covers the counter scheme (32-bit words), the mantissa trick in three float widths
    (bfloat16 draws 8-bit words, float16 16-bit ones), ``erf_inv``, the truncation clamp
    and, under x64, 64-bit draws. Runs eagerly (also when first reached while tracing),
    one compiled program per side.

    Returns:
        ``True`` when every draw is bit-identical to ``jax.random``'s.
    """
    part = bool(_CONFIG.jax_threefry_partitionable)
    f32, f16, bf16 = np.dtype(np.float32), np.dtype(np.float16), np.dtype(jnp.bfloat16)
    x64 = bool(_CONFIG.jax_enable_x64)

    def ours(kd):
        seven = jnp.full((1,), 7, np.uint32)
        out = [
            _random_bits_jit(kd, shape=(3, 5), bit_width=32, partitionable=part),
            _uniform_jit(kd, -1.5, 2.0, shape=(3, 5), dtype=bf16, partitionable=part),
            _normal_jit(kd, shape=(33,), dtype=f32, partitionable=part),
            _normal_jit(kd, shape=(7,), dtype=f16, partitionable=part),
            _truncated_normal_jit(kd, -2.0, 2.0, shape=(33,), dtype=f32, partitionable=part),
            # fold_in(key, 7) = threefry2x32(key, (0, 7)), as fast_init's grouped fold_ins
            jnp.stack(threefry2x32(kd[0], kd[1], jnp.zeros((1,), np.uint32), seven), -1)[0],
        ]
        if x64:
            out.append(_random_bits_jit(kd, shape=(5,), bit_width=64, partitionable=part))
            out.append(_normal_jit(kd, shape=(9,), dtype=np.dtype(np.float64), partitionable=part))
        return out

    def theirs(key):
        out = [
            jax.random.bits(key, (3, 5), np.uint32),
            jax.random.uniform(key, (3, 5), bf16, -1.5, 2.0),
            jax.random.normal(key, (33,), f32),
            jax.random.normal(key, (7,), f16),
            jax.random.truncated_normal(key, -2.0, 2.0, (33,), f32),
            jax.random.key_data(jax.random.fold_in(key, 7)),
        ]
        if x64:
            out.append(jax.random.bits(key, (5,), np.uint64))
            out.append(jax.random.normal(key, (9,), np.float64))
        return out

    with jax.ensure_compile_time_eval():
        key = jax.random.key(20111112, impl="threefry2x32")
        mine = jax.jit(ours)(jax.random.key_data(key))
        ref = jax.jit(theirs)(key)
        return all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(mine, ref, strict=True)
        )


# (jax, jaxlib) versions on which the whole of tests/test_threefry.py (every scheme, width,
# dtype and config reproduced here) passed bit for bit on CPU. On these the fast path is
# trusted without the run-time self-check, which costs 1.3-3 s of compilation in every fresh
# process (also under jax.eval_shape). Add a version here only after that test file passes
# on it; any other version runs :func:`_probe` once per process and configuration.
_VERIFIED_VERSIONS = frozenset({("0.10.2", "0.10.2")})

_PROBE_RESULTS: dict[tuple[Any, ...], bool] = {}


def _versions() -> tuple[str, str]:
    return jax.__version__, jaxlib.__version__


def _probe_passes() -> bool:
    if _versions() in _VERIFIED_VERSIONS:
        return True
    state = _config_state()
    if state not in _PROBE_RESULTS:
        _PROBE_RESULTS[state] = bool(_probe())
    return _PROBE_RESULTS[state]


def _cpu_backend() -> bool:
    """Whether jax's default backend is the CPU, the only one where jax's threefry is slow.

    On GPU/TPU jax lowers threefry to unrolled straight-line code itself, so the fast path
    would buy nothing there; draws go to ``jax.random`` and no verification is needed.
    """
    return jax.default_backend() == "cpu"


def _is_typed_key(key: Any) -> bool:
    return isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def is_supported(key: Any) -> bool:
    """Whether this module reproduces ``jax.random`` for ``key`` under the current config.

    ``True`` for a single (unbatched) threefry2x32 key: a typed ``jax.random.key(...)`` of
    the threefry2x32 implementation, or a raw ``uint32[2]`` key while the default
    implementation is threefry2x32 and raw keys are allowed silently
    (``jax_legacy_prng_key='allow'``). Also requires the CPU backend (elsewhere jax's own
    code is fast), that the counter scheme selected by ``jax_threefry_partitionable`` is
    implemented here, and that the installed jax/jaxlib pair is one the test suite verified
    (``_VERIFIED_VERSIONS``) or, for any other pair, that a one-time self-check against
    ``jax.random`` (cached per configuration) passed.

    Works on tracers too (it only looks at the key's type, shape and dtype).

    Args:
        key: the PRNG key that would be passed to ``jax.random``.

    Returns:
        ``True`` when the fast path gives the same numbers as ``jax.random``.

    Examples:
        >>> import jax
        >>> is_supported(jax.random.key(0))
        True
        >>> is_supported(jax.random.key(0, impl="rbg"))
        False
    """
    if _is_typed_key(key):
        if key.shape != () or jax.random.key_impl(key) != "threefry2x32":
            return False
    else:
        if np.shape(key) != (2,) or getattr(key, "dtype", None) != np.uint32:
            return False
        if _CONFIG.jax_default_prng_impl != "threefry2x32":
            return False
        if _CONFIG.jax_legacy_prng_key != "allow":
            return False
    if _CONFIG.jax_threefry_partitionable not in _SCHEMES or not _cpu_backend():
        return False
    return _probe_passes()


# ------------------------------------------------------------------------- public API


def _key_data(key: Any) -> jax.Array:
    return jax.random.key_data(key) if _is_typed_key(key) else jnp.asarray(key)


def _canonical_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, ...]:
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(
            f"`{name}` must be a sequence of non-negative ints; got {shape!r}."
        ) from None
    if any(d < 0 for d in dims):
        raise ValueError(f"`{name}` must be a sequence of non-negative ints; got {shape!r}.")
    return dims


def _float_dtype(dtype: Any) -> np.dtype | None:
    """Canonical float dtype as jax would use it, or None if jax should handle it."""
    try:
        requested = jnp.dtype(float if dtype is None else dtype)
    except TypeError:
        return None
    dt = np.dtype(jax.dtypes.canonicalize_dtype(requested))
    if dtype is not None and dt != requested:
        return None  # e.g. float64 without x64: let jax canonicalize (and warn)
    if not jnp.issubdtype(dt, np.floating) or jnp.finfo(dt).bits not in _BIT_WIDTHS:
        return None
    return dt


def _fast(key: Any, shape: tuple[int, ...]) -> bool:
    return math.prod(shape) <= _MAX_SIZE and is_supported(key)


def random_bits(key: jax.Array, shape: Sequence[int], bit_width: int = 32) -> jax.Array:
    """Uniform random bits, equal to ``jax.random.bits(key, shape, uint{bit_width})``.

    Args:
        key: a typed or raw threefry2x32 key (other keys are passed on to jax.random).
        shape: the output shape.
        bit_width: 8, 16, 32 or 64 (64 needs ``jax_enable_x64``).

    Returns:
        An array of ``shape`` and dtype ``uint{bit_width}``.

    Raises:
        ValueError: if ``bit_width`` is not one of 8, 16, 32, 64 or ``shape`` is negative.
        TypeError: if ``shape`` is not a sequence of ints.

    Examples:
        >>> import jax
        >>> x = random_bits(jax.random.key(0), (2, 3), 8)
        >>> x.shape, x.dtype
        ((2, 3), dtype('uint8'))
        >>> bool((x == jax.random.bits(jax.random.key(0), (2, 3), "uint8")).all())
        True
    """
    if bit_width not in _BIT_WIDTHS:
        raise ValueError(f"`bit_width` must be one of 8, 16, 32, 64; got {bit_width!r}.")
    shape = _canonical_shape(shape)
    dtype = _UINT_DTYPES[bit_width]
    if (bit_width == 64 and not _CONFIG.jax_enable_x64) or not _fast(key, shape):
        return jax.random.bits(key, shape, dtype)
    return _random_bits_jit(
        _key_data(key),
        shape=shape,
        bit_width=bit_width,
        partitionable=bool(_CONFIG.jax_threefry_partitionable),
    )


def uniform(
    key: jax.Array,
    shape: Sequence[int] = (),
    dtype: Any = None,
    minval: Any = 0.0,
    maxval: Any = 1.0,
) -> jax.Array:
    """Uniform floats in ``[minval, maxval)``, equal to ``jax.random.uniform``.

    Args:
        key: a typed or raw threefry2x32 key (other keys are passed on to jax.random).
        shape: the output shape.
        dtype: a float dtype; ``None`` for the default float dtype.
        minval: inclusive lower bound, broadcast-compatible with ``shape`` (may be traced).
        maxval: exclusive upper bound, broadcast-compatible with ``shape`` (may be traced).

    Returns:
        An array of ``shape`` and ``dtype``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> x = uniform(jax.random.key(0), (4, 4), jnp.bfloat16, -1.0, 1.0)
        >>> bool((x == jax.random.uniform(jax.random.key(0), (4, 4), jnp.bfloat16, -1, 1)).all())
        True
    """
    shape = _canonical_shape(shape)
    dt = _float_dtype(dtype)
    if dt is None or not _fast(key, shape) or not _broadcastable(shape, minval, maxval):
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    return _uniform_jit(
        _key_data(key),
        minval,
        maxval,
        shape=shape,
        dtype=dt,
        partitionable=bool(_CONFIG.jax_threefry_partitionable),
    )


def normal(key: jax.Array, shape: Sequence[int] = (), dtype: Any = None) -> jax.Array:
    """Standard normal floats, equal to ``jax.random.normal`` for real dtypes.

    Computed as ``sqrt(2) * erf_inv(u)`` with ``u`` uniform on ``(-1, 1)``, like jax.

    Args:
        key: a typed or raw threefry2x32 key (other keys are passed on to jax.random).
        shape: the output shape.
        dtype: a float dtype; ``None`` for the default float dtype. Complex dtypes are
            passed on to ``jax.random.normal``.

    Returns:
        An array of ``shape`` and ``dtype``.

    Examples:
        >>> import jax
        >>> x = normal(jax.random.key(0), (3, 3, 16, 32))
        >>> bool((x == jax.random.normal(jax.random.key(0), (3, 3, 16, 32))).all())
        True
    """
    shape = _canonical_shape(shape)
    dt = _float_dtype(dtype)
    if dt is None or not _fast(key, shape):
        return jax.random.normal(key, shape, dtype)
    return _normal_jit(
        _key_data(key),
        shape=shape,
        dtype=dt,
        partitionable=bool(_CONFIG.jax_threefry_partitionable),
    )


def truncated_normal(
    key: jax.Array,
    lower: Any,
    upper: Any,
    shape: Sequence[int] | None = None,
    dtype: Any = None,
) -> jax.Array:
    """Standard normal truncated to ``(lower, upper)``, equal to ``jax.random.truncated_normal``.

    Inverse-CDF sampling: ``sqrt(2) * erf_inv(u)``, ``u ~ U[erf(lower/sqrt2),
    erf(upper/sqrt2))``, clamped into the open interval, like jax.

    Args:
        key: a typed or raw threefry2x32 key (other keys are passed on to jax.random).
        lower: lower bound(s), broadcast-compatible with ``shape`` (may be traced).
        upper: upper bound(s), broadcast-compatible with ``shape`` (may be traced).
        shape: the output shape; ``None`` broadcasts the shapes of ``lower`` and ``upper``.
        dtype: a float dtype; ``None`` for the default float dtype.

    Returns:
        An array of ``shape`` and ``dtype`` with values in ``(lower, upper)``.

    Examples:
        >>> import jax
        >>> x = truncated_normal(jax.random.key(0), -2.0, 2.0, (5, 7))
        >>> bool((x == jax.random.truncated_normal(jax.random.key(0), -2.0, 2.0, (5, 7))).all())
        True
    """
    if shape is None:
        shape = np.broadcast_shapes(np.shape(lower), np.shape(upper))
    shape = _canonical_shape(shape)
    dt = _float_dtype(dtype)
    if dt is None or not _fast(key, shape) or not _broadcastable(shape, lower, upper):
        return jax.random.truncated_normal(key, lower, upper, shape, dtype)
    return _truncated_normal_jit(
        _key_data(key),
        lower,
        upper,
        shape=shape,
        dtype=dt,
        partitionable=bool(_CONFIG.jax_threefry_partitionable),
    )


def _broadcastable(shape: tuple[int, ...], *params: Any) -> bool:
    """Whether parameters broadcast to exactly ``shape`` (else jax raises its own error)."""
    try:
        return np.broadcast_shapes(shape, *(np.shape(p) for p in params)) == shape
    except ValueError:
        return False
