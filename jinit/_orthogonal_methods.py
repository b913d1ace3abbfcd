r"""Samplers of Haar-distributed (semi-)orthogonal matrices, by three algorithms.

All three return a ``(*batch_shape, n, m)`` matrix whose columns (``n >= m``) or rows
(``n < m``) are orthonormal, uniformly distributed with respect to the Haar measure, and
independent across the batch. They differ in cost and in which values they return:

* :func:`haar_qr` is ``jax.random.orthogonal`` value for value: a Gaussian matrix ``Z``,
  ``Z = QR`` by Householder QR (LAPACK ``geqrf`` + ``orgqr`` on CPU), then
  ``Q diag(sign(diag R))`` (Mezzadri 2007). The Gaussian draw uses the unrolled Threefry
  sampler (:mod:`jinit._threefry`), which returns the same bits as jax, faster.
* :func:`haar_householder` skips the factorization (Stewart 1980): the ``k``-th Householder
  vector of the QR of a Gaussian matrix is itself a Gaussian vector of length
  ``n - k + 1``, independent of the others, so the reflectors are drawn directly and only
  their product is formed, in the compact "UT" form
  ``H_1 \cdots H_m = I - Y S^{-1} Y^T`` with ``S = I + \mathrm{striu}(Y^T Y)`` for
  reflectors ``H_k = I - y_k y_k^T``, ``\|y_k\|^2 = 2`` (Joffrain et al. 2006), in blocks
  of 32 or 128 columns beyond 64 columns. Matrix products and unit-triangular solves
  only (level-3 BLAS), batched over the batch.
* :func:`haar_cholesky_qr2` for tall matrices (``max(n, m) >= 4 min(n, m)``): CholeskyQR
  applied twice (Fukaya et al. 2014), ``G = Z^T Z = R^T R``, ``Q = Z R^{-1}``; since
  ``diag R > 0`` this is exactly the sign-corrected Q of ``Z``. A tall Gaussian matrix is
  well conditioned (condition number about ``(1 + sqrt(m/n)) / (1 - sqrt(m/n))``), so
  Cholesky is safe in float32; if it still breaks down (non-finite values, or a second
  factor far from the identity, anywhere in the batch) the whole batch is recomputed by
  QR (``lax.cond``). Shapes that are not tall
  enough go to QR directly, because CholeskyQR2 loses orthogonality on square Gaussian
  matrices in float32.

float16 and bfloat16 are computed in float32 and cast at the end (jax's QR has no
half-precision kernel on CPU); float32 and float64 are computed in their own precision.
:func:`haar_qr` accepts complex dtypes (unitary matrices), like jax; the other two are for
real dtypes only.

References:
    Stewart, G. W. (1980). "The efficient generation of random orthogonal matrices with
    an application to condition estimators". SIAM J. Numer. Anal. 17(3), 403-409.

    Mezzadri, F. (2007). "How to generate random matrices from the classical compact
    groups". Notices of the AMS 54(5), 592-604. https://arxiv.org/abs/math-ph/0609050

    Joffrain, Low, Quintana-Orti, van de Geijn, Van Zee (2006). "Accumulating Householder
    transformations, revisited". ACM TOMS 32(2), 169-179.

    Fukaya, Nakatsukasa, Yanagisawa, Yamamoto (2014). "CholeskyQR2: a simple and
    communication-avoiding algorithm for computing a tall-skinny QR factorization on a
    large-scale parallel system". ScalA '14.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec

from jinit import _threefry

__all__ = [
    "ALGORITHMS",
    "METHODS",
    "REAL_ONLY",
    "haar_cholesky_qr2",
    "haar_householder",
    "haar_qr",
    "resolve",
    "sample",
]

# The one list of orthogonal methods (``jinit.orthogonal(method=...)``): "auto" and the
# three algorithms. Everything else (validation, dispatch, tests, benchmarks) derives from it.
ALGORITHMS: tuple[str, ...] = ("qr", "householder", "cholesky_qr2")
METHODS: tuple[str, ...] = ("auto", *ALGORITHMS)
# Algorithms that sample real matrices only ("qr" also gives unitary ones).
REAL_ONLY: tuple[str, ...] = ("householder", "cholesky_qr2")

# CholeskyQR2 is used when the long side is at least this many times the short side.
CHOLESKY_MIN_ASPECT = 4


def resolve(method: str, batch_shape: Sequence[int], dtype: Any) -> str:
    """The algorithm that ``method`` stands for: ``"auto"`` picks the fastest safe one.

    ``"auto"`` is ``"qr"`` for a single matrix (``jax.nn.initializers.orthogonal``'s values)
    and for complex dtypes (the only unitary sampler), and ``"householder"`` for stacks of
    real matrices: 0.12-0.51x the time of a loop of jax calls on the idle 2-core machine,
    where batched QR measured 0.67-1.3x (``benchmarks/results/``). Stacks therefore do not reproduce
    ``jax.random.orthogonal``'s values (``method="qr"`` does); they sample the same
    distribution. All methods give the same values on every mesh: the matrix products of
    ``"householder"`` and ``"cholesky_qr2"`` are kept whole under SPMD partitioning, as
    LAPACK's QR is. Batched LAPACK calls also share XLA's CPU thread pool, and two of them
    running at once can wait on each other forever when the pool has as many threads as
    cores (jaxlib 0.10.2, 2 cores); ``"householder"`` calls no LAPACK.

    Args:
        method: one of :data:`METHODS`.
        batch_shape: the batch dimensions of the draw.
        dtype: the dtype of the draw.

    Returns:
        One of :data:`ALGORITHMS`.

    Raises:
        ValueError: if ``method`` is not one of :data:`METHODS`.

    Examples:
        >>> resolve("auto", (), "float32"), resolve("auto", (16,), "float32")
        ('qr', 'householder')
    """
    if method not in METHODS:
        allowed = ", ".join(repr(m) for m in METHODS)
        raise ValueError(f"`method` must be one of {allowed}; got {method!r}.")
    if method != "auto":
        return method
    if not tuple(batch_shape) or not jnp.issubdtype(jnp.dtype(dtype), np.floating):
        return "qr"
    return "householder"


# ---------------------------------------------------------------------- validation


def _canonical_args(
    n: Any, m: Any, batch_shape: Any, dtype: Any, *, real_only: bool, name: str
) -> tuple[int, int, tuple[int, ...], np.dtype]:
    dims = []
    for arg_name, value in (("n", n), ("m", n if m is None else m)):
        if isinstance(value, bool):
            raise TypeError(f"`{arg_name}` must be a non-negative int; got {value!r}.")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"`{arg_name}` must be a non-negative int; got {value!r}.") from None
        if value < 0:
            raise ValueError(f"`{arg_name}` must be a non-negative int; got {value!r}.")
        dims.append(value)
    try:
        batch = tuple(operator.index(d) for d in batch_shape)
    except TypeError:
        raise TypeError(
            f"`batch_shape` must be a sequence of non-negative ints; got {batch_shape!r}."
        ) from None
    if any(d < 0 for d in batch):
        raise ValueError(
            f"`batch_shape` must be a sequence of non-negative ints; got {batch_shape!r}."
        )
    dt = jnp.dtype(jax.dtypes.canonicalize_dtype(float if dtype is None else dtype))
    allowed = (np.floating,) if real_only else (np.floating, np.complexfloating)
    if not any(jnp.issubdtype(dt, kind) for kind in allowed):
        kinds = "a real float dtype" if real_only else "a float or complex dtype"
        raise TypeError(f"{name}: `dtype` must be {kinds}; got {dt}.")
    return dims[0], dims[1], batch, dt


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """Precision in which the linear algebra runs: at least float32."""
    if jnp.issubdtype(dtype, np.floating) and jnp.finfo(dtype).bits < 32:
        return np.dtype(np.float32)
    return dtype


def _swap(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, -1, -2)


def _sign_corrected_qr(z: jax.Array) -> jax.Array:
    """``Q diag(sign(diag R))`` of ``Z = QR``: exactly jax.random.orthogonal's operations."""
    q, r = jnp.linalg.qr(z)
    d = jnp.linalg.diagonal(r)
    return q * jnp.expand_dims(jnp.sign(d), -2)


def _gaussian(key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    return _threefry.normal(key, shape, dtype)


# ------------------------------------------------------------------------- jax's QR


def haar_qr(
    key: jax.Array,
    n: int,
    m: int | None = None,
    batch_shape: Sequence[int] = (),
    dtype: Any = None,
) -> jax.Array:
    r"""Haar (semi-)orthogonal matrices by sign-corrected QR, equal to jax.random.orthogonal.

    .. math::
        Z \sim \mathcal{N}(0, 1)^{\max(n,m) \times \min(n,m)},\quad Z = QR,\quad
        X = Q\,\mathrm{diag}(\mathrm{sign}(\mathrm{diag}\,R)),

    transposed when ``n < m``. For float32, float64 and complex dtypes the result equals
    ``jax.random.orthogonal(key, n, batch_shape, dtype, m)`` bit for bit; float16 and
    bfloat16 (which jax's QR rejects on CPU) are computed in float32 and cast.

    Args:
        key: a PRNG key (typed or raw).
        n: number of rows.
        m: number of columns; ``None`` means ``n``.
        batch_shape: leading batch dimensions; every slice is independent.
        dtype: float or complex dtype; ``None`` for the default float dtype.

    Returns:
        An array of shape ``(*batch_shape, n, m)``.

    Raises:
        TypeError: if ``n``/``m``/``batch_shape`` are not ints or ``dtype`` is not inexact.
        ValueError: if a size is negative.

    Examples:
        >>> import jax
        >>> q = haar_qr(jax.random.key(0), 5, 3)
        >>> bool((q == jax.random.orthogonal(jax.random.key(0), 5, (), None, 3)).all())
        True

    References:
        Mezzadri (2007), "How to generate random matrices from the classical compact groups".
    """
    n, m, batch, dt = _canonical_args(n, m, batch_shape, dtype, real_only=False, name="haar_qr")
    return _haar(key, n=n, m=m, batch_shape=batch, dtype=dt, method="qr")


# ----------------------------------------------------------- Householder (Stewart)


def _householder_from_gaussian(z: jax.Array) -> jax.Array:
    """Haar ``(..., n, m)`` (``n >= m``) from the Householder vectors held in ``tril(z)``.

    Column ``k`` of ``z`` below the diagonal, ``v_k = z[k:, k]``, is the ``k``-th Gaussian
    vector. Its stable reflector maps ``v_k`` to ``-s_k |v_k| e_1`` with
    ``s_k = sign(v_k[0])`` (``+1`` for 0); multiplying column ``k`` of the product by
    ``-s_k`` makes the implied ``R`` diagonal positive, which makes the result exactly
    Haar-distributed (Stewart 1980; Mezzadri 2007).
    """
    n, m = z.shape[-2:]
    dtype = z.dtype
    rows = lax.broadcasted_iota(np.int32, (n, m), 0)
    cols = lax.broadcasted_iota(np.int32, (n, m), 1)
    diag = rows == cols
    v = jnp.where(rows >= cols, z, jnp.zeros((), dtype))
    norm = jnp.sqrt(jnp.sum(v * v, axis=-2))
    # A zero vector (probability ~0) has no reflector; use e_1 in its place.
    zero = norm == 0
    v = jnp.where(diag & jnp.expand_dims(zero, -2), jnp.ones((), dtype), v)
    norm = jnp.where(zero, jnp.ones((), dtype), norm)
    alpha = jnp.sum(jnp.where(diag, v, jnp.zeros((), dtype)), axis=-2)  # v_k[0], (..., m)
    s = jnp.where(alpha >= 0, jnp.ones((), dtype), -jnp.ones((), dtype))
    # u_k = v_k + s_k |v_k| e_1;  |u_k|^2 = 2 |v_k| (|v_k| + |v_k[0]|);  y_k = sqrt(2) u_k/|u_k|.
    u = v + jnp.where(diag, jnp.expand_dims(s * norm, -2), jnp.zeros((), dtype))
    scale = lax.rsqrt(norm) * lax.rsqrt(norm + jnp.abs(alpha))
    y = u * jnp.expand_dims(scale, -2)
    return _householder_product(y, _householder_block(n, m)) * jnp.expand_dims(-s, -2)


def _householder_block(n: int, m: int) -> int:
    """Columns per block reflector: one block up to 64 columns, then 32, then 64.

    One block costs about ``4 n m^2`` flops in large matrix products. Blocks of ``b``
    applied backwards (as LAPACK ``orgqr`` does) skip the zero part of the triangle, about
    ``2 n m^2 - 2 m^3 / 3`` plus ``O(n m b)``; measured on CPU, this wins from ``m = 128``
    on, at any aspect ratio.
    """
    del n  # the measured optimum did not depend on the number of rows
    if m <= 64:
        return max(m, 1)
    return 32 if m <= 512 else 64


def _upper_inverse(u: jax.Array) -> jax.Array:
    """Inverse of upper-triangular ``u`` (``..., b, b``) by recursive doubling.

    For ``U = [[A, B], [0, C]]``, ``U^{-1} = [[A^{-1}, -A^{-1} B C^{-1}], [0, C^{-1}]]``:
    starting from the ``1 x 1`` diagonal blocks, each level joins neighbouring blocks with
    two batched matrix products, so ``b`` columns take ``log2 b`` levels (the recursive
    construction of the compact-WY factor, Elmroth and Gustavson 2000). It replaces
    triangular solves, which XLA's CPU backend hands to LAPACK ``trsm``: with the default
    multi-threaded BLAS on a busy machine that call alone took milliseconds for a ``32 x 32``
    system, while matrix products stay in XLA's own kernels.
    """
    b = u.shape[-1]
    width = 1 << max(b - 1, 0).bit_length()  # next power of two >= b
    batch = u.shape[:-2]
    if width != b:  # extend by an identity block: the inverse is extended likewise
        pad = [(0, 0)] * len(batch) + [(0, width - b), (0, width - b)]
        u = jnp.pad(u, pad) + jnp.diag((jnp.arange(width) >= b).astype(u.dtype))
    t = (1 / jnp.linalg.diagonal(u))[..., None, None]  # (..., width, 1, 1)
    h = 1
    while h < width:
        pairs = width // (2 * h)
        blocks = u.reshape(*batch, pairs, 2 * h, pairs, 2 * h)
        blocks = jnp.moveaxis(jnp.diagonal(blocks, axis1=-4, axis2=-2), -1, -3)
        a_inv, c_inv = t[..., 0::2, :, :], t[..., 1::2, :, :]
        upper = -(a_inv @ blocks[..., :h, h:] @ c_inv)
        top = jnp.concatenate([a_inv, upper], axis=-1)
        bottom = jnp.concatenate([jnp.zeros_like(c_inv), c_inv], axis=-1)
        t = jnp.concatenate([top, bottom], axis=-2)
        h *= 2
    return t[..., 0, :b, :b]


def _householder_product(y: jax.Array, block: int) -> jax.Array:
    """First ``m`` columns of ``H_1 ... H_m`` for ``H_k = I - y_k y_k^T`` (``|y_k|^2 = 2``).

    Each block of reflectors ``j0:j1`` is applied in compact "UT" form
    ``I - Y T Y^T`` with ``T = (I + strictly_upper(Y^T Y))^{-1}`` (Joffrain et al. 2006),
    last block first; block ``j`` only changes rows and columns ``j0:`` of the result.
    Matrix products only (``T`` by :func:`_upper_inverse`): no LAPACK call, so no
    dependence on the BLAS thread pool.
    """
    n, m = y.shape[-2:]
    dtype = y.dtype
    q = jnp.broadcast_to(jnp.eye(n, m, dtype=dtype), y.shape)
    for j0 in reversed(range(0, m, block)):
        j1 = min(j0 + block, m)
        yj = y[..., j0:, j0:j1]
        t = _upper_inverse(jnp.triu(_swap(yj) @ yj, 1) + jnp.eye(j1 - j0, dtype=dtype))
        if j0 == 0 and block >= m:  # one block: Y^T E is just the top of Y^T
            w = _swap(yj[..., :m, :])
            trailing = jnp.eye(n, m, dtype=dtype)
        else:
            trailing = q[..., j0:, j0:]
            w = _swap(yj) @ trailing
        update = trailing - yj @ (t @ w)
        q = update if j0 == 0 else q.at[..., j0:, j0:].set(update)
    return q


def haar_householder(
    key: jax.Array,
    n: int,
    m: int | None = None,
    batch_shape: Sequence[int] = (),
    dtype: Any = None,
) -> jax.Array:
    r"""Haar (semi-)orthogonal matrices as a product of random Householder reflectors.

    Stewart's (1980) method: with ``v_k \sim \mathcal{N}(0, I_{n-k+1})`` independent,
    ``H_k`` the reflector taking ``v_k`` to a multiple of ``e_1`` (embedded in the
    trailing block) and ``D`` the signs that make the implied ``R`` diagonal positive,

    .. math::
        X = H_1 H_2 \cdots H_{\min(n,m)}\, D \;\text{(first } \min(n,m) \text{ columns)},

    which has the same (Haar) distribution as the sign-corrected QR of a Gaussian matrix,
    without computing the factorization. The product is formed in compact form with two
    batched matrix products and a unit-triangular solve. Different values from
    :func:`haar_qr` (same distribution).

    Args:
        key: a PRNG key (typed or raw).
        n: number of rows.
        m: number of columns; ``None`` means ``n``.
        batch_shape: leading batch dimensions; every slice is independent.
        dtype: real float dtype; ``None`` for the default float dtype.

    Returns:
        An array of shape ``(*batch_shape, n, m)``.

    Raises:
        TypeError: if ``n``/``m``/``batch_shape`` are not ints or ``dtype`` is not real.
        ValueError: if a size is negative.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> q = haar_householder(jax.random.key(0), 64, 32, batch_shape=(3,))
        >>> q.shape
        (3, 64, 32)
        >>> bool(jnp.allclose(q.mT @ q, jnp.eye(32), atol=1e-5))
        True

    References:
        Stewart (1980), "The efficient generation of random orthogonal matrices with an
        application to condition estimators"; Joffrain et al. (2006), "Accumulating
        Householder transformations, revisited".
    """
    n, m, batch, dt = _canonical_args(
        n, m, batch_shape, dtype, real_only=True, name="haar_householder"
    )
    return _haar(key, n=n, m=m, batch_shape=batch, dtype=dt, method="householder")


# ------------------------------------------------------------------ CholeskyQR2


# Cholesky factors of at most this many columns are computed column by column; Gram
# matrices of fewer than _LAPACK_CHOLESKY_BELOW columns go to LAPACK (faster when small).
_CHOLESKY_BASE = 32
_LAPACK_CHOLESKY_BELOW = 128


def _cholesky(g: jax.Array) -> jax.Array:
    """Lower Cholesky factor ``L`` of symmetric positive definite ``g`` (``..., b, b``),
    by matrix products (no LAPACK): non-finite where ``g`` is not positive definite.

    ``[[A, B^T], [B, C]] = L L^T`` with ``L = [[L_A, 0], [B L_A^{-T}, chol(C - L_B L_B^T)]]``,
    halving down to blocks of ``_CHOLESKY_BASE`` columns factored column by column. XLA's
    CPU backend hands ``jnp.linalg.cholesky`` to LAPACK ``potrf``, whose BLAS threads then
    compete with XLA's own for the following products: CholeskyQR2 of a (2048, 512) matrix
    took 51 ms in the default environment with it and 27 ms with one BLAS thread; 31 ms in
    both with this. Below ``_LAPACK_CHOLESKY_BELOW`` columns ``potrf`` is faster (a
    (128, 32) matrix: 0.36 ms against 0.18 ms) and is used.
    """
    b = g.shape[-1]
    if b <= _CHOLESKY_BASE:
        return _cholesky_columns(g)
    h = b // 2
    l11 = _cholesky(g[..., :h, :h])
    l21 = g[..., h:, :h] @ _upper_inverse(_swap(l11))
    l22 = _cholesky(g[..., h:, h:] - l21 @ _swap(l21))
    top = jnp.concatenate([l11, jnp.zeros_like(_swap(l21))], axis=-1)
    return jnp.concatenate([top, jnp.concatenate([l21, l22], axis=-1)], axis=-2)


def _cholesky_columns(g: jax.Array) -> jax.Array:
    """:func:`_cholesky` of a small ``g``, one column per step (left-looking)."""
    b = g.shape[-1]
    rows = jnp.arange(b)

    def column(j: Any, lower: jax.Array) -> jax.Array:
        done = lower[..., j, :]  # row j of L: columns < j are filled, the rest are 0
        pivot = jnp.sqrt(g[..., j, j] - jnp.sum(done * done, axis=-1))
        below = (g[..., :, j] - jnp.sum(lower * done[..., None, :], axis=-1)) / pivot[..., None]
        col = jnp.where(rows > j, below, jnp.where(rows == j, pivot[..., None], 0))
        return lower.at[..., :, j].set(col)

    return lax.fori_loop(0, b, column, jnp.zeros_like(g))


def _cholesky_qr_step(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(A R^{-1}, diag R)`` with ``A^T A = R^T R`` (``R = L^T`` upper, positive diagonal)."""
    g = _swap(a) @ a
    # lower L, G = L L^T
    chol = jnp.linalg.cholesky(g) if g.shape[-1] < _LAPACK_CHOLESKY_BELOW else _cholesky(g)
    # X L^T = A: X = A (L^T)^{-1}, a product rather than a LAPACK triangular solve.
    x = a @ _upper_inverse(_swap(chol))
    return x, jnp.linalg.diagonal(chol)


def _cholesky_qr2_from_gaussian(z: jax.Array) -> jax.Array:
    """Sign-corrected Q of ``z`` (``n >= m``) by CholeskyQR2, or by QR if that breaks down.

    CholeskyQR2 is accurate when the first pass leaves ``Q_1`` well conditioned; then the
    second factor ``R_2`` is close to the identity. Breakdown shows as non-finite values or
    as ``diag(R_2)`` far from 1 (e.g. a numerically rank-deficient ``z`` whose Gram matrix
    still passes Cholesky in float32); either sends the whole batch to QR.
    """
    q1, _ = _cholesky_qr_step(z)
    q, r2_diag = _cholesky_qr_step(q1)
    ok = jnp.all(jnp.isfinite(q)) & jnp.all(jnp.abs(r2_diag - 1) < 0.25)
    return lax.cond(ok, lambda: q, lambda: _sign_corrected_qr(z))


def _cholesky_qr2_or_qr(z: jax.Array) -> jax.Array:
    """CholeskyQR2 for tall enough ``z`` (static shape test), sign-corrected QR otherwise."""
    p, q = z.shape[-2:]
    if q == 0 or p < CHOLESKY_MIN_ASPECT * q:
        return _sign_corrected_qr(z)
    return _cholesky_qr2_from_gaussian(z)


# Stacks of matrices with at least this many columns are factored one slice at a time.
_HOUSEHOLDER_MAP_MIN_COLUMNS = 384


def _householder_batch(z: jax.Array) -> jax.Array:
    """:func:`_householder_from_gaussian` over the batch: one batched program for small
    matrices, one slice at a time (``lax.map``) for large ones.

    XLA's CPU backend runs a batched matrix product as one single-threaded product per
    slice, an unbatched one on every core. On the idle 2-core machine the map took
    0.27-0.37x the time of a loop of jax calls at (16, 512, 512) and (16, 1024, 1024),
    chunks of 4 slices 0.35-0.44x and the one batched program about twice the map's time;
    below 384 columns the batched program is as fast. Each slice of the map is the same
    unbatched program, whatever the number of slices, so a split stack axis gives the same
    values (see :func:`_unpartitioned`).
    """
    n, m = z.shape[-2:]
    if z.ndim == 2 or m < _HOUSEHOLDER_MAP_MIN_COLUMNS:
        return _householder_from_gaussian(z)
    flat = z.reshape(-1, n, m)
    return lax.map(_householder_from_gaussian, flat).reshape(z.shape)


def _unpartitioned(factor: Any, *, split_batch: bool) -> Any:
    """``factor`` (a map of ``(..., p, q)`` stacks to same-shape stacks) with its matrices
    kept whole under SPMD partitioning, so that its values do not depend on the mesh.

    Under ``jax.jit(..., out_shardings=...)`` XLA propagates the output's sharding back
    into the matrix products and splits their reductions over devices, which rounds
    differently (1 ulp on 8 devices). ``custom_partitioning`` asks for operands and results
    whose matrix axes are whole. With ``split_batch`` a split batch axis of large matrices
    (at least ``_HOUSEHOLDER_MAP_MIN_COLUMNS`` columns, factored one slice at a time) stays
    split: each device factors its own slices, the same work and memory per device as a
    split ``jax.jit(model.init)`` (a stack of large layers on a pod), and each slice is the
    same unbatched program on any mesh. Smaller matrices are cheap, and their batched
    products round by the batch size (measured: 1 ulp between batches of 4 and 8): kept
    whole. Without ``split_batch`` (a factor with a batch-wide decision, such as
    CholeskyQR2's fallback to QR) every device computes the whole stack, as for LAPACK's
    QR. On one device the wrapper is inlined (no cost). It has no batching rule, so
    ``custom_vmap`` maps a vmapped call onto a call with one more batch axis. Its
    partitioner is a host callback, which ``jax.export`` cannot serialize: a multi-device
    export needs ``method="qr"``. ``custom_partitioning`` has no differentiation rule:
    gradients with respect to the Gaussian draw raise (initializers are not differentiated
    through their draws; ``scale`` still is).
    """

    def batch_spec(mesh: Any, shape: Any) -> Any:
        """The operand's batch-axis sharding if kept, else None (replicated)."""
        sharding = shape.sharding
        if not split_batch or not isinstance(sharding, NamedSharding) or not sharding.spec:
            return None
        if shape.shape[-1] < _HOUSEHOLDER_MAP_MIN_COLUMNS:
            return None  # small matrices: batched products round by the batch size
        axes = sharding.spec[0]
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        ways = math.prod(mesh.shape[a] for a in names)
        return axes if names and shape.shape[0] % ways == 0 else None

    @custom_partitioning
    def whole(z):
        return factor(z)

    def partition(mesh, arg_shapes, result_shape):
        del result_shape
        sharding = NamedSharding(mesh, PartitionSpec(batch_spec(mesh, arg_shapes[0])))
        return mesh, factor, sharding, (sharding,)

    def infer(mesh, arg_shapes, result_shape):
        del result_shape
        return NamedSharding(mesh, PartitionSpec(batch_spec(mesh, arg_shapes[0])))

    whole.def_partition(
        partition,
        infer_sharding_from_operands=infer,
        sharding_rule="b p q -> b p q",
        need_replication_factors=("p", "q") if split_batch else ("b", "p", "q"),
    )

    @jax.custom_batching.custom_vmap
    def call(z):
        return whole(z.reshape(math.prod(z.shape[:-2]), *z.shape[-2:])).reshape(z.shape)

    @call.def_vmap
    def _vmapped(axis_size, in_batched, z):
        del axis_size, in_batched  # z arrives with the mapped axis in front
        return call(z), True

    return call


_FACTORS = {
    "qr": _sign_corrected_qr,  # LAPACK: never partitioned
    "householder": _unpartitioned(_householder_batch, split_batch=True),
    # its fallback to QR is decided for the whole batch: computed whole on every device
    "cholesky_qr2": _unpartitioned(_cholesky_qr2_or_qr, split_batch=False),
}


@functools.partial(jax.jit, static_argnames=("n", "m", "batch_shape", "dtype", "method"))
def _haar(key, *, n, m, batch_shape, dtype, method):
    """Draws the tall Gaussian ``(*batch, max, min)``, factors it by ``method``, transposes
    when ``n < m`` and casts: the common body of the three public samplers."""
    z = _gaussian(key, (*batch_shape, max(n, m), min(n, m)), _compute_dtype(dtype))
    x = _FACTORS[method](z)
    x = _swap(x) if n < m else x
    return x.astype(dtype)


def haar_cholesky_qr2(
    key: jax.Array,
    n: int,
    m: int | None = None,
    batch_shape: Sequence[int] = (),
    dtype: Any = None,
) -> jax.Array:
    r"""Haar semi-orthogonal matrices by CholeskyQR2 of a tall Gaussian matrix.

    For ``Z`` Gaussian ``p x q`` (``p = max(n, m) >= 4 q``), two CholeskyQR passes

    .. math::
        Z^T Z = R_1^T R_1,\; Q_1 = Z R_1^{-1},\quad Q_1^T Q_1 = R_2^T R_2,\;
        Q = Q_1 R_2^{-1},

    give the QR factor with positive ``diag(R_2 R_1)``, which is Haar-distributed
    (Fukaya et al. 2014). Values are close to :func:`haar_qr`'s for the same key (same
    Gaussian draw, same factor) but not bit-identical. If CholeskyQR2 breaks down anywhere
    in the batch (non-finite values, or ``diag R_2`` off 1 by 0.25 or more), the batch is
    recomputed by sign-corrected QR; shapes with
    ``max(n, m) < 4 min(n, m)`` use QR directly.

    Args:
        key: a PRNG key (typed or raw).
        n: number of rows.
        m: number of columns; ``None`` means ``n``.
        batch_shape: leading batch dimensions; every slice is independent.
        dtype: real float dtype; ``None`` for the default float dtype.

    Returns:
        An array of shape ``(*batch_shape, n, m)``.

    Raises:
        TypeError: if ``n``/``m``/``batch_shape`` are not ints or ``dtype`` is not real.
        ValueError: if a size is negative.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> q = haar_cholesky_qr2(jax.random.key(0), 256, 16)
        >>> bool(jnp.allclose(q, haar_qr(jax.random.key(0), 256, 16), atol=1e-4))
        True

    References:
        Fukaya et al. (2014), "CholeskyQR2: a simple and communication-avoiding algorithm
        for computing a tall-skinny QR factorization on a large-scale parallel system".
    """
    n, m, batch, dt = _canonical_args(
        n, m, batch_shape, dtype, real_only=True, name="haar_cholesky_qr2"
    )
    return _haar(key, n=n, m=m, batch_shape=batch, dtype=dt, method="cholesky_qr2")


_SAMPLERS = {"qr": haar_qr, "householder": haar_householder, "cholesky_qr2": haar_cholesky_qr2}


def sample(
    key: jax.Array,
    n: int,
    m: int | None = None,
    batch_shape: Sequence[int] = (),
    dtype: Any = None,
    method: str = "auto",
) -> jax.Array:
    """A ``(*batch_shape, n, m)`` Haar (semi-)orthogonal draw by ``method`` (see :func:`resolve`).

    Args:
        key: a PRNG key (typed or raw).
        n: number of rows.
        m: number of columns; ``None`` means ``n``.
        batch_shape: leading batch dimensions; every slice is independent.
        dtype: float (or, for ``"qr"``/``"auto"``, complex) dtype; ``None`` for the default.
        method: one of :data:`METHODS`.

    Returns:
        An array of shape ``(*batch_shape, n, m)``.

    Examples:
        >>> import jax
        >>> q = sample(jax.random.key(0), 4, 3)
        >>> bool((q == jax.random.orthogonal(jax.random.key(0), 4, (), None, 3)).all())
        True
    """
    return _SAMPLERS[resolve(method, batch_shape, float if dtype is None else dtype)](
        key, n, m, batch_shape, dtype
    )
