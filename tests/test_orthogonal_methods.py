"""Orthogonality, Haar statistics, parity and fallbacks of the orthogonal samplers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jinit import _orthogonal_methods as om
from tests.multidevice import run_json

METHODS = {name: getattr(om, f"haar_{name}") for name in om.ALGORITHMS}
# Shapes (n, m, batch_shape): square, tall (CholeskyQR2 proper), wide, batched, tiny, empty.
SHAPES = [
    (8, 8, ()),
    (33, 7, ()),
    (7, 33, ()),
    (64, 16, (2, 3)),
    (12, 12, (5,)),
    (1, 1, ()),
    (2, 1, ()),
    (0, 0, ()),
    (4, 0, (2,)),
]
# max |X^T X - I| allowed, per dtype (float16/bfloat16 are computed in float32 and rounded).
TOLERANCE = {
    np.dtype(np.float32): 1e-5,
    np.dtype(np.float16): 5e-3,
    np.dtype(jnp.bfloat16): 3e-2,
}


def orthogonality_error(x) -> float:
    x = np.asarray(x, np.float64)
    n, m = x.shape[-2:]
    if x.size == 0:
        return 0.0
    gram = np.swapaxes(x, -1, -2) @ x if n >= m else x @ np.swapaxes(x, -1, -2)
    return float(np.abs(gram - np.eye(min(n, m))).max())


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("n,m,batch", SHAPES, ids=str)
def test_shape_and_orthogonality(method, n, m, batch):
    x = METHODS[method](jax.random.key(0), n, m, batch)
    assert x.shape == (*batch, n, m)
    assert x.dtype == np.float32
    assert orthogonality_error(x) < TOLERANCE[np.dtype(np.float32)]


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
def test_dtypes(method, dtype):
    x = METHODS[method](jax.random.key(1), 48, 12, (2,), dtype)
    assert x.dtype == dtype
    assert orthogonality_error(x) < TOLERANCE[dtype]


@pytest.mark.parametrize("method", list(METHODS))
def test_float64(method):
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        x = METHODS[method](jax.random.key(1), 40, 10, (), np.float64)
        assert x.dtype == np.float64
        assert orthogonality_error(x) < 1e-12
        assert METHODS[method](jax.random.key(1), 3).dtype == np.float64  # default dtype
    finally:
        jax.config.update("jax_enable_x64", old)


@pytest.mark.parametrize("n,m,batch", [(8, 8, ()), (9, 4, (3,)), (4, 9, ()), (6, 6, (2, 2))])
@pytest.mark.parametrize("raw", [False, True])
def test_qr_equals_jax_random_orthogonal(n, m, batch, raw):
    key = jax.random.PRNGKey(3) if raw else jax.random.key(3)
    expected = jax.random.orthogonal(key, n, batch, None, m)
    np.testing.assert_array_equal(om.haar_qr(key, n, m, batch), expected)
    np.testing.assert_array_equal(jax.jit(lambda k: om.haar_qr(k, n, m, batch))(key), expected)


def test_qr_complex_equals_jax():
    key = jax.random.key(4)
    expected = jax.random.orthogonal(key, 6, (2,), jnp.complex64)
    np.testing.assert_array_equal(om.haar_qr(key, 6, 6, (2,), jnp.complex64), expected)


@pytest.mark.parametrize("method", list(METHODS))
def test_deterministic_and_jit_vmap_consistent(method):
    f = METHODS[method]
    key = jax.random.key(5)
    a = f(key, 20, 5, (2,))
    np.testing.assert_array_equal(a, f(key, 20, 5, (2,)))
    np.testing.assert_allclose(jax.jit(lambda k: f(k, 20, 5, (2,)))(key), a, atol=1e-6)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: f(k, 20, 5))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], f(keys[i], 20, 5), atol=1e-6)
    assert not np.allclose(f(jax.random.key(6), 20, 5), f(key, 20, 5))


@pytest.mark.parametrize("method", list(METHODS))
def test_batch_slices_differ(method):
    x = np.asarray(METHODS[method](jax.random.key(7), 16, 4, (3, 2)))
    flat = x.reshape(6, 16, 4)
    for i in range(6):
        for j in range(i + 1, 6):
            assert not np.allclose(flat[i], flat[j])


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("n", [3, 6])
def test_haar_statistics_square(method, n):
    """Moments of Haar O(n) (Diaconis & Shahshahani 1994) and entry marginals.

    For Q Haar on O(n): E tr Q = 0 (Var 1), E tr Q^2 = 1 (Var <= 2 + o(1)), P(det Q > 0) =
    1/2, and each entry squared is Beta(1/2, (n-1)/2). With N = 4000 samples the means
    are checked to within 5 standard errors (estimated from the samples), and the entry
    marginals by Kolmogorov-Smirnov at p > 1e-4. A method without the sign correction
    fails the trace test by tens of standard errors.
    """
    samples = 4000
    q = np.asarray(METHODS[method](jax.random.key(n), n, n, (samples,)), np.float64)
    tr = np.trace(q, axis1=-2, axis2=-1)
    tr2 = np.trace(q @ q, axis1=-2, axis2=-1)
    det_pos = np.linalg.det(q) > 0

    def within(values, mean):
        se = values.std(ddof=1) / np.sqrt(samples)
        assert abs(values.mean() - mean) < 5 * se, (values.mean(), mean, se)

    within(tr, 0.0)
    within(tr2, 1.0)
    within(det_pos.astype(np.float64), 0.5)
    beta = scipy.stats.beta(0.5, (n - 1) / 2).cdf
    for i, j in [(0, 0), (n - 1, n - 1), (n - 1, 0), (1, n - 1)]:
        assert scipy.stats.kstest(q[:, i, j] ** 2, beta).pvalue > 1e-4, (i, j)


@pytest.mark.parametrize("method", list(METHODS))
def test_haar_statistics_tall(method):
    """Columns of a Haar n x m frame: every entry squared is Beta(1/2, (n-1)/2), and the
    top m x m block has trace mean 0 (5 standard errors)."""
    n, m, samples = 16, 4, 3000
    q = np.asarray(METHODS[method](jax.random.key(11), n, m, (samples,)), np.float64)
    beta = scipy.stats.beta(0.5, (n - 1) / 2).cdf
    for i, j in [(0, 0), (n - 1, m - 1), (5, 2)]:
        assert scipy.stats.kstest(q[:, i, j] ** 2, beta).pvalue > 1e-4, (i, j)
    tr = np.trace(q[:, :m, :m], axis1=-2, axis2=-1)
    assert abs(tr.mean()) < 5 * tr.std(ddof=1) / np.sqrt(samples)


def test_sign_correction_matters():
    """Sanity check of the statistic: without the sign correction E tr Q is far from 0."""
    z = jax.random.normal(jax.random.key(0), (4000, 4, 4))
    q = np.asarray(jnp.linalg.qr(z)[0], np.float64)
    tr = np.trace(q, axis1=-2, axis2=-1)
    assert abs(tr.mean()) > 10 * tr.std(ddof=1) / np.sqrt(4000)


def test_householder_matches_stewart_first_column():
    """The first column is the normalized first Gaussian column, as for QR of that matrix."""
    key = jax.random.key(9)
    np.testing.assert_allclose(
        om.haar_householder(key, 10, 10)[:, 0], om.haar_qr(key, 10, 10)[:, 0], atol=1e-6
    )


def test_cholesky_qr2_is_the_qr_factor():
    """Same Gaussian draw, same (positive-diagonal) factor as sign-corrected QR."""
    key = jax.random.key(12)
    np.testing.assert_allclose(
        om.haar_cholesky_qr2(key, 200, 20, (2,)), om.haar_qr(key, 200, 20, (2,)), atol=2e-5
    )
    np.testing.assert_allclose(
        om.haar_cholesky_qr2(key, 20, 200), om.haar_qr(key, 20, 200), atol=2e-5
    )


def test_cholesky_qr2_not_tall_uses_qr():
    key = jax.random.key(13)
    np.testing.assert_array_equal(om.haar_cholesky_qr2(key, 16, 8), om.haar_qr(key, 16, 8))


def test_cholesky_qr2_fallback_when_cholesky_breaks_down():
    # A rank-deficient "Gaussian" matrix: duplicated columns make Z^T Z singular.
    z = jax.random.normal(jax.random.key(0), (2, 64, 8))
    z = z.at[..., 3].set(z[..., 2])
    # float32 Cholesky of the singular Gram matrix "succeeds" with a tiny pivot: the
    # breakdown shows in the second factor, far from the identity.
    _, r2_diag = om._cholesky_qr_step(om._cholesky_qr_step(z)[0])
    assert np.abs(np.asarray(r2_diag) - 1).max() > 0.25
    q = om._cholesky_qr2_from_gaussian(z)
    assert np.isfinite(np.asarray(q)).all()
    np.testing.assert_array_equal(q, om._sign_corrected_qr(z))
    # Well-conditioned input keeps the Cholesky result.
    z_ok = jax.random.normal(jax.random.key(1), (2, 64, 8))
    q_ok = om._cholesky_qr2_from_gaussian(z_ok)
    np.testing.assert_array_equal(q_ok, om._cholesky_qr_step(om._cholesky_qr_step(z_ok)[0])[0])
    # And a NaN anywhere in the batch sends the whole batch to QR.
    z_nan = z_ok.at[1, 0, 0].set(jnp.nan)
    np.testing.assert_array_equal(
        om._cholesky_qr2_from_gaussian(z_nan), om._sign_corrected_qr(z_nan)
    )


def test_householder_survives_zero_vector():
    z = jax.random.normal(jax.random.key(0), (6, 6)).at[5, 5].set(0.0).at[4:, 4].set(0.0)
    q = om._householder_from_gaussian(z)
    assert orthogonality_error(q) < 1e-5


@pytest.mark.parametrize("method", list(METHODS))
def test_bad_arguments(method):
    f = METHODS[method]
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`n`"):
        f(key, -1)
    with pytest.raises(TypeError, match="`m`"):
        f(key, 3, 2.5)
    with pytest.raises(TypeError, match="`n`"):
        f(key, True)
    with pytest.raises(ValueError, match="`batch_shape`"):
        f(key, 3, 3, (-2,))
    with pytest.raises(TypeError, match="`batch_shape`"):
        f(key, 3, 3, 4)
    with pytest.raises(TypeError, match="`dtype`"):
        f(key, 3, 3, (), jnp.int32)


@pytest.mark.parametrize("method", ["householder", "cholesky_qr2"])
def test_complex_rejected_by_real_methods(method):
    with pytest.raises(TypeError, match="real float dtype"):
        METHODS[method](jax.random.key(0), 3, 3, (), jnp.complex64)


@pytest.mark.parametrize("n,m,block", [(40, 40, 16), (50, 37, 8), (37, 37, 37)])
def test_blocked_householder_product_matches_one_block(n, m, block, monkeypatch):
    z = jax.random.normal(jax.random.key(2), (2, n, m))
    assert om._householder_block(n, m) == m  # small shapes: a single block
    one = om._householder_from_gaussian(z)
    monkeypatch.setattr(om, "_householder_block", lambda n_, m_: block)
    blocked = om._householder_from_gaussian(z)  # same reflectors, product block by block
    np.testing.assert_allclose(blocked, one, atol=2e-6)


def test_householder_large_square_uses_blocks_and_is_orthogonal():
    assert om._householder_block(300, 300) == 32
    assert om._householder_block(1000, 600) == 64
    x = om.haar_householder(jax.random.key(0), 300, 300)
    assert orthogonality_error(x) < 2e-5


@pytest.mark.parametrize("b", [1, 5, 32])
def test_upper_inverse_matches_triangular_solve(b):
    """The doubling inverse equals the triangular solve it replaces (a Cholesky factor and a
    unit reflector factor, both well conditioned as in the samplers)."""
    z = jax.random.normal(jax.random.key(b), (2, 4 * b + 2, b))
    chol_t = jnp.linalg.cholesky(z.mT @ z).mT
    unit = jnp.eye(b) + jnp.triu(0.3 * jax.random.normal(jax.random.key(b + 1), (2, b, b)), 1)
    eye = jnp.broadcast_to(jnp.eye(b), (2, b, b))
    for u in (chol_t, unit):
        expected = jax.lax.linalg.triangular_solve(u, eye, left_side=True, lower=False)
        got = om._upper_inverse(u)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        assert np.all(np.tril(np.asarray(got), -1) == 0)


def test_householder_calls_no_lapack():
    """Only matrix products: no triangular solve or factorization (LAPACK on CPU)."""
    jaxpr = str(jax.make_jaxpr(lambda k: om.haar_householder(k, 300, 200, (2,)))(jax.random.key(0)))
    for primitive in ("triangular_solve", "cholesky", "householder_product", "geqrf", "qr"):
        assert f"{primitive}[" not in jaxpr, primitive
    # CholeskyQR2 keeps only the small m x m Cholesky factorization (and its QR fallback).
    jaxpr = str(jax.make_jaxpr(lambda k: om.haar_cholesky_qr2(k, 300, 20))(jax.random.key(0)))
    assert "triangular_solve[" not in jaxpr


def test_one_method_list():
    """jinit.orthogonal accepts exactly the methods of _orthogonal_methods.METHODS."""
    import jinit
    from jinit import _initializers

    assert _initializers.ORTHOGONAL_METHODS is om.METHODS
    assert om.METHODS == ("auto", *om.ALGORITHMS)
    assert set(om.REAL_ONLY) < set(om.ALGORITHMS)
    for method in om.METHODS:
        jinit.orthogonal(method=method)
    with pytest.raises(ValueError, match="'auto', 'qr', 'householder', 'cholesky_qr2'"):
        om.resolve("svd", (), np.float32)


@pytest.mark.parametrize(
    "batch,dtype,expected",
    [
        ((), np.float32, "qr"),  # jax.nn.initializers.orthogonal's values
        ((), jnp.bfloat16, "qr"),
        ((16,), np.float32, "householder"),  # the fastest for stacks, mesh-independent
        ((2, 3), np.float16, "householder"),
        ((4,), np.complex64, "qr"),  # the only unitary sampler
    ],
)
def test_auto_resolution(batch, dtype, expected):
    assert om.resolve("auto", batch, dtype) == expected
    for method in om.ALGORITHMS:
        assert om.resolve(method, batch, dtype) == method


def test_auto_sample_values():
    key = jax.random.key(4)
    np.testing.assert_array_equal(om.sample(key, 9, 5), jax.random.orthogonal(key, 9, (), None, 5))
    np.testing.assert_array_equal(om.sample(key, 9, 5, (3,)), om.haar_householder(key, 9, 5, (3,)))
    np.testing.assert_array_equal(
        om.sample(key, 9, 5, (3,), np.complex64),
        jax.random.orthogonal(key, 9, (3,), np.complex64, 5),
    )


def test_large_householder_stacks_are_factored_slice_by_slice(monkeypatch):
    """Large stacks are factored one slice at a time: every slice equals the unbatched
    program on that slice alone, so the values do not depend on how many slices a device
    holds (a split stack axis)."""
    z = jax.random.normal(jax.random.key(3), (5, 20, 12))
    monkeypatch.setattr(om, "_HOUSEHOLDER_MAP_MIN_COLUMNS", 8)
    assert "scan[" in str(jax.make_jaxpr(om._householder_batch)(z))  # lax.map
    stacked = jax.jit(om._householder_batch)(z)
    for i in range(5):
        alone = jax.jit(om._householder_batch)(z[i : i + 1])[0]
        np.testing.assert_array_equal(stacked[i], alone)
        assert jnp.allclose(stacked[i].T @ stacked[i], jnp.eye(12), atol=1e-5)


def test_unpartitioned_factor_under_vmap_and_eval_shape():
    """The factorization kept whole under partitioning still vmaps (a custom batching rule)
    and traces abstractly; vmapped draws equal the per-key draws."""
    keys = jax.random.split(jax.random.key(5), 3)
    for method in ("householder", "cholesky_qr2"):
        draw = METHODS[method]
        mapped = jax.vmap(lambda k, d=draw: d(k, 40, 8, (2,)))(keys)
        for i in range(3):
            np.testing.assert_array_equal(mapped[i], draw(keys[i], 40, 8, (2,)))
        out = jax.eval_shape(lambda k, d=draw: d(k, 40, 8, (2,)), keys[0])
        assert out.shape == (2, 40, 8)


MESH_SCRIPT = """
import json, sys
import jax, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jinit

mesh = jax.make_mesh((2, 4), ("a", "b"))
key = jax.random.key(0)
specs = [P("a"), P(("a", "b")), P(None, "a", "b"), P(None, "b", "a"), P("a", "b"),
         P(None, ("a", "b"))]
cases = [("auto", (8, 40, 24)), ("householder", (8, 24, 40)), ("cholesky_qr2", (8, 128, 16)),
         ("auto", (8, 384, 384))]
out = []
for method, shape in cases:
    f = lambda k: jinit.orthogonal(batch_axis=0, method=method)(k, shape)
    ref = np.asarray(jax.jit(f)(key))
    for spec in specs:
        compiled = jax.jit(f, out_shardings=NamedSharding(mesh, spec)).lower(key).compile()
        y = compiled(key)
        out.append([method, list(shape), str(spec), float(np.abs(np.asarray(y) - ref).max()),
                    y.sharding.spec == NamedSharding(mesh, spec).spec,
                    compiled.memory_analysis().temp_size_in_bytes])
print(json.dumps({"devices": jax.device_count(), "results": out}))
"""


def test_stack_values_do_not_depend_on_the_mesh():
    """On 8 simulated devices, a jit whose out_shardings split the batch, the rows or the
    columns (the initializer gets no out_sharding) returns the unsharded values bit for bit,
    for every method (householder's matrix products are kept whole, like LAPACK's QR)."""
    report = run_json(MESH_SCRIPT)
    assert report["devices"] == 8
    assert len(report["results"]) == 24
    temp = {}
    for method, shape, spec, max_diff, sharded_as_asked, temp_bytes in report["results"]:
        assert max_diff == 0.0, (method, shape, spec, max_diff)
        assert sharded_as_asked, (method, shape, spec)
        temp[method, tuple(shape), spec] = temp_bytes
    # a split stack of large matrices is factored where its slices live: each of the 8
    # devices holds the temporaries of its own slice, not of the whole stack
    large = ("auto", (8, 384, 384))
    whole, split = (
        temp[(*large, "P(None, 'a', 'b')")],
        temp[(*large, "P(('a', 'b'),)")],
    )
    assert split < whole / 3, (split, whole)  # 0.09 measured


@pytest.mark.parametrize("b", [5, 32, 33, 100, 256])
def test_cholesky_by_products_matches_lapack(b):
    """CholeskyQR2's Gram factor for wide matrices is computed by products (no LAPACK
    potrf, whose BLAS threads slowed the following products): it matches LAPACK's to
    float32 rounding, is lower triangular, and is non-finite for an indefinite matrix."""
    z = jax.random.normal(jax.random.key(b), (2, 4 * b, b))
    g = jnp.swapaxes(z, -1, -2) @ z
    lower = jax.jit(om._cholesky)(g)
    ref = jnp.linalg.cholesky(g)
    assert float(jnp.abs(lower - ref).max() / jnp.abs(ref).max()) < 1e-5
    np.testing.assert_array_equal(lower, jnp.tril(lower))
    indefinite = jnp.array([[1.0, 2.0], [2.0, 1.0]])
    assert not bool(jnp.isfinite(om._cholesky(indefinite)).all())
    # the blocked path too: an indefinite trailing block
    assert not bool(jnp.isfinite(om._cholesky(jnp.eye(64).at[40, 40].set(-1.0))).all())


def test_cholesky_qr2_of_a_rank_deficient_wide_matrix_falls_back_to_qr():
    """With Gram matrices of >= 128 columns factored by products, a numerically
    rank-deficient input still sends CholeskyQR2 to its QR fallback."""
    z = jax.random.normal(jax.random.key(0), (512, 128))
    z = z.at[:, 7].set(z[:, 3])  # two equal columns
    np.testing.assert_array_equal(
        jax.jit(om._cholesky_qr2_or_qr)(z), jax.jit(om._sign_corrected_qr)(z)
    )
