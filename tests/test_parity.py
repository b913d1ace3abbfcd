"""jinit returns jax.nn.initializers' values for the same key, shape and dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from tests.catalog import JAX_PARITY, J

KEYS = {"typed": jax.random.key(7), "raw": jax.random.PRNGKey(7)}


def _assert_same(x, y, dtype):
    assert x.shape == y.shape and x.dtype == y.dtype
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-6, atol=0)
    else:  # low precision: identical bits
        np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32))


def _jax_values(entry, key, shape, dtype):
    """jax's values; for 16-bit floats, jax's float32 values rounded to the dtype (jinit
    samples in float32 and rounds once: jax's direct 16-bit sampling is biased)."""
    if np.dtype(dtype).itemsize < 4:
        return entry.jax_make()(key, shape, jnp.float32).astype(dtype)
    return entry.jax_make()(key, shape, dtype)


@pytest.mark.parametrize("entry", JAX_PARITY, ids=str)
def test_same_values_as_jax(entry):
    key = KEYS["typed"]
    for shape in entry.shapes:
        ours = entry.make()(key, shape, jnp.float32)
        _assert_same(ours, entry.jax_make()(key, shape, jnp.float32), jnp.float32)


# One initializer per sampler path: raw keys and 16-bit dtypes go through the same code for
# every initializer that shares a sampler, so these cover the catalog.
REPRESENTATIVES = [
    e
    for e in JAX_PARITY
    if e.id
    in {
        "constant",
        "uniform",
        "normal",
        "truncated_normal_asym",
        "variance_scaling_fan_avg_truncated_normal",
        "variance_scaling_fan_in_normal",
        "variance_scaling_batch",
        "orthogonal_scaled_col0",
        "delta_orthogonal",
    }
]


@pytest.mark.parametrize("entry", REPRESENTATIVES, ids=str)
def test_same_values_as_jax_raw_keys_and_16_bit(entry):
    shape = entry.shapes[-1]
    for key_kind, dtype in [("raw", jnp.float32), ("typed", jnp.bfloat16), ("raw", jnp.float16)]:
        key = KEYS[key_kind]
        ours = entry.make()(key, shape, dtype)
        _assert_same(ours, _jax_values(entry, key, shape, dtype), dtype)


def test_representatives_cover_every_sampler():
    assert len(REPRESENTATIVES) == 9


@pytest.mark.parametrize("entry", JAX_PARITY, ids=str)
def test_same_values_as_jax_under_jit(entry):
    shape = entry.shapes[0]
    ours = jax.jit(lambda k: entry.make()(k, shape))(KEYS["typed"])
    theirs = jax.jit(lambda k: entry.jax_make()(k, shape))(KEYS["typed"])
    _assert_same(ours, theirs, jnp.float32)


def test_factory_dtype_is_the_default():
    key = KEYS["typed"]
    ours = jinit.he_normal(dtype=jnp.float16)(key, (8, 4))
    theirs = J.he_normal(dtype=jnp.float32)(key, (8, 4)).astype(jnp.float16)
    assert ours.dtype == jnp.float16
    _assert_same(ours, theirs, jnp.float16)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_fixes_jax_bias(dtype):
    """jax samples 16-bit floats directly on a grid that includes the low end of the range
    but not the high end, so its he_normal has a negative mean; jinit's is unbiased."""
    shape, key = (512, 512), jax.random.key(0)
    std = np.sqrt(2 / 512)
    se = std / np.sqrt(512 * 512)
    ours = np.asarray(jinit.he_normal()(key, shape, dtype), np.float64)
    theirs = np.asarray(J.he_normal()(key, shape, dtype), np.float64)
    assert abs(ours.mean()) < 5 * se
    if dtype == jnp.bfloat16:  # 7 mantissa bits: -0.02 std, 8 standard errors here
        assert theirs.mean() < -5 * se
    else:  # float16's 10 bits shrink jax's bias 8x, to about 2 standard errors here
        assert theirs.mean() < 0


def test_float64_under_x64():
    with jax.enable_x64(True):
        key = jax.random.key(3)
        for make, jax_make in [(jinit.he_normal, J.he_normal), (jinit.orthogonal, J.orthogonal)]:
            ours, theirs = make()(key, (12, 6)), jax_make()(key, (12, 6))
            assert ours.dtype == np.float64 == theirs.dtype
            np.testing.assert_allclose(ours, theirs, rtol=1e-13)
        assert jinit.normal()(key, (3,)).dtype == np.float64  # default float follows x64


@pytest.mark.parametrize(
    "make,jax_make",
    [
        (lambda: jinit.variance_scaling(1.0, "fan_in", "uniform"), None),
        (lambda: jinit.variance_scaling(2.0, "fan_avg", "normal"), None),
        (lambda: jinit.normal(0.5), lambda: J.normal(0.5)),
    ],
)
def test_complex_same_values_as_jax(make, jax_make):
    key = KEYS["typed"]
    ours = make()(key, (16, 8), jnp.complex64)
    if jax_make is None:
        init = make()
        jax_make = lambda: J.variance_scaling(init.scale, init.mode, init.distribution)
    theirs = jax_make()(key, (16, 8), jnp.complex64)
    assert ours.dtype == jnp.complex64
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-7)


def test_complex_truncated_normal_fixes_jax_variance():
    """jax divides by sqrt(1 - 5e^-4); the modulus-truncated sampler's std is
    sqrt((1 - 5e^-4) / (1 - e^-4)). jinit's values are jax's times the ratio."""
    key = KEYS["typed"]
    ours = jinit.variance_scaling(1.0, "fan_in", "truncated_normal")(key, (64, 32), jnp.complex64)
    theirs = J.variance_scaling(1.0, "fan_in", "truncated_normal")(key, (64, 32), jnp.complex64)
    ratio = 0.95311164380491208 / np.sqrt((1 - 5 * np.exp(-4)) / (1 - np.exp(-4)))
    np.testing.assert_allclose(ours, theirs * ratio, rtol=1e-5, atol=1e-7)
    # ... and the variance is right: E|w|^2 = 1 / fan_in (5 standard errors).
    w = jinit.variance_scaling(1.0, "fan_in", "truncated_normal")(key, (512, 512), jnp.complex64)
    power = np.abs(np.asarray(w)) ** 2 * 512
    se = power.std() / np.sqrt(power.size)
    assert abs(power.mean() - 1) < 5 * se
    jax_power = np.abs(np.asarray(J.variance_scaling(1.0, "fan_in", "truncated_normal")(
        key, (512, 512), jnp.complex64))) ** 2 * 512  # fmt: skip
    assert jax_power.mean() - 1 > 10 * se  # jax's is measurably too large (~1.87%)
