"""Property-based fuzzing of every public factory and call (hypothesis).

Two properties, for every public initializer factory of jinit, jinit.torch and jinit.keras:

* any arguments: the factory and the call either return a finite array of the requested
  shape and dtype, or raise ``ValueError``/``TypeError`` -- never another exception type,
  never NaN or inf;
* valid arguments to a factory jax also has: the same values as ``jax.nn.initializers``.

Small by default (``JINIT_FUZZ_EXAMPLES`` examples per test, 10 unless set, deterministic);
a release run uses e.g. ``JINIT_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` (random
seeds; 400 examples took 4 minutes on a shared 2-core CPU, 2000 take about 20).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jinit
from jinit._registry import _returns_initializer

EXAMPLES = int(os.environ.get("JINIT_FUZZ_EXAMPLES", "10"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="JINIT_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
)
J = jax.nn.initializers


def _factories() -> dict[str, object]:
    found = {}
    for prefix, module, names in (
        ("jinit.", jinit, jinit.__all__),
        ("jinit.torch.", jinit.torch, jinit.torch.__all__),
        ("jinit.keras.", jinit.keras, jinit.keras.__all__),
    ):
        for name in names:
            obj = getattr(module, name)
            if isinstance(obj, jinit.Initializer) or _returns_initializer(obj):
                found[prefix + name] = obj
    return found


FACTORIES = _factories()

# Values a user might pass anywhere: ordinary, extreme, of the wrong kind.
ANY_VALUE = st.one_of(
    st.floats(-10.0, 10.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 8),
    st.sampled_from(
        [0.0, -0.0, 1e-300, 1e300, 2**31, 10**400, -(10**400), math.inf, math.nan, True]
    ),
    st.sampled_from(["fan_in", "uniform", "relu", "x", None, (0,), [1, 0], jnp.float32]),
    st.sampled_from([np.float32(2.0), np.array([0.5, 1.0]), jnp.array(3.0)]),
)
# A few shapes (each shape compiles once), some of them wrong.
SHAPES = st.sampled_from(
    [(4, 3), (3, 3, 2, 4), (2, 3, 4), (5,), (), 6, (0, 3), (4, -1), (2.5, 3), "ab", None]
)
DTYPES = st.sampled_from(
    [None, jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32, jnp.bool_, jnp.complex64, "x"]
)
KEYS = st.sampled_from([jax.random.key(0), jax.random.PRNGKey(1), 0, "key"])


def _check_outcome(fn, *args, **kwargs):
    """Runs ``fn``; a ValueError/TypeError is a valid answer, anything else fails."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError):
        return None


def _assert_good_weight(w, shape, dtype):
    want_shape = jinit._validate.canonical_shape(shape)
    assert w.shape == want_shape
    if dtype is not None:
        assert w.dtype == jinit._validate.canonical_dtype(dtype, allow_int=True)
    host = np.asarray(w)
    if host.dtype.kind in "fcV":
        assert np.isfinite(
            host.astype(np.complex128 if host.dtype.kind == "c" else np.float64)
        ).all()


@pytest.mark.parametrize("name", sorted(FACTORIES))
@FUZZ
@given(args=st.lists(ANY_VALUE, max_size=3), key=KEYS, shape=SHAPES, dtype=DTYPES)
def test_any_arguments_give_a_finite_weight_or_a_clear_error(name, args, key, shape, dtype):
    factory = FACTORIES[name]
    if isinstance(factory, jinit.Initializer):
        init = factory
    else:
        init = _check_outcome(factory, *args)
    if init is None:
        return
    w = _check_outcome(init, key, shape, dtype)
    if w is not None:
        _assert_good_weight(w, shape, dtype)


@FUZZ
@given(
    identifier=st.one_of(
        st.sampled_from(
            ["he_normal", "HeNormal", "kaiming_normal_", "torch.eye", "OrthogonalInitializer", "x"]
        ),
        st.text(max_size=12),
        st.dictionaries(st.sampled_from(["name", "scale", "mode", "class_name"]), ANY_VALUE),
        ANY_VALUE,
    )
)
def test_get_answers_or_raises_clearly(identifier):
    _check_outcome(jinit.get, identifier)


@FUZZ
@given(
    shape=SHAPES,
    in_axis=st.one_of(st.integers(-5, 5), ANY_VALUE),
    nonlinearity=st.sampled_from(["relu", "leaky_relu", "gelu", "elu", "tanh", "x", None]),
    param=ANY_VALUE,
)
def test_helpers_answer_or_raise_clearly(shape, in_axis, nonlinearity, param):
    _check_outcome(jinit.compute_fans, shape, in_axis)
    gain = _check_outcome(jinit.calculate_gain, nonlinearity, param)
    assert gain is None or math.isfinite(gain)


# --------------------------------------------------------------------------------------
# Valid arguments: jax's values
# --------------------------------------------------------------------------------------

# Magnitudes of at least 1e-6: a variance below float32's smallest normal number is flushed
# to zero by jax's device arithmetic and kept by jinit's host arithmetic.
REAL = st.one_of(st.just(0.0), st.floats(1e-6, 4.0), st.floats(-4.0, -1e-6))
POSITIVE = st.one_of(st.just(0.0), st.floats(1e-6, 4.0))
AXES = st.sampled_from([-2, 0, 1])
PARITY = {
    "uniform": (st.tuples(REAL), lambda m, a: m.uniform(*a)),
    "normal": (st.tuples(REAL), lambda m, a: m.normal(*a)),
    "truncated_normal": (
        st.tuples(REAL, st.floats(-3.0, -0.1), st.floats(0.1, 3.0)),
        lambda m, a: m.truncated_normal(a[0], lower=a[1], upper=a[2]),
    ),
    "variance_scaling": (
        st.tuples(
            POSITIVE,
            st.sampled_from(["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]),
            st.sampled_from(["truncated_normal", "normal", "uniform"]),
        ),
        lambda m, a: m.variance_scaling(*a),
    ),
    "glorot_uniform": (st.tuples(AXES), lambda m, a: m.glorot_uniform(in_axis=a[0])),
    "he_normal": (st.tuples(AXES), lambda m, a: m.he_normal(in_axis=a[0])),
    "orthogonal": (st.tuples(REAL, st.sampled_from([-1, 0])), lambda m, a: m.orthogonal(*a)),
    "constant": (st.tuples(REAL), lambda m, a: m.constant(a[0])),
}
PARITY_SHAPES = st.sampled_from([(4, 3), (3, 3, 2, 4), (2, 3, 4), 6])


# Fast tier: one factory per jax sampler (the rest share them); all of them in the slow tier.
PARITY_FAST = {"constant", "truncated_normal", "variance_scaling", "orthogonal"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=() if n in PARITY_FAST else pytest.mark.slow) for n in sorted(PARITY)],
)
@FUZZ
@given(data=st.data(), shape=PARITY_SHAPES, seed=st.integers(0, 2**31 - 1))
def test_valid_arguments_give_jax_values(name, data, shape, seed):
    strategy, build = PARITY[name]
    args = data.draw(strategy)
    key = jax.random.key(seed)
    try:
        want = build(J, args)(key, shape, jnp.float32)
    except Exception:  # jax refuses (obscurely or not): jinit's answer is fuzzed above
        return
    if not np.isfinite(np.asarray(want)).all():
        return  # jax refuses, or returns a bad weight: not a parity case
    got = build(jinit, args)(key, shape, jnp.float32)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-6, atol=1e-30)
