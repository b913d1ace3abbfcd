"""Moments and bounds of every random initializer against its closed form.

Each check uses >= 65k samples and a tolerance of 5 standard errors, the standard errors
estimated from the sample itself (the fourth moment for the variance).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jinit
from tests.catalog import WITH_MOMENTS, Entry, tiered

pytestmark = pytest.mark.usefixtures("strict_promotion")

BIG_SHAPES = {2: (512, 256), 3: (8, 128, 64), 4: (3, 3, 128, 64), 5: (3, 3, 3, 64, 32), 1: (65536,)}


def _big_shape(entry: Entry) -> tuple[int, ...]:
    return BIG_SHAPES[len(entry.shapes[-1])]


def _check_moments(sample: np.ndarray, mean: float, var: float, what: str) -> None:
    x = sample.astype(np.float64).ravel()
    n = x.size
    se_mean = math.sqrt(var / n)
    centred = x - x.mean()
    se_var = math.sqrt(max(np.mean(centred**4) - np.var(x) ** 2, 1e-30) / n)
    assert abs(x.mean() - mean) < 5 * se_mean + 1e-12, f"{what}: mean {x.mean()} vs {mean}"
    assert abs(np.var(x) - var) < 5 * se_var, f"{what}: var {np.var(x)} vs {var} (se {se_var})"


@pytest.mark.parametrize("entry", WITH_MOMENTS, ids=str)
def test_moments_match_formula(entry):
    shape = _big_shape(entry)
    w = np.asarray(entry.make()(jax.random.key(11), shape))
    mean, var = entry.moments(shape)
    _check_moments(w, mean, var, f"{entry.id}{shape}")
    if entry.bound is not None:
        assert np.abs(w).max() <= entry.bound(shape), entry.id


@pytest.mark.parametrize("entry", tiered([e for e in WITH_MOMENTS if e.complex_ok]))
def test_complex_power_matches_formula(entry):
    """Complex weights: E|w - mean|^2 equals the real variance formula."""
    shape = _big_shape(entry)
    w = np.asarray(entry.make()(jax.random.key(5), shape, jnp.complex64))
    mean, var = entry.moments(shape)
    power = np.abs(w - mean) ** 2
    se = power.std() / math.sqrt(power.size)
    assert abs(power.mean() - var) < 5 * se, f"{entry.id}: {power.mean()} vs {var}"


@pytest.mark.parametrize("jit", [False, True])
def test_truncated_normal_ks_against_scipy(jit):
    init = jinit.truncated_normal(1.0, lower=-1.5, upper=2.5)
    sample = (jax.jit(init, static_argnums=1) if jit else init)(jax.random.key(0), (20000,))
    result = scipy.stats.kstest(np.asarray(sample), scipy.stats.truncnorm(-1.5, 2.5).cdf)
    assert result.pvalue > 1e-3, result


def test_he_normal_ks_against_scipy():
    """he_normal = TN(-2, 2) scaled so the variance is exactly 2 / fan_in."""
    w = np.asarray(jinit.he_normal()(jax.random.key(1), (200, 100))).ravel()
    scale = math.sqrt(2 / 200) / 0.87962566103423978
    result = scipy.stats.kstest(w, scipy.stats.truncnorm(-2, 2, scale=scale).cdf)
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_moments(dtype):
    shape = (512, 256)
    w = np.asarray(jinit.he_normal()(jax.random.key(2), shape, dtype), np.float32)
    _check_moments(w, 0.0, 2 / 512, f"he_normal {np.dtype(dtype).name}")


def test_torch_trunc_normal_bf16_small_std_does_not_pile_on_bounds():
    """A known PyTorch pitfall: bf16 truncated normal with small std piles mass on the bounds.
    jinit samples in float32 and casts, so the bounds hold no more mass than rounding puts."""
    w = jinit.torch.trunc_normal(std=0.02, a=-0.04, b=0.04)(
        jax.random.key(0), (100000,), jnp.bfloat16
    )
    at_bounds = np.mean(np.abs(np.asarray(w, np.float32)) >= 0.0399)
    assert at_bounds < 0.01


def test_sparse_exact_zero_counts():
    w = np.asarray(jinit.sparse(0.3)(jax.random.key(0), (50, 40)))
    assert ((w == 0).sum(axis=0) == math.ceil(0.3 * 50)).all()
    w = np.asarray(jinit.sparse(nonzero=15)(jax.random.key(0), (3, 3, 8, 12)))
    assert ((w.reshape(72, 12) != 0).sum(axis=0) == 15).all()
    w = np.asarray(jinit.torch.sparse(0.5, std=1.0)(jax.random.key(0), (20, 30)))
    assert ((w == 0).sum(axis=1) == 15).all()  # per input unit, as torch's sparse_


def test_sparse_zero_positions_are_uniform():
    """Each position is zero with probability num_zeros / fan_in, across many units."""
    w = np.asarray(jinit.sparse(0.25)(jax.random.key(3), (8, 20000)))
    freq = (w == 0).mean(axis=1)
    se = math.sqrt(0.25 * 0.75 / 20000)
    assert np.all(np.abs(freq - 0.25) < 5 * se), freq


# --------------------------------------------------------------------------------------
# Truncated normals: inside their bounds in every dtype; exact far tails (torch/keras)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float8_e4m3fn, jnp.float32])
@pytest.mark.parametrize(
    "make,lo,hi",
    [
        (lambda: jinit.truncated_normal(1.0, lower=-0.3, upper=0.3), -0.3, 0.3),
        (lambda: jinit.torch.trunc_normal(0.0, 1.0, -0.3, 0.3), -0.3, 0.3),
        (lambda: jinit.keras.truncated_normal(0.0, 0.15), -0.3, 0.3),
        (lambda: jinit.torch.trunc_normal(0.1, 0.02, 0.07, 0.13), 0.07, 0.13),
    ],
)
def test_truncated_normals_stay_inside_their_bounds_after_the_cast(make, lo, hi, dtype):
    """In bfloat16, 54 of 100k draws of truncated_normal(1.0, lower=-0.3, upper=0.3) used to
    round outward to ±0.30078."""
    w = np.asarray(make()(jax.random.key(5), (100_000,), dtype), np.float64)
    assert np.isfinite(w).all()
    assert w.min() >= lo and w.max() <= hi, (w.min(), w.max())


@pytest.mark.parametrize(
    "a,b", [(10.0, 11.0), (5.0, 6.0), (-11.0, -10.0), (0.5, 40.0), (-40.0, -39.0), (3, math.inf)]
)
def test_torch_trunc_normal_far_tails_match_scipy(a, b):
    """The true truncated distribution, far tails included: jinit.torch.trunc_normal(0, 1,
    10, 11) used to return 11.0 everywhere (mean 10.098 expected); (5, 6) was biased."""
    w = np.asarray(jinit.torch.trunc_normal(0.0, 1.0, a, b)(jax.random.key(3), (65_536,)))
    dist = scipy.stats.truncnorm(a, b)
    assert (w >= a).all() and (w <= b).all()
    _check_moments(w, float(dist.mean()), float(dist.var()), f"trunc_normal({a}, {b})")


def test_jax_parity_truncated_normal_keeps_jax_values_in_the_far_tail():
    """Documented defect kept for parity: jax's erf-based sampler collapses far tails."""
    key = jax.random.key(0)
    ours = jinit.truncated_normal(1.0, lower=10.0, upper=11.0)(key, (1000,))
    theirs = jax.nn.initializers.truncated_normal(1.0, lower=10.0, upper=11.0)(key, (1000,))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
