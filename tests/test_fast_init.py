"""jinit.fast_init: same values as jax.jit(fn), grouped draws, nnx, metadata, sharding."""

import math
import pathlib
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from jinit.tools import _fast_init_rewrite as rw
from tests.conftest import count_compiles
from tests.multidevice import run_json

KEY = jax.random.key(0)


def _np(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def assert_tree_equal(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        x, y = _np(x), _np(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------- models


class Block(nn.Module):
    """A pre-LN transformer block shaped like flax's lm1b example (tiny). Attention keeps
    Flax's default initializers; the MLP uses ``mlp_init`` (jinit's in the tests)."""

    d: int
    mlp_init: nn.initializers.Initializer

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(x)
        h = nn.MultiHeadDotProductAttention(num_heads=2)(h, h)
        x = x + h
        h = nn.LayerNorm()(x)
        h = nn.Dense(2 * self.d, kernel_init=self.mlp_init)(h)
        return x + nn.Dense(self.d, kernel_init=self.mlp_init)(nn.gelu(h))


class Transformer(nn.Module):
    depth: int = 2
    d: int = 16
    mlp_init: nn.initializers.Initializer = jinit.he_normal()

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(50, self.d)(tokens)
        for _ in range(self.depth):
            x = Block(self.d, self.mlp_init)(x)
        return nn.Dense(50, bias_init=nn.initializers.normal(1e-6))(nn.LayerNorm()(x))


class ResNetish(nn.Module):
    """Conv + BatchNorm + residual, as flax's imagenet ResNet (tiny)."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Conv(8, (3, 3), use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        for _ in range(1):
            y = nn.Conv(8, (3, 3), use_bias=False)(nn.relu(x))
            y = nn.BatchNorm(use_running_average=not train, scale_init=nn.initializers.zeros)(y)
            x = x + y
        return nn.Dense(10)(x.mean(axis=(1, 2)))


class EmbedLSTM(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(30, 8)(tokens)
        x = nn.RNN(nn.LSTMCell(8))(x)
        return nn.Dense(30)(x)


TOKENS = jnp.ones((1, 4), jnp.int32)


@pytest.mark.parametrize(
    "model,args",
    [
        (Transformer(), (TOKENS,)),
        (ResNetish(), (jnp.ones((1, 4, 4, 3)),)),
        (EmbedLSTM(), (TOKENS,)),
    ],
    ids=["transformer-flax-and-jinit", "resnet-batchnorm", "embed-lstm"],
)
def test_linen_values_equal_jit(model, args):
    ref = jax.jit(model.init)(KEY, *args)
    out = jinit.fast_init(model.init)(KEY, *args)
    assert_tree_equal(out, ref)


def test_static_python_arguments_and_jax_initializers():
    def fn(key, n_layers, scale):
        keys = jax.random.split(key, n_layers)
        init = jax.nn.initializers.variance_scaling(scale, "fan_avg", "uniform")
        out = {}
        for i, k in enumerate(keys):
            u, n = init(k, (8, 8)), jax.random.normal(jax.random.fold_in(k, 1), (8, 8))
            out[f"u{i}"], out[f"n{i}"], out[f"sum{i}"] = u, n, u + n
        return out

    ref = jax.jit(fn, static_argnums=(1, 2))(KEY, 5, 2.0)
    out = jinit.fast_init(fn)(KEY, 5, 2.0)
    assert_tree_equal(
        {k: v for k, v in out.items() if "sum" not in k},
        {k: v for k, v in ref.items() if "sum" not in k},
    )
    # u * c + n: plain jit may contract it into an FMA; grouped, the draws come from two
    # kernels. Equal within a few ulp of the operands (|u|, |n| < 4: ulp <= 4.8e-7).
    for k in out:
        np.testing.assert_allclose(out[k], ref[k], rtol=0, atol=1e-6)


def test_no_arguments_raw_keys_and_jinit_orthogonal():
    def fn():  # four identical random_seed calls (computed once), four fold_ins
        return [jax.random.normal(jax.random.fold_in(jax.random.key(0), i), (8,)) for i in range(4)]

    assert_tree_equal(jinit.fast_init(fn)(), jax.jit(fn)())

    def ortho(key):  # a raw uint32 key; jinit's orthogonal (QR after the draw)
        return [jinit.orthogonal()(k, (8, 8)) for k in jax.random.split(key, 3)]

    raw = jax.random.PRNGKey(0)
    assert_tree_equal(jinit.fast_init(ortho)(raw), jax.jit(ortho)(raw))


def test_compiles_once_per_input_shape():
    model = _mlp(2)
    fast = jinit.fast_init(model.init)
    fast(KEY, jnp.ones((1, 16)))
    with count_compiles() as n:
        fast(jax.random.key(1), jnp.ones((1, 16)))
    assert n[0] == 0


# ----------------------------------------------------------------------------- nnx


class NnxNet(nnx.Module):
    def __init__(self, din, dout, *, rngs):
        self.embed = nnx.Embed(20, din, rngs=rngs)
        self.layers = nnx.List([nnx.Linear(din, din, rngs=rngs) for _ in range(2)])
        self.bn = nnx.BatchNorm(din, rngs=rngs)
        self.norm = nnx.LayerNorm(din, rngs=rngs)
        self.out = nnx.Linear(din, dout, rngs=rngs)


def test_nnx_class_same_state_and_rngs():
    rngs_a, rngs_b = nnx.Rngs(0), nnx.Rngs(0)
    ref = NnxNet(8, 4, rngs=rngs_a)
    model = jinit.fast_init(NnxNet)(8, 4, rngs=rngs_b)
    assert isinstance(model, NnxNet)
    jitted = jax.jit(lambda: nnx.state(NnxNet(8, 4, rngs=nnx.Rngs(0))))()
    assert_tree_equal(nnx.state(model), jitted)
    # Eagerly, jax rounds nnx.Embed's normal * stddev twice (jit folds it): 1 ulp apart.
    for a, b in zip(
        jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(ref)), strict=True
    ):
        np.testing.assert_array_max_ulp(_np(a), _np(b), maxulp=1)
    # The Rngs passed in advanced as with the plain constructor.
    assert int(rngs_b.default.count[...]) == int(rngs_a.default.count[...])
    assert_tree_equal(rngs_b.params(), rngs_a.params())


def test_nnx_function_returning_module():
    def make(seed):
        rngs = nnx.Rngs(params=seed)
        return nnx.Sequential(*[nnx.Linear(4, 4, rngs=rngs) for _ in range(3)])

    ref = jax.jit(lambda: nnx.state(make(3), nnx.Param))()
    model = jinit.fast_init(lambda: make(3))()
    assert_tree_equal(nnx.state(model, nnx.Param), ref)


def test_nnx_with_partitioning_metadata_kept():
    class M(nnx.Module):
        def __init__(self, rngs):
            init = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, "model"))
            self.a = nnx.Linear(8, 8, kernel_init=init, rngs=rngs)
            self.b = nnx.Linear(8, 8, kernel_init=init, rngs=rngs)

    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        model = jinit.fast_init(M)(nnx.Rngs(0))
        ref = jax.jit(lambda: nnx.state(M(nnx.Rngs(0))))()
    assert model.a.kernel.get_metadata()["out_sharding"] == (None, "model")
    assert model.a.kernel[...].sharding.spec == jax.sharding.PartitionSpec(None, "model")
    assert_tree_equal(nnx.state(model), ref)


# ----------------------------------------------------------------------------- composition


def test_eval_shape_and_linen_partitioning_metadata():
    init = nn.with_partitioning(nn.initializers.lecun_normal(), (None, "model"))
    model = nn.Sequential([nn.Dense(8, kernel_init=init), nn.Dense(8, kernel_init=init)])
    x = jnp.ones((1, 8))
    shapes = jax.eval_shape(jinit.fast_init(model.init), KEY, x)
    ref_shapes = jax.eval_shape(model.init, KEY, x)
    assert jax.tree.structure(shapes) == jax.tree.structure(ref_shapes)
    assert nn.get_partition_spec(shapes) == nn.get_partition_spec(ref_shapes)
    out = jax.jit(jinit.fast_init(model.init))(KEY, x)
    kernel = out["params"]["layers_0"]["kernel"]
    assert isinstance(kernel, nn.Partitioned) and kernel.names == (None, "model")
    assert_tree_equal(out, jax.jit(model.init)(KEY, x))


def test_outer_jit_with_shardings_single_device():
    model, x = _mlp(2), jnp.ones((1, 16))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    fast = jax.jit(jinit.fast_init(model.init), in_shardings=sharding, out_shardings=sharding)
    assert_tree_equal(fast(KEY, x), jax.jit(model.init)(KEY, x))


def test_bad_input():
    with pytest.raises(TypeError, match="`fn`"):
        jinit.fast_init(3)
    with pytest.raises(TypeError, match="`chunk_bytes`"):
        jinit.fast_init(lambda k: k, chunk_bytes="big")
    with pytest.raises(ValueError, match="`chunk_bytes`"):
        jinit.fast_init(lambda k: k, chunk_bytes=0)


# ----------------------------------------------------------------------------- grouping


def _plan(fn, *args):
    closed = rw.flatten(jax.make_jaxpr(fn)(*args))
    return rw.plan(closed.jaxpr)


def _group_sizes(plan):
    return sorted(len(g) for gs in plan.groups.values() for g in gs)


def test_dependent_draws_never_grouped():
    def fn(key):
        a = jax.random.normal(jax.random.fold_in(key, 0), (16,))
        # b's key depends on a: same sampler and shape, but b must wait for a.
        k_b = jax.random.fold_in(key, (a > 0).sum())
        b = jax.random.normal(k_b, (16,))
        c = jax.random.normal(jax.random.fold_in(key, 2), (16,))  # independent of a
        return a, b, c

    plan = _plan(fn, KEY)
    normals = {
        s: [len(g) for g in gs if g[0].eqns[0].primitive.name != "random_fold_in"]
        for s, gs in plan.groups.items()
    }
    normals = {s: sizes for s, sizes in normals.items() if sizes}
    assert normals == {2: [2], 4: [1]}  # a and c together; b two stages later, alone
    assert_tree_equal(jinit.fast_init(fn)(KEY), jax.jit(fn)(KEY))


def test_draws_with_different_partitioning_grouped_apart():
    init = nn.initializers.lecun_normal()
    names = [("a", "b"), ("b", "a"), ("a", "b")]
    model = nn.Sequential([nn.Dense(8, kernel_init=nn.with_partitioning(init, n)) for n in names])
    x = jnp.ones((1, 8))
    closed = jax.make_jaxpr(model.init)(KEY, x)
    keys = jinit.tools._fast_init._annotations(jax.eval_shape(model.init, KEY, x))
    plan = rw.plan(closed.jaxpr, out_keys=keys)
    kernels = [
        len(g) for gs in plan.groups.values() for g in gs if g[0].outvars[0].aval.shape == (8, 8)
    ]
    assert sorted(kernels) == [1, 2]
    assert_tree_equal(jinit.fast_init(model.init)(KEY, x), jax.jit(model.init)(KEY, x))


def test_draws_reshaped_to_different_shapes_share_a_group():
    """Flax's DenseGeneral draws a 2-D kernel and reshapes it: (16, 2, 8) and (2, 8, 16)
    are the same (16, 16) draw, one group; each member is reshaped after its slice."""

    class Attention(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.DenseGeneral((2, 8))(x)
            h = nn.DenseGeneral((2, 8))(x) + h
            return nn.DenseGeneral(16, axis=(-2, -1))(h)

    x = jnp.ones((1, 16))
    plan = _plan(Attention().init, KEY, x)
    sizes = [len(g) for gs in plan.groups.values() for g in gs]
    kernels = [
        g for gs in plan.groups.values() for g in gs if g[0].outvars[0].aval.shape == (16, 16)
    ]
    assert [len(g) for g in kernels] == [3], sizes
    assert_tree_equal(jinit.fast_init(Attention().init)(KEY, x), jax.jit(Attention().init)(KEY, x))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_small_draws_of_rbg_keys_equal_jit(impl):
    """A vmapped rbg draw differs from one-by-one draws: small groups of rbg keys are
    mapped, not vmapped (three (5, 7) normals)."""

    def fn(key):
        return [jax.random.normal(k, (5, 7)) for k in jax.random.split(key, 3)]

    key = jax.random.key(1, impl=impl)
    assert_tree_equal(jinit.fast_init(fn)(key), jax.jit(fn)(key))


def _sizes_model():
    """Two Dense kernels of one size and one of another, an Embed and the biases."""
    return nn.Sequential([nn.Embed(10, 16), nn.Dense(16), nn.Dense(16), nn.Dense(8)])


def test_unrolled_bits_replace_jax_random_bits():
    """The bits of every draw of this model (grouped or alone) are jinit's unrolled hash
    (groups of draws small enough to be vmapped keep jax's own ``random_bits``)."""
    model, x = _sizes_model(), jnp.ones((1, 3), jnp.int32)
    text = str(jax.make_jaxpr(jinit.fast_init(model.init))(KEY, x))
    assert "random_bits" not in text and "random_fold_in" not in text
    assert "random_bits" in str(jax.make_jaxpr(model.init)(KEY, x))
    assert_tree_equal(jinit.fast_init(model.init)(KEY, x), jax.jit(model.init)(KEY, x))


def test_unrolled_bits_not_used_for_jax_original_counters():
    model, x = _sizes_model(), jnp.ones((1, 3), jnp.int32)
    with jax.threefry_partitionable(False):  # the bits depend on the size: jax draws them
        text = str(jax.make_jaxpr(jinit.fast_init(model.init))(KEY, x))
        assert "random_bits" in text
        assert_tree_equal(jinit.fast_init(model.init)(KEY, x), jax.jit(model.init)(KEY, x))


def test_unrolled_bits_complex_and_uniform_draws():
    def fn(key):  # complex normal: two real draws from split keys; uniform with bounds
        keys = jax.random.split(key, 4)
        out = [jax.random.normal(k, (8, 8), jnp.complex64) for k in keys[:3]]
        return [*out, jax.random.uniform(keys[3], (4, 40), minval=-2.0, maxval=3.0)]

    assert_tree_equal(jinit.fast_init(fn)(KEY), jax.jit(fn)(KEY))


def test_member_slices_stay_dynamic_when_an_argument_is_constant_to_xla():
    """nnx's Rngs count is a constant to XLA when the Rngs is made inside the outer jit;
    the row indices must still be run-time values, so that one slice kernel serves every
    row (a static slice is a kernel per parameter)."""

    class Stack(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(16, 16, rngs=rngs) for _ in range(4)])

    fast = jinit.fast_init(Stack)
    text = jax.jit(lambda key: nnx.state(fast(rngs=nnx.Rngs(params=key)))).lower(KEY)
    rows = [
        line
        for line in text.compile().as_text().splitlines()
        if re.search(r"= f32\[16,16\]\S* fusion\(", line) and "dynamic_index_in_dim" in line
    ]
    assert len(rows) >= 4 and all("dynamic-slice" in line for line in rows), rows


def _mlp(depth, kernel_init=None):
    kernel_init = kernel_init or nn.initializers.lecun_normal()
    return nn.Sequential([nn.Dense(16, kernel_init=kernel_init) for _ in range(depth)])


def test_chunking_bounds_group_bytes():
    model = _mlp(6)
    x = jnp.ones((1, 16))
    plan = _plan(model.init, KEY, x)
    (kernels,) = [
        g
        for gs in plan.groups.values()
        for g in gs
        if g[0].eqns[0].primitive.name != "random_fold_in"
        and g[0].outvars[0].aval.shape == (16, 16)
    ]
    assert len(kernels) == 6
    limit = 2 * 16 * 16 * 4  # two kernels' worth
    assert [len(c) for c in rw._chunks(kernels, limit)] == [2, 2, 2]
    out = jinit.fast_init(model.init, chunk_bytes=limit)(KEY, x)
    assert_tree_equal(out, jax.jit(model.init)(KEY, x))


@pytest.mark.parametrize("kernel_init", [nn.initializers.lecun_normal(), jinit.he_normal()])
def test_random_code_does_not_grow_with_depth(kernel_init):
    """The grouped program holds one copy of the sampler, whatever the depth."""

    def program(depth, wrap):
        model = _mlp(depth, kernel_init)
        return str(jax.make_jaxpr(wrap(model.init))(KEY, jnp.ones((1, 16))))

    def copies(text):
        """Copies of the sampler's and the key derivation's code in the program (the
        grouped program inlines the sampler into its loop body; shared sub-jaxprs print
        once, so plain jit's copies are counted by call site)."""
        sites = len(re.findall(r"name=_?truncated_normal\b", text))
        # A grouped fold_in is jinit's unrolled hash, wrapped into keys once.
        keys = text.count("random_fold_in") + text.count("random_wrap[")
        return max(sites, text.count("erf_inv")), keys

    fast2, fast8 = copies(program(2, jinit.fast_init)), copies(program(8, jinit.fast_init))
    assert fast2 == fast8 == (1, 1)
    assert copies(program(8, jax.jit)) == (8, 16)  # one per kernel, one fold_in per parameter


def test_compiled_program_large_kernels_do_not_grow_with_depth():
    """In XLA's optimized program, the grouped init has as many large kernels (samplers,
    hashes: fused computations of more than 60 instructions) and loops at depth 4 as at
    depth 2, while plain jit's grow with the depth (XLA:CPU compiles each on its own)."""

    def large(depth, wrap):
        model = _mlp(depth, jinit.he_normal())
        text = jax.jit(wrap(model.init)).lower(KEY, jnp.ones((1, 16))).compile().as_text()
        bodies = re.findall(r"\n%(\S*fused\S*) \([^\n]*\{\n(.*?)\n\}", text, re.S)
        return sum(1 for _, body in bodies if body.count("\n") > 60), text.count(" while(")

    fast2, fast4 = large(2, jinit.fast_init), large(4, jinit.fast_init)
    plain2, plain4 = large(2, jax.jit), large(4, jax.jit)
    assert fast2 == fast4, (fast2, fast4)
    assert fast2[0] >= 1 and fast2[1] >= 1
    assert plain4[0] >= plain2[0] + 2, (plain2, plain4)


def test_group_stacks_alive_one_at_a_time():
    """The mapped loops run one after the other, so XLA reuses the stacked buffers: the
    program's temporaries hold about one group's stack, not the sum of them (XLA:CPU
    would otherwise run every loop first and copy the rows out after, all stacks alive)."""
    init = jinit.he_normal()
    shapes = [(64, 128), (128, 64), (32, 256), (256, 32)]

    def fn(key):
        keys = jax.random.split(key, 24)
        return [init(keys[i], shapes[i % 4]) for i in range(24)]

    stacks = sum(6 * math.prod(s) * 4 for s in shapes)
    got = jax.jit(jinit.fast_init(fn)).lower(KEY).compile()
    assert got.memory_analysis().temp_size_in_bytes < 0.35 * stacks
    assert_tree_equal(got(KEY), jax.jit(fn)(KEY))


# ----------------------------------------------------------------------------- sharding

WORKER = pathlib.Path(__file__).with_name("fast_init_sharded_worker.py")


@pytest.fixture(scope="module")
def sharded_report():
    return run_json(WORKER)


@pytest.mark.slow
def test_sharded_values_and_shardings_equal(sharded_report):
    assert sharded_report["devices"] == 8
    for case in sharded_report["cases"]:
        assert case["values_equal"], case
        assert case["shardings_equal"], case


@pytest.mark.slow
def test_explicit_mesh_values_and_shardings_equal(sharded_report):
    """Under ``jax.set_mesh`` of an Explicit-axes mesh: draws with ``out_sharding`` (made
    under the mesh with Auto axes) and a batch-sharded input give jax.jit's values and
    shardings."""
    assert len(sharded_report["explicit"]) == 4
    for case in sharded_report["explicit"]:
        assert case["values_equal"], case
        assert case["shardings_equal"], case


@pytest.mark.slow
def test_inner_jit_out_shardings_kept(sharded_report):
    """An inner ``jax.jit(..., out_shardings=...)`` is inlined so that its draws can be
    grouped; its outputs still carry the shardings it asked for (they came back on one
    device before)."""
    inner = sharded_report["inner_out_shardings"]
    assert inner["values_equal"], inner
    assert inner["shardings"] == ["P('data',)"], inner
    assert inner["shardings_equal"], inner


@pytest.mark.slow
def test_sharded_temporaries_bounded(sharded_report):
    """Per device: no more than plain jit's temporaries plus one copy of the output.

    A group's draws are made into one stacked buffer (sharded like its members, behind an
    unsharded stack axis) and copied out into the parameters: at most one more copy of
    the parameters' shards, and never the full (unsharded) arrays."""
    for case in sharded_report["cases"]:
        assert case["fast_temp"] <= case["plain_temp"] + case["output_shard_bytes"], case
