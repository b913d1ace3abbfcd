"""The Initializer protocol: keys, shapes, dtypes, determinism, transforms, identity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from tests.catalog import ALL, FAMILIES, FAST, RANDOM, tiered
from tests.conftest import count_compiles

pytestmark = pytest.mark.usefixtures("strict_promotion")


# Truncated normals with bounds other than +-2 or (-1, 3): XLA evaluates erf(bound) with
# different code when the bound is a compile-time constant (inside a jit) than when it is
# an argument (eager), and the draws may differ by 1 ulp. jax.random.truncated_normal
# behaves the same way; see the README's "Determinism" note.
ULP_TOLERANT = {"torch.trunc_normal"}


@pytest.mark.parametrize("entry", tiered(ALL))
def test_eager_jit_vmap_agree(entry):
    shape = entry.shapes[0]
    init = entry.make()
    keys = jax.random.split(jax.random.key(4), 3)
    eager = init(keys[1], shape)
    # One compiled program checks both transforms: jit(vmap(init)) over three keys.
    batched = jax.jit(jax.vmap(lambda k: init(k, shape)))(keys)
    if entry.id in ULP_TOLERANT:
        np.testing.assert_allclose(eager, batched[1], rtol=2e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(eager, batched[1])
    vmapped = batched
    assert eager.shape == shape and eager.dtype == jnp.float32
    if entry.random:
        assert not np.array_equal(vmapped[0], vmapped[1]), "different keys, same values"


@pytest.mark.parametrize("entry", tiered(ALL))
def test_same_key_same_values_and_typed_equals_raw(entry):
    shape = entry.shapes[-1]
    init = entry.make()
    a = init(jax.random.key(9), shape)
    b = entry.make()(jax.random.key(9), shape)
    c = init(jax.random.PRNGKey(9), shape)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("entry", ALL, ids=str)
def test_eval_shape(entry):
    shape = entry.shapes[0]
    out = jax.eval_shape(lambda k: entry.make()(k, shape, jnp.bfloat16), jax.random.key(0))
    assert out.shape == shape and out.dtype == jnp.bfloat16


@pytest.mark.parametrize("entry", ALL, ids=str)
def test_zero_size_shapes_return_empty_arrays(entry):
    for shape in [(*s[:-1], 0) for s in entry.shapes] + [(0, *s[1:]) for s in entry.shapes]:
        if entry.id.startswith("delta_orthogonal") and shape[-1] < shape[-2]:
            continue  # in <= out is required, empty or not
        out = entry.make()(jax.random.key(0), shape)
        assert out.shape == shape and out.size == 0


@pytest.mark.parametrize("entry", tiered([e for e in ALL if e.complex_ok]))
def test_complex_dtypes(entry):
    out = entry.make()(jax.random.key(0), entry.shapes[0], jnp.complex64)
    assert out.dtype == jnp.complex64 and out.shape == entry.shapes[0]
    assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize("entry", [e for e in ALL if not e.complex_ok], ids=str)
def test_real_only_initializers_refuse_complex(entry):
    with pytest.raises(TypeError, match="complex"):
        entry.make()(jax.random.key(0), entry.shapes[0], jnp.complex64)


@pytest.mark.parametrize("entry", tiered(RANDOM))
def test_dtypes_are_respected_and_finite(entry):
    for dtype in (jnp.float16, jnp.bfloat16):  # float32 everywhere else
        out = entry.make()(jax.random.key(1), entry.shapes[-1], dtype)
        assert out.dtype == dtype
        assert np.isfinite(np.asarray(out, np.float32)).all()


def test_equal_arguments_give_equal_hashable_initializers():
    assert jinit.he_normal() == jinit.he_normal()
    assert hash(jinit.he_normal()) == hash(jinit.he_normal())
    assert jinit.he_normal() != jinit.he_uniform()
    assert jinit.orthogonal(batch_axis=[0]) == jinit.orthogonal(batch_axis=(0,))
    # Arrays compare by identity: cheap, and the intern table never holds them.
    ones = np.ones(3)
    assert jinit.constant(ones) == jinit.constant(ones)
    assert jinit.constant(ones) != jinit.constant(np.ones(3))
    assert jinit.constant(ones) != jinit.constant(np.zeros(3))
    assert len({jinit.he_normal(), jinit.he_normal(), jinit.glorot_normal()}) == 2


def test_reprs_name_the_scheme():
    assert repr(jinit.he_normal()) == (
        "variance_scaling(scale=2.0, mode='fan_in', distribution='truncated_normal')"
    )
    assert repr(jinit.zeros) == "zeros"
    assert repr(jinit.orthogonal(batch_axis=0)) == "orthogonal(batch_axis=0)"


def test_jit_of_a_freshly_built_initializer_compiles_once():
    """jax.jit(jinit.he_normal()) reuses one program however often it is rebuilt: equal
    initializers hash equally, so jax's jit cache hits. jax recompiles every closure."""
    key = jax.random.key(0)
    jax.jit(jinit.he_normal(), static_argnums=1)(key, (8, 4))  # the one compile
    jax.jit(jax.nn.initializers.he_normal(), static_argnums=1)(key, (8, 4))
    with count_compiles() as ours:
        for _ in range(3):
            jax.jit(jinit.he_normal(), static_argnums=1)(key, (8, 4))
    with count_compiles() as theirs:
        for _ in range(3):
            jax.jit(jax.nn.initializers.he_normal(), static_argnums=1)(key, (8, 4))
    assert ours[0] == 0
    assert theirs[0] == 3


def test_interning_is_thread_safe():
    """Factories called from several threads once the bounded intern table is full (old
    code: KeyError / RuntimeError from concurrent eviction)."""
    import sys
    import threading

    errors = []

    def build(offset):
        try:
            for i in range(2500):
                jinit.normal(offset + i * 1e-3)
        except Exception as e:
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=build, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]


def test_negative_zero_is_not_conflated_with_zero():
    key = jax.random.key(0)
    assert jinit.constant(-0.0) != jinit.constant(0.0)
    assert bool(jnp.signbit(jinit.constant(0.0)(key, (2,))).any()) is False
    assert bool(jnp.signbit(jinit.constant(-0.0)(key, (2,))).all())


def test_array_constants_are_hashed_cheaply_and_not_kept_alive():
    """A 16 MB constant: hashing is O(1) (identity), and the intern table does not keep the
    array alive after the user drops it (old code hashed its bytes and kept it)."""
    import gc
    import weakref

    array = np.zeros(4_000_000, np.float32)
    ref = weakref.ref(array)
    init = jinit.constant(array)
    assert hash(init) == hash(jinit.constant(array)) and init == jinit.constant(array)
    assert init._fields_key()[0] == ("id", id(array))  # no byte-wise key
    del array, init
    gc.collect()
    assert ref() is None


def test_eager_calls_compile_once_per_shape():
    """An eager call is one dispatch of a module-level compiled sampler: new initializer
    objects and new hyperparameter values reuse it."""
    key = jax.random.key(0)
    keys = [jax.random.fold_in(key, i) for i in range(5)]
    jinit.he_normal()(key, (16, 8))
    jinit.lecun_uniform()(key, (16, 8))
    with count_compiles() as n:
        for k in keys:
            jinit.he_normal()(k, (16, 8))
            jinit.glorot_normal()(k, (16, 8))  # same sampler, other scale: traced
            jinit.lecun_uniform()(k, (16, 8))
            jinit.variance_scaling(3.0, "fan_out", "uniform")(k, (16, 8))
    assert n[0] == 0
    with count_compiles() as n:
        jinit.he_normal()(key, (16, 9))  # a new shape compiles, once
        jinit.he_normal()(key, (16, 9))
    assert n[0] == 1


def test_traced_hyperparameters_are_accepted():
    @jax.jit
    def f(key, stddev):
        return jinit.normal(stddev)(key, (4, 4))

    a = f(jax.random.key(0), 2.0)
    np.testing.assert_allclose(a, jinit.normal(2.0)(jax.random.key(0), (4, 4)), rtol=1e-6)


def test_constant_broadcasts_arrays():
    out = jinit.constant(np.arange(3.0))(jax.random.key(0), (2, 3))
    np.testing.assert_array_equal(out, np.broadcast_to(np.arange(3.0), (2, 3)))


def test_numpy_int_shapes_and_lists():
    a = jinit.he_normal()(jax.random.key(0), [np.int64(4), 3])
    b = jinit.he_normal()(jax.random.key(0), (4, 3))
    np.testing.assert_array_equal(a, b)


def test_compute_fans():
    assert jinit.compute_fans((3, 3, 64, 128)) == (576.0, 1152.0)
    assert jinit.compute_fans((8, 256, 512), batch_axis=0) == (256.0, 512.0)
    assert jinit.compute_fans((5, 7, 3), in_axis=(0, 1), out_axis=2) == (35.0, 3.0)
    assert jinit.compute_fans((0, 5)) == (0.0, 5.0)


@pytest.mark.parametrize(
    "shape,kw",
    [
        ((3, 3, 64, 128), {}),
        ((10, 4), {"out_axis": 0}),  # Flax's Embed: overlapping axes, fan_in = features
        ((7,), {"in_axis": 0, "out_axis": 0}),
        ((4, 5, 6, 7), {"in_axis": (0, 1), "out_axis": -1, "batch_axis": 2}),
    ],
)
def test_compute_fans_matches_jax(shape, kw):
    from jax._src.nn.initializers import _compute_fans

    assert jinit.compute_fans(shape, **kw) == _compute_fans(shape, **kw)
    init = jinit.variance_scaling(1.0, "fan_in", "normal", **kw)
    ref = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal", **kw)
    np.testing.assert_allclose(
        init(jax.random.key(0), shape), ref(jax.random.key(0), shape), rtol=2e-6
    )
    assert jinit.compute_fans((0, 5)) == (0.0, 5.0)


def test_identity_and_dirac_values():
    eye = np.asarray(jinit.identity(2.0)(jax.random.key(0), (3, 2, 4)))
    assert (eye == 2.0 * np.eye(2, 4)).all()
    w = np.asarray(jinit.dirac(groups=2)(jax.random.key(0), (3, 3, 2, 6)))
    # out = 6 in 2 groups of 3; in = 2: channels 0, 1 of each group pass through.
    expected = np.zeros((2, 6))
    expected[[0, 1, 0, 1], [0, 1, 3, 4]] = 1
    assert (w[1, 1] == expected).all() and w.sum() == 4
    # A conv with a dirac kernel is the identity on its input.
    x = jax.random.normal(jax.random.key(1), (1, 5, 5, 4))
    k = jinit.dirac()(jax.random.key(0), (3, 3, 4, 4))
    y = jax.lax.conv_general_dilated(
        x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_delta_orthogonal_is_norm_preserving():
    k = jinit.delta_orthogonal()(jax.random.key(0), (3, 3, 8, 8))
    x = jax.random.normal(jax.random.key(1), (1, 6, 6, 8))
    y = jax.lax.conv_general_dilated(
        x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(jnp.linalg.norm(y), jnp.linalg.norm(x), rtol=1e-5)


def test_public_factories_are_annotated_and_found_by_get():
    """Every public factory says it returns an Initializer, and get() knows it without a
    hand-kept table (the registry derives its names from the catalog modules)."""
    import inspect

    from jinit._registry import known_names

    names = set(known_names())
    for prefix, module in (("", jinit), ("torch.", jinit.torch), ("keras.", jinit.keras)):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, (jinit.Initializer, type)) or not callable(obj):
                continue
            ret = inspect.signature(obj).return_annotation
            assert ret is not inspect.Signature.empty, f"{prefix}{name} is not annotated"
            if ret in (jinit.Initializer, "Initializer") and module is not jinit:
                assert f"{prefix}{name}" in names, name
    for name in ("zeros", "he_normal", "identity", "sparse", "uniform_unit_scaling"):
        assert name in names


def _samplers_reached(entries, monkeypatch) -> set[str]:
    """The jitted samplers of jinit._samplers that the entries call (traced, not compiled),
    for real and, where allowed, complex weights."""
    from jinit import _samplers

    reached: set[str] = set()
    depth = [0]

    def recording(name, fn):
        def call(*args, **kwargs):
            if depth[0] == 0:  # the sampler the initializer calls, not its helpers
                reached.add(name)
            depth[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1

        return call

    for name, fn in vars(_samplers).items():
        if callable(fn) and hasattr(fn, "lower"):  # jax.jit-wrapped
            monkeypatch.setattr(_samplers, name, recording(name, fn))
    for entry in entries:
        for dtype in (jnp.float32, jnp.complex64) if entry.complex_ok else (jnp.float32,):
            shape = entry.shapes[0]
            jax.eval_shape(
                lambda k, e=entry, s=shape, d=dtype: e.make()(k, s, d), jax.random.key(0)
            )
    monkeypatch.undo()
    return reached


def test_fast_tier_cases_cover_every_family_and_sampler(monkeypatch):
    """The fast tier runs the expensive per-entry tests on catalog.FAST only: an entry of every
    family, and every sampler the whole catalog reaches (the exact-tail truncated normal is
    checked in the fast tier by tests/test_statistics.py instead: see catalog.FAST)."""
    ids = {e.id for e in ALL}
    assert FAST <= ids, FAST - ids
    for family, entries in FAMILIES.items():
        assert FAST & {e.id for e in entries}, f"no fast entry for {family}"
    everything = _samplers_reached(ALL, monkeypatch)
    fast = _samplers_reached([e for e in ALL if e.id in FAST], monkeypatch)
    assert "normal" in fast and "orthogonal" in fast  # the recording works
    assert everything - fast == {"tail_truncated_normal_scaled"}
