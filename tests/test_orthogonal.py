"""Every orthogonal output is orthogonal: plain, scaled, conv kernels, column_axis=0,
batch axes, low precision, all methods; Haar statistics of the default method."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit._orthogonal_methods import METHODS

KEY = jax.random.key(0)


def _as_matrices(w, column_axis=-1, batch_axes=()):
    """(batch, rows, cols) view: columns on column_axis, other non-batch axes as rows."""
    w = np.asarray(w, np.float64)
    column_axis %= w.ndim
    batch_axes = tuple(a % w.ndim for a in batch_axes)
    rest = [a for a in range(w.ndim) if a != column_axis and a not in batch_axes]
    w = np.transpose(w, (*batch_axes, *rest, column_axis))
    batch = math.prod(w.shape[: len(batch_axes)])
    return w.reshape(batch, -1, w.shape[-1])


def _assert_orthogonal(w, scale=1.0, atol=1e-5, **kw):
    for m in _as_matrices(w, **kw):
        m = m / scale
        gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=atol)


_LAYOUTS = [
    ((32, 32), {}),
    ((64, 16), {}),
    ((16, 64), {}),
    ((3, 3, 8, 16), {}),
    ((16, 3, 3, 8), {"column_axis": 0}),
    ((4, 32, 16), {"batch_axis": 0}),
    ((8, 16, 2, 3), {"batch_axis": (2, 3), "column_axis": 1}),
]
# Fast tier: every layout with the default method, every method on a wide matrix and a
# stack (a compile each); the full grid in the slow tier.
_FAST_CASES = {(i, "auto") for i in range(len(_LAYOUTS))} | {
    (i, m) for i in (2, 5) for m in METHODS
}


@pytest.mark.parametrize(
    "shape,kw,method",
    [
        pytest.param(
            shape, kw, method, marks=() if (i, method) in _FAST_CASES else pytest.mark.slow
        )
        for i, (shape, kw) in enumerate(_LAYOUTS)
        for method in METHODS
    ],
)
def test_outputs_are_orthogonal(shape, kw, method):
    init = jinit.orthogonal(1.5, method=method, **kw)
    w = init(KEY, shape)
    assert w.shape == shape
    batch = kw.get("batch_axis", ())
    batch = (batch,) if isinstance(batch, int) else batch
    _assert_orthogonal(w, 1.5, column_axis=kw.get("column_axis", -1), batch_axes=batch)


def test_batch_slices_are_independent_and_default_flattens_like_jax():
    stacked = np.asarray(jinit.orthogonal(batch_axis=0)(KEY, (4, 16, 16)))
    assert not np.allclose(stacked[0], stacked[1])
    # Without batch_axis, jax's behaviour: all leading axes are rows of one matrix, so the
    # slices are not orthogonal each.
    flat = np.asarray(jinit.orthogonal()(KEY, (4, 16, 16)))
    np.testing.assert_allclose(flat, jax.nn.initializers.orthogonal()(KEY, (4, 16, 16)), rtol=2e-6)
    assert not np.allclose(flat[0].T @ flat[0], np.eye(16), atol=1e-2)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_is_computed_in_float32(dtype):
    """jax's QR refuses 16-bit floats; jinit computes in float32 and rounds once."""
    w = jinit.orthogonal()(KEY, (32, 32), dtype)
    assert w.dtype == dtype
    ref = jax.nn.initializers.orthogonal()(KEY, (32, 32), jnp.float32).astype(dtype)
    np.testing.assert_array_equal(np.asarray(w, np.float32), np.asarray(ref, np.float32))
    _assert_orthogonal(w, atol=2e-2)


def test_complex_orthogonal_is_unitary():
    w = np.asarray(jinit.orthogonal()(KEY, (8, 8), jnp.complex64))
    np.testing.assert_allclose(w.conj().T @ w, np.eye(8), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_haar_statistics_of_square_matrices(method):
    """For Haar-distributed Q in O(n): E tr Q = 0, E tr(Q^2) = 1, P(det Q > 0) = 1/2.
    4000 draws of 6x6; each mean within 5 standard errors (estimated from the sample)."""
    n, draws = 6, 4000
    q = np.asarray(jinit.orthogonal(batch_axis=0, method=method)(KEY, (draws, n, n)), np.float64)
    tr = np.trace(q, axis1=1, axis2=2)
    tr2 = np.trace(q @ q, axis1=1, axis2=2)
    det_pos = np.linalg.det(q) > 0
    for name, x, expected in [("tr Q", tr, 0.0), ("tr Q^2", tr2, 1.0), ("det>0", det_pos, 0.5)]:
        se = x.std() / math.sqrt(draws)
        assert abs(x.mean() - expected) < 5 * se, f"{method}: E {name} = {x.mean()} (se {se})"
    # Each entry of a Haar matrix has variance 1/n.
    assert abs(q.var() * n - 1) < 5 * math.sqrt(2 / q.size) * 3


def test_delta_orthogonal_centre_block_is_orthogonal():
    w = np.asarray(jinit.delta_orthogonal(2.0)(KEY, (3, 3, 8, 16)))
    _assert_orthogonal(w[1, 1], 2.0)
    assert np.abs(w).sum() == pytest.approx(np.abs(w[1, 1]).sum())


def test_auto_is_jax_for_one_matrix_and_householder_for_stacks():
    """One matrix: jax.nn.initializers.orthogonal's values. Stacks: householder's values
    (faster than batched QR; the same on every mesh, see test_orthogonal_methods), and QR's
    (jax.random.orthogonal's) for complex stacks."""
    shape = (48, 24)
    np.testing.assert_array_equal(
        jinit.orthogonal(method="auto")(KEY, shape), jax.nn.initializers.orthogonal()(KEY, shape)
    )
    stack = jinit.orthogonal(batch_axis=0, method="auto")(KEY, (3, *shape))
    np.testing.assert_array_equal(
        stack, jinit.orthogonal(batch_axis=0, method="householder")(KEY, (3, *shape))
    )
    np.testing.assert_array_equal(
        jinit.orthogonal(batch_axis=0, method="qr")(KEY, (3, *shape)),
        jax.random.orthogonal(KEY, 48, (3,), None, 24),
    )
    unitary = jinit.orthogonal(batch_axis=0)(KEY, (2, 8, 8), jnp.complex64)
    np.testing.assert_array_equal(unitary, jax.random.orthogonal(KEY, 8, (2,), jnp.complex64))
