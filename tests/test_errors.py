"""Bad input gets a ValueError/TypeError naming the argument, the value and what is allowed."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

KEY = jax.random.key(0)


# Factory-time checks: raised where the user builds the initializer.
@pytest.mark.parametrize(
    "build,error,match",
    [
        (
            lambda: jinit.variance_scaling(1.0, "fan_sum", "normal"),
            ValueError,
            r"`mode` must be one of 'fan_in', 'fan_out', 'fan_avg', 'fan_geo_avg'; got 'fan_sum'",
        ),
        (
            lambda: jinit.variance_scaling(1.0, "fan_in", "gaussian"),
            ValueError,
            r"`distribution` must be one of 'truncated_normal', 'normal', 'uniform'; got 'gaussian'",
        ),
        (
            lambda: jinit.variance_scaling(-1.0, "fan_in", "normal"),
            ValueError,
            r"`scale` must be non-negative; got -1.0",
        ),
        (
            lambda: jinit.variance_scaling(math.nan, "fan_in", "normal"),
            ValueError,
            r"`scale` must not be NaN",
        ),
        (
            lambda: jinit.variance_scaling("2", "fan_in", "normal"),
            TypeError,
            r"`scale` must be a real number; got '2'",
        ),
        (
            lambda: jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=1.5),
            TypeError,
            r"`in_axis` must be an int or a sequence of ints; got 1.5",
        ),
        (lambda: jinit.normal(-0.1), None, None),  # jax accepts it: the signs flip
        (lambda: jinit.uniform(math.nan), ValueError, r"`scale` must not be NaN"),
        (
            lambda: jinit.truncated_normal(1.0, lower=2.0, upper=-2.0),
            ValueError,
            r"`lower` must be less than `upper`; got lower=2.0, upper=-2.0",
        ),
        (
            lambda: jinit.truncated_normal(1.0, lower=1.0, upper=1.0),
            ValueError,
            r"`lower` must be less than `upper`",
        ),
        (
            lambda: jinit.variance_scaling(1.0, 2, "normal"),
            TypeError,
            r"`mode` must be a string, one of 'fan_in'",
        ),
        (
            lambda: jinit.orthogonal(method="svd"),
            ValueError,
            r"`method` must be one of 'auto', 'qr', 'householder', 'cholesky_qr2'; got 'svd'",
        ),
        (
            lambda: jinit.orthogonal(column_axis=1.0),
            TypeError,
            r"`column_axis` must be an int; got 1.0",
        ),
        (lambda: jinit.orthogonal(-2.0), None, None),  # as jax
        (lambda: jinit.sparse(1.0), ValueError, r"`sparsity` must be in \[0, 1\); got 1.0"),
        (lambda: jinit.sparse(-0.1), ValueError, r"`sparsity` must be in \[0, 1\); got -0.1"),
        (lambda: jinit.sparse(), ValueError, r"give exactly one of `sparsity` or `nonzero`"),
        (
            lambda: jinit.sparse(0.5, nonzero=3),
            ValueError,
            r"give exactly one of `sparsity` or `nonzero`",
        ),
        (lambda: jinit.sparse(nonzero=0), ValueError, r"`nonzero` must be an int >= 1; got 0"),
        (lambda: jinit.dirac(groups=0), ValueError, r"`groups` must be an int >= 1; got 0"),
        (lambda: jinit.constant("a"), TypeError, r"`value` must be numeric; got 'a'"),
        (
            lambda: jinit.he_normal(dtype=jnp.int32),
            TypeError,
            r"`dtype` must be a floating-point or complex dtype .*got int32",
        ),
        (lambda: jinit.normal(dtype="float"), None, None),
        (
            lambda: jinit.calculate_gain("relux"),
            ValueError,
            r"`nonlinearity` must be one of .*'relu'.*; got 'relux'",
        ),
        (
            lambda: jinit.calculate_gain("leaky_relu", "a"),
            ValueError,  # as torch.nn.init.calculate_gain
            r"`param` must be a real number; got 'a'",
        ),
        (
            lambda: jinit.torch.uniform(1.0, 0.0),
            ValueError,
            r"`minval` must be less than `maxval`; got minval=1.0, maxval=0.0",
        ),
        (lambda: jinit.torch.trunc_normal(std=0.0), ValueError, r"`std` must be positive; got 0.0"),
        (lambda: jinit.torch.trunc_normal(a=1.0, b=-1.0), ValueError, r"`a` must be less than `b`"),
        (
            lambda: jinit.torch.kaiming_uniform(mode="fan_avg"),
            ValueError,
            r"`mode` must be one of 'fan_in', 'fan_out'; got 'fan_avg'",
        ),
        (
            lambda: jinit.torch.kaiming_normal(nonlinearity="foo"),
            ValueError,
            r"`nonlinearity` must be one of",
        ),
        (
            lambda: jinit.torch.bias_default(-3),
            ValueError,
            r"`fan_in` must be an int >= 0.*; got -3",
        ),
        (
            lambda: jinit.keras.variance_scaling(0.0),
            ValueError,
            r"`scale` must be positive; got 0.0",
        ),
        (
            lambda: jinit.keras.variance_scaling(1.0, "fan_geo_avg"),
            ValueError,
            r"`mode` must be one of 'fan_in', 'fan_out', 'fan_avg'",
        ),
        (
            lambda: jinit.keras.random_uniform(0.1, -0.1),
            ValueError,
            r"`minval` must be less than `maxval`",
        ),
    ],
)
def test_factory_arguments_are_checked_at_build_time(build, error, match):
    if error is None:
        build()  # accepted
        return
    with pytest.raises(error, match=match):
        build()


# Call-time checks: raised where the user calls the initializer.
@pytest.mark.parametrize(
    "init,args,error,match",
    [
        (
            jinit.he_normal(),
            (KEY, (5,)),
            ValueError,
            r"Cannot compute fans of a 1-D weight of shape \(5,\)",
        ),
        (jinit.he_normal(), (KEY, ()), ValueError, r"Cannot compute fans of a 0-D weight"),
        (
            jinit.glorot_uniform(in_axis=3),
            (KEY, (4, 4)),
            ValueError,
            r"`in_axis`=3 is out of range for a weight of shape \(4, 4\)",
        ),
        (
            jinit.he_normal(),
            (KEY, (4, -1)),
            ValueError,
            r"`shape` must contain non-negative ints; got \(4, -1\)",
        ),
        (
            jinit.he_normal(),
            (KEY, (4, 2.5)),
            TypeError,
            r"`shape` must contain only ints; got \(4, 2.5\)",
        ),
        (
            jinit.he_normal(),
            (KEY, "ab"),
            TypeError,
            r"`shape` must be an int or a sequence of ints",
        ),
        (jinit.he_normal(), (KEY, (4, None)), TypeError, r"`shape` must contain only ints"),
        (
            jinit.he_normal(),
            (KEY, (4, 4), jnp.int32),
            TypeError,
            r"`dtype` must be a floating-point or complex dtype \(e.g. float32, bfloat16\); got int32",
        ),
        (jinit.normal(), (KEY, (4, 4), bool), TypeError, r"got bool"),
        (
            jinit.uniform(),
            (KEY, (4, 4), "not-a-dtype"),
            TypeError,
            r"`dtype` must be a floating-point or complex dtype; got 'not-a-dtype'",
        ),
        (
            jinit.he_normal(),
            (0, (4, 4)),
            TypeError,
            r"`key` must be a PRNG key from jax.random.key\(seed\) or jax.random.PRNGKey\(seed\); got 0",
        ),
        (jinit.he_normal(), (np.array([1.0, 2.0]), (4, 4)), TypeError, r"`key` must be a PRNG key"),
        (
            jinit.he_normal(),
            (jax.random.split(KEY, 3), (4, 4)),
            ValueError,
            r"`key` must be a single PRNG key; got a key array of shape \(3,\)",
        ),
        (
            jinit.he_normal(),
            (jnp.zeros((3, 2), jnp.uint32), (4, 4)),
            ValueError,
            r"got a raw uint32 key of shape \(3, 2\), expected \(2,\)",
        ),
        (
            jinit.he_normal(),
            (KEY, (4, 4), None, "x"),
            TypeError,
            r"`out_sharding` must be a jax.sharding.NamedSharding, a PartitionSpec or None; got 'x'",
        ),
        (
            jinit.orthogonal(),
            (KEY, (8,)),
            ValueError,
            r"orthogonal needs a weight of rank >= 2; got shape \(8,\)",
        ),
        (
            jinit.orthogonal(column_axis=2),
            (KEY, (4, 4)),
            ValueError,
            r"`column_axis`=2 is out of range for a weight of shape \(4, 4\)",
        ),
        (
            jinit.orthogonal(batch_axis=1),
            (KEY, (4, 4)),
            ValueError,
            r"`batch_axis`=1 must not repeat an axis or include `column_axis`=-1",
        ),
        (
            jinit.orthogonal(method="householder"),
            (KEY, (4, 4), jnp.complex64),
            TypeError,
            r"orthogonal method='householder' supports real dtypes only",
        ),
        (
            jinit.delta_orthogonal(),
            (KEY, (3, 3)),
            ValueError,
            r"delta_orthogonal needs a 3-D, 4-D or 5-D conv kernel; got shape \(3, 3\)",
        ),
        (
            jinit.delta_orthogonal(),
            (KEY, (3, 3, 8, 4)),
            ValueError,
            r"delta_orthogonal needs in_channels <= out_channels",
        ),
        (jinit.dirac(groups=3), (KEY, (3, 3, 4, 4)), ValueError, r"divisible by `groups`=3"),
        (jinit.dirac(), (KEY, (4, 4)), ValueError, r"dirac needs a 3-D, 4-D or 5-D conv kernel"),
        (jinit.identity(), (KEY, (4,)), ValueError, r"identity needs a weight of rank >= 2"),
        (
            jinit.sparse(nonzero=20),
            (KEY, (10, 4)),
            ValueError,
            r"`nonzero`=20 exceeds the 10 weights each output unit has",
        ),
        (jinit.sparse(0.5), (KEY, (10,)), ValueError, r"sparse needs a weight of rank >= 2"),
        (
            jinit.uniform(),
            (KEY, (4, 4), jnp.complex64),
            TypeError,
            r"uniform does not support complex dtypes",
        ),
        (
            jinit.constant(np.ones(3)),
            (KEY, (2, 4)),
            ValueError,
            r"constant value of shape \(3,\) cannot be broadcast to the requested shape \(2, 4\)",
        ),
        (jinit.torch.eye(), (KEY, (2, 2, 2)), ValueError, r"torch.eye needs a 2-D weight"),
        (
            jinit.keras.identity(),
            (KEY, (2, 2, 2)),
            ValueError,
            r"keras.identity needs a 2-D weight",
        ),
    ],
)
def test_call_arguments_are_checked_at_call_time(init, args, error, match):
    with pytest.raises(error, match=match):
        init(*args)


def test_errors_are_raised_at_the_users_line_not_inside_xla():
    """The error is raised by jinit before any tracing: the traceback's last frame is ours."""
    with pytest.raises(ValueError) as info:
        jinit.he_normal()(KEY, (5,))
    assert "jinit" in info.traceback[-1].path.as_posix()
    assert "jax/_src" not in info.traceback[-1].path.as_posix()


def test_get_unknown_names_list_close_matches():
    with pytest.raises(
        ValueError, match=r"Unknown initializer 'he_normall'. Did you mean 'he_normal'"
    ):
        jinit.get("he_normall")
    with pytest.raises(
        ValueError, match=r"Unknown initializer 'torch.xavier'.*'torch.xavier_normal'"
    ):
        jinit.get("torch.xavier")
    with pytest.raises(TypeError, match=r"Initializer 'constant' needs arguments"):
        jinit.get("constant")
    with pytest.raises(TypeError, match=r"Bad arguments for initializer 'normal'"):
        jinit.get({"name": "normal", "sigma": 1.0})
    with pytest.raises(ValueError, match=r"A dict spec needs a string 'name'"):
        jinit.get({"scale": 1.0})
    with pytest.raises(TypeError, match=r"`identifier` must be a name, a dict spec"):
        jinit.get(3)
    with pytest.raises(TypeError, match=r"Initializer 'zeros' takes no arguments"):
        jinit.get({"name": "zeros", "value": 1})


# --------------------------------------------------------------------------------------
# Never a bad weight, never a foreign error (issue 9, section 3)
# --------------------------------------------------------------------------------------

F16, F8 = jnp.float16, jnp.float8_e4m3fn


@pytest.mark.parametrize(
    "build,args,match",
    [
        # The value alone is bad: refused by the factory.
        (lambda: jinit.normal(math.inf), None, r"`stddev` must be finite; got inf"),
        (lambda: jinit.variance_scaling(math.inf, "fan_in", "normal"), None, r"`scale` must be"),
        (lambda: jinit.torch.xavier_uniform(gain=math.inf), None, r"`gain` must be finite"),
        (lambda: jinit.keras.identity(-math.inf), None, r"`gain` must be finite"),
        (lambda: jinit.constant(math.inf), None, r"`value` must be finite"),
        (lambda: jinit.normal(10**400), None, r"`stddev` is too large: .* float64 range"),
        (lambda: jinit.torch.xavier_uniform(gain=1e200), None, r"`gain`=1e\+200 is too large"),
        (lambda: jinit.uniform_unit_scaling(10**400), None, r"`factor` is too large"),
        (lambda: jinit.constant(10**400), None, r"`value`=1000.* is too large"),
        # It depends on the shape or dtype: refused at the call, naming the dtype's range.
        (
            lambda: jinit.variance_scaling(1e300, "fan_in", "normal"),
            (KEY, (3, 3)),
            r"`scale`=1e\+300 would overflow float32: the variance is 3\.333e\+299 "
            r"\(1e\+300 / 3\), beyond the dtype's range ±3\.403e\+38",
        ),
        (
            lambda: jinit.identity(1e6),
            (KEY, (2, 2), F16),
            r"`scale`=1000000.0 would overflow float16: .*range ±6\.55e\+04",
        ),
        (
            lambda: jinit.normal(300.0),
            (KEY, (4,), F8),
            r"`stddev`=300.0 would overflow float8_e4m3fn: .*±448",
        ),
        (lambda: jinit.orthogonal(1e5), (KEY, (4, 4), F16), r"`scale`=100000.0 would overflow"),
        (lambda: jinit.he_normal(), (KEY, (1, 4), F8), None),  # fine: small
        (lambda: jinit.torch.trunc_normal(0, 1, -math.inf, 0), (KEY, (4,), F8), None),
        (lambda: jinit.constant(1e6), (KEY, (2,), F16), r"`value`=1000000.0 would overflow"),
        (lambda: jinit.constant(2**31), (KEY, (2,), jnp.int32), r"outside the range of int32"),
        (lambda: jinit.torch.trunc_normal(0, 1e5, -3e5, 3e5), (KEY, (4,), F16), r"`std`="),
        (lambda: jinit.dirac(1e9), (KEY, (3, 2, 2), F16), r"`scale`=1000000000.0 would"),
        (lambda: jinit.sparse(0.5, stddev=2e4), (KEY, (4, 4), F16), r"`stddev`=20000.0 would"),
    ],
)
def test_no_initializer_returns_nan_or_inf(build, args, match):
    """Hyperparameters that would overflow the dtype raise a ValueError (old code: inf/NaN
    weights, or OverflowError for huge Python ints)."""
    if match is None:
        assert np.isfinite(np.asarray(build()(*args), np.float32)).all()
        return
    with pytest.raises(ValueError, match=match):
        init = build()
        if args is not None:
            init(*args)


def test_inf_bounds_are_allowed_for_truncation():
    w = jinit.truncated_normal(1.0, lower=-math.inf, upper=0.0)(KEY, (1000,))
    assert bool((w < 0).all()) and bool(jnp.isfinite(w).all())


@pytest.mark.parametrize(
    "factory",
    [jinit.he_normal, jinit.glorot_uniform, jinit.orthogonal, jinit.normal, jinit.constant,
     jinit.variance_scaling, jinit.sparse, jinit.torch.kaiming_uniform, jinit.keras.he_normal,
     jinit.torch.trunc_normal],
    ids=lambda f: f.__name__,
)  # fmt: skip
def test_a_factory_passed_uncalled_says_to_call_it(factory):
    """``kernel_init=jinit.he_normal`` makes the layer call he_normal(key, shape, dtype)."""
    name = factory.__jinit_factory__
    with pytest.raises(TypeError, match=rf"{name} is a factory.*kernel_init={name}\(\)"):
        factory(KEY, (4, 4), jnp.float32)
    with pytest.raises(TypeError, match=r"is a factory"):
        factory(jax.random.PRNGKey(0), (4, 4))  # a raw key, as old Flax code passes


def test_an_nnx_rngs_key_says_to_pass_rngs_params():
    nnx = pytest.importorskip("flax.nnx")
    with pytest.raises(TypeError, match=r"Pass rngs.params\(\)"):
        jinit.he_normal()(nnx.Rngs(0), (4, 4))


def test_bad_out_sharding_is_a_value_error_naming_it():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:1]), ("x",))
    with pytest.raises(ValueError, match=r"`out_sharding`=.*more than the rank"):
        jinit.he_normal()(KEY, (4, 4), None, NamedSharding(mesh, PartitionSpec("x", None, None)))
    with pytest.raises(ValueError, match=r"`out_sharding`=.*no mesh is set"):
        jinit.he_normal()(KEY, (4, 4), None, PartitionSpec("x"))
    with jax.sharding.set_mesh(mesh), pytest.raises(ValueError, match=r"axes \['y'\]"):
        jinit.he_normal()(KEY, (4, 4), None, PartitionSpec("y"))


def test_integer_checks_agree_on_exception_types():
    """One validator: a float where an int belongs is a TypeError, a bad int a ValueError."""
    for build in (
        lambda v: jinit.dirac(groups=v),
        lambda v: jinit.sparse(nonzero=v),
        lambda v: jinit.torch.bias_default(v),
        lambda v: jinit.orthogonal(column_axis=v),
        lambda v: jinit.gpt2_residual_normal(v),
    ):
        with pytest.raises(TypeError, match=r"must be an int"):
            build(2.0)
    for build in (
        lambda v: jinit.dirac(groups=v),
        lambda v: jinit.sparse(nonzero=v),
        lambda v: jinit.torch.bias_default(v),
        lambda v: jinit.gpt2_residual_normal(v),
    ):
        with pytest.raises(ValueError, match=r"must be an int >= "):
            build(-1)


def test_torch_raises_what_torch_raises():
    """torch.nn.init raises ValueError for a non-2-D sparse_ weight and a non-numeric slope."""
    with pytest.raises(ValueError, match=r"torch.sparse needs a 2-D weight"):
        jinit.torch.sparse(0.5)(KEY, (3, 4, 5))
    with pytest.raises(ValueError, match=r"`a` must be a real number"):
        jinit.torch.kaiming_uniform(a="x")
    with pytest.raises(ValueError, match=r"`param` must be a real number"):
        jinit.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match=r"Cannot compute fans of a 1-D weight"):
        jinit.torch.xavier_uniform()(KEY, (5,))
