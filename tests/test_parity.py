"""jinit returns jax.nn.initializers' values for the same key, shape and dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from tests.catalog import JAX_PARITY, J, tiered

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


@pytest.mark.parametrize("entry", tiered(JAX_PARITY))
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


@pytest.mark.parametrize("entry", tiered(JAX_PARITY))
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


# --------------------------------------------------------------------------------------
# A strict drop-in: every call jax accepts, jinit accepts and answers the same
# --------------------------------------------------------------------------------------

_SWEEP_FACTORIES = {
    "zeros": (lambda m: m.zeros),
    "ones": (lambda m: m.ones),
    "constant": (lambda m: m.constant(-3)),
    "constant_2**31": (lambda m: m.constant(2**31)),
    "uniform": (lambda m: m.uniform(0.5)),
    "uniform_negative": (lambda m: m.uniform(-0.5)),
    "normal": (lambda m: m.normal(-2.0)),
    "normal_array": (lambda m: m.normal(jnp.array([1.0, 2.0, 3.0]))),
    "truncated_normal": (lambda m: m.truncated_normal(1.0)),
    "truncated_normal_array_bounds": (
        lambda m: m.truncated_normal(1.0, lower=jnp.array([-1.0, -2.0, 0.0]), upper=2.5)
    ),
    "he_normal": (lambda m: m.he_normal()),
    "glorot_uniform_int_axes": (lambda m: m.glorot_uniform(in_axis=[0], out_axis=[1])),
    "orthogonal_negative": (lambda m: m.orthogonal(-1.5)),
    "delta_orthogonal": (lambda m: m.delta_orthogonal()),
}
_SWEEP_SHAPES = [3, jnp.array([2, 3]), (1,) * 33 + (3,)]
_SWEEP_SHAPES_SLOW = [
    (True, 3),
    np.int64(3),
    (),
    [2, 3],
    np.array([2, 3]),
    (2, 3, 3),
    (3, 3, 2, 3),
    (0, 3),
]
_SWEEP_DTYPES = [None, jnp.int32]
_SWEEP_DTYPES_SLOW = [jnp.complex64, "float32", jnp.uint8, jnp.bool_]
_CONSTANTS = ("zeros", "ones", "constant", "constant_2**31")


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as e:
        return "error", e


def _sweep(name, shapes, dtypes):
    """Where jax returns an array, jinit returns the same array; where jax fails, jinit
    fails with a ValueError/TypeError. Deliberate refusals: random initializers refuse
    integer dtypes, an integer constant that wraps around, and a hyperparameter array that
    would change the requested shape (jax returns the wrong shape)."""
    make = _SWEEP_FACTORIES[name]
    key = jax.random.key(3)
    for shape in shapes:
        for dtype in dtypes:
            if name == "he_normal" and dtype is jnp.complex64:
                continue  # jinit fixes jax's complex truncated-normal variance on purpose
            want_kind, want = _outcome(lambda s, d: make(J)(key, s, d), shape, dtype)
            got_kind, got = _outcome(lambda s, d: make(jinit)(key, s, d), shape, dtype)
            where = f"{name}{(shape, dtype)}"
            if got_kind == "error":
                assert isinstance(got, (TypeError, ValueError)), f"{where}: {got!r}"
            if want_kind == "error":
                continue
            integer = jnp.issubdtype(want.dtype, jnp.integer) or want.dtype == jnp.bool_
            if got_kind == "error" and (
                (integer and name not in _CONSTANTS and "not drawn as integers" in str(got))
                or (integer and "outside the range of" in str(got))
                or (
                    want.shape != jinit._validate.canonical_shape(shape) and "broadcast" in str(got)
                )
            ):
                continue
            assert got_kind == "ok", f"{where}: jax accepts, jinit raised {got!r}"
            assert got.shape == want.shape and got.dtype == want.dtype, where
            kind = np.complex128 if got.dtype.kind == "c" else np.float64
            np.testing.assert_allclose(
                np.asarray(got, kind), np.asarray(want, kind), rtol=2e-6, err_msg=where
            )


# Fast tier: the cases of the old refusals (constants, array hyperparameters) and one per
# sampler family; every factory in the slow tier.
_SWEEP_FAST = {
    "zeros",
    "ones",
    "constant",
    "constant_2**31",
    "delta_orthogonal",
    "normal_array",
    "truncated_normal_array_bounds",
    "he_normal",
    "orthogonal_negative",
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=() if n in _SWEEP_FAST else pytest.mark.slow)
        for n in sorted(_SWEEP_FACTORIES)
    ],
)
def test_every_call_jax_accepts_jinit_accepts_with_the_same_values(name):
    """Int shapes, jax int arrays, rank 34; int dtypes (more in the slow sweep). Old code
    refused int shapes, int dtypes for zeros/ones/constant, array bounds, ranks above 32
    and constant(2**31)."""
    _sweep(name, _SWEEP_SHAPES, _SWEEP_DTYPES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_SWEEP_FACTORIES))
def test_every_call_jax_accepts_wider_sweep(name):
    _sweep(name, _SWEEP_SHAPES + _SWEEP_SHAPES_SLOW, _SWEEP_DTYPES + _SWEEP_DTYPES_SLOW)


def test_gemma_style_int_shape_and_linen_int_param():
    """Flax's Gemma calls ``scale_init(key, dim, dtype)`` with an int; a linen param may be an
    int counter initialized by zeros."""
    import flax.linen as nn

    assert jinit.zeros(jax.random.key(0), 4, jnp.float32).shape == (4,)

    class Counter(nn.Module):
        @nn.compact
        def __call__(self):
            return self.param("count", jinit.zeros, (), jnp.int32)

    params = Counter().init(jax.random.key(0))
    assert params["params"]["count"].dtype == jnp.int32


def test_random_initializers_refuse_integer_dtypes_clearly():
    with pytest.raises(TypeError, match=r"Random weights are not drawn as integers"):
        jinit.normal()(jax.random.key(0), (3,), jnp.int32)
