"""jinit.torch and jinit.keras against the real libraries (skipped where not installed).

Distributions are compared with a two-sample Kolmogorov-Smirnov test (p > 1e-3) on
samples of the same weight, PyTorch's in its ``(out, in, *k)`` layout and jinit's in the
JAX layout ``(*k, in, out)``; deterministic initializers are compared exactly.
"""

import os

import jax
import numpy as np
import pytest
import scipy.stats

import jinit

KEY = jax.random.key(0)


def _to_torch_layout(w):
    """(*k, in, out) -> (out, in, *k)."""
    w = np.asarray(w)
    return np.moveaxis(w, (-1, -2), (0, 1))


def _same_distribution(a, b):
    result = scipy.stats.ks_2samp(np.ravel(a), np.ravel(b))
    assert result.pvalue > 1e-3, result


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


TORCH_CASES = [
    # (name, jinit initializer, torch in-place init, jax shape)
    (
        "xavier_uniform",
        lambda: jinit.torch.xavier_uniform(2.0),
        lambda t, w: t.nn.init.xavier_uniform_(w, 2.0),
        (3, 3, 32, 64),
    ),
    (
        "xavier_normal",
        lambda: jinit.torch.xavier_normal(0.5),
        lambda t, w: t.nn.init.xavier_normal_(w, 0.5),
        (128, 96),
    ),
    (
        "kaiming_uniform",
        lambda: jinit.torch.kaiming_uniform(0.2, "fan_out"),
        lambda t, w: t.nn.init.kaiming_uniform_(w, 0.2, "fan_out"),
        (3, 3, 32, 64),
    ),
    (
        "kaiming_normal",
        lambda: jinit.torch.kaiming_normal(nonlinearity="relu"),
        lambda t, w: t.nn.init.kaiming_normal_(w, nonlinearity="relu"),
        (256, 64),
    ),
    (
        "kaiming_selu",
        lambda: jinit.torch.kaiming_normal(nonlinearity="selu"),
        lambda t, w: t.nn.init.kaiming_normal_(w, nonlinearity="selu"),
        (256, 64),
    ),
    (
        "trunc_normal",
        lambda: jinit.torch.trunc_normal(0.1, 0.5, -0.5, 1.0),
        lambda t, w: t.nn.init.trunc_normal_(w, 0.1, 0.5, -0.5, 1.0),
        (200, 100),
    ),
    (
        "uniform",
        lambda: jinit.torch.uniform(-0.5, 1.5),
        lambda t, w: t.nn.init.uniform_(w, -0.5, 1.5),
        (200, 100),
    ),
    (
        "normal",
        lambda: jinit.torch.normal(1.0, 0.5),
        lambda t, w: t.nn.init.normal_(w, 1.0, 0.5),
        (200, 100),
    ),
    (
        "linear_default",
        jinit.torch.linear_default,
        lambda t, w: t.nn.init.kaiming_uniform_(w, a=5**0.5),
        (3, 3, 16, 32),
    ),
]


@pytest.mark.parametrize(
    "name,make,torch_init", [c[:3] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES]
)
def test_torch_statistics(torch, name, make, torch_init):
    shape = next(c[3] for c in TORCH_CASES if c[0] == name)
    torch_shape = (shape[-1], shape[-2], *shape[:-2])
    ours = make()(KEY, shape)
    theirs = torch_init(torch, torch.empty(torch_shape)).numpy()
    assert _to_torch_layout(ours).shape == theirs.shape
    _same_distribution(ours, theirs)


def test_torch_layer_defaults(torch):
    """A ported nn.Linear/nn.Conv2d starts from the same distribution, bias included."""
    linear = torch.nn.Linear(300, 200)
    _same_distribution(
        jinit.torch.linear_default()(KEY, (300, 200)), linear.weight.detach().numpy()
    )
    _same_distribution(jinit.torch.bias_default(300)(KEY, (200,)), linear.bias.detach().numpy())
    conv = torch.nn.Conv2d(16, 64, 3)
    fan_in = 16 * 9
    _same_distribution(
        jinit.torch.linear_default()(KEY, (3, 3, 16, 64)), conv.weight.detach().numpy()
    )
    _same_distribution(jinit.torch.bias_default(fan_in)(KEY, (64,)), conv.bias.detach().numpy())
    embedding = torch.nn.Embedding(500, 64)
    _same_distribution(
        jinit.torch.embedding_default()(KEY, (500, 64)), embedding.weight.detach().numpy()
    )


def test_torch_gain_table(torch):
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
        assert jinit.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    for slope in [None, 0.0, 0.2, 1.0]:
        ours = jinit.calculate_gain("leaky_relu", slope)
        assert ours == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope))


def test_torch_deterministic_inits_are_equal(torch):
    w = torch.empty(12, 4, 3, 3)
    torch.nn.init.dirac_(w, groups=3)
    ours = jinit.torch.dirac(groups=3)(KEY, (3, 3, 4, 12))
    np.testing.assert_array_equal(_to_torch_layout(ours), w.numpy())
    w = torch.empty(5, 7)
    torch.nn.init.eye_(w)
    np.testing.assert_array_equal(_to_torch_layout(jinit.torch.eye()(KEY, (7, 5))), w.numpy())


def test_torch_sparse_zero_pattern(torch):
    w = torch.empty(40, 30)  # (out, in)
    torch.nn.init.sparse_(w, 0.25)
    ours = _to_torch_layout(jinit.torch.sparse(0.25)(KEY, (30, 40)))
    assert ((ours == 0).sum(axis=0) == (w.numpy() == 0).sum(axis=0)).all()  # per torch column
    nonzero = ours[ours != 0]
    _same_distribution(nonzero, w.numpy()[w.numpy() != 0])


def test_torch_orthogonal_is_orthogonal_in_both(torch):
    w = torch.empty(64, 3, 3, 8)
    torch.nn.init.orthogonal_(w, 2.0)
    ours = _to_torch_layout(jinit.torch.orthogonal(2.0)(KEY, (3, 3, 8, 64)))
    for m in (w.numpy().reshape(64, -1), ours.reshape(64, -1)):
        np.testing.assert_allclose(m @ m.T / 4, np.eye(64), atol=1e-5)  # 64 < 72: rows


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is configured for another backend")
    return keras


KERAS_CASES = [
    ("random_normal", jinit.keras.random_normal, "RandomNormal", {}),
    ("random_uniform", jinit.keras.random_uniform, "RandomUniform", {}),
    ("truncated_normal", jinit.keras.truncated_normal, "TruncatedNormal", {}),
    ("glorot_uniform", jinit.keras.glorot_uniform, "GlorotUniform", {}),
    ("glorot_normal", jinit.keras.glorot_normal, "GlorotNormal", {}),
    ("he_normal", jinit.keras.he_normal, "HeNormal", {}),
    ("he_uniform", jinit.keras.he_uniform, "HeUniform", {}),
    ("lecun_normal", jinit.keras.lecun_normal, "LecunNormal", {}),
    ("lecun_uniform", jinit.keras.lecun_uniform, "LecunUniform", {}),
    (
        "vs_untruncated",
        lambda: jinit.keras.variance_scaling(3.0, "fan_out", "untruncated_normal"),
        "VarianceScaling",
        {"scale": 3.0, "mode": "fan_out", "distribution": "untruncated_normal"},
    ),
    (
        "vs_normal_means_truncated",
        lambda: jinit.keras.variance_scaling(2.0, "fan_avg", "normal"),
        "VarianceScaling",
        {"scale": 2.0, "mode": "fan_avg", "distribution": "normal"},
    ),
]


@pytest.mark.parametrize("name,make,cls,kwargs", KERAS_CASES, ids=[c[0] for c in KERAS_CASES])
@pytest.mark.parametrize("shape", [(3, 3, 16, 32), (128, 64), (4096,)])
def test_keras_statistics(keras, name, make, cls, kwargs, shape):
    theirs = np.asarray(getattr(keras.initializers, cls)(seed=1, **kwargs)(shape))
    ours = make()(KEY, shape)
    assert ours.shape == theirs.shape
    _same_distribution(ours, theirs)


def test_keras_identity_and_orthogonal(keras):
    np.testing.assert_array_equal(
        jinit.keras.identity(2.0)(KEY, (3, 5)), keras.initializers.Identity(2.0)((3, 5))
    )
    theirs = np.asarray(keras.initializers.Orthogonal(1.5, seed=0)((3, 3, 8, 16)))
    ours = np.asarray(jinit.keras.orthogonal(1.5)(KEY, (3, 3, 8, 16)))
    for m in (theirs.reshape(-1, 16), ours.reshape(-1, 16)):
        np.testing.assert_allclose(m.T @ m / 2.25, np.eye(16), atol=1e-5)


# --------------------------------------------------------------------------------------
# PyTorch layout, and get() as keras.initializers.get
# --------------------------------------------------------------------------------------


def _torch_fans(shape):
    """PyTorch's _calculate_fan_in_and_fan_out on an (out, in, *k) weight."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


@pytest.mark.parametrize("shape", [(64, 3, 7, 7), (32, 16), (8, 4, 3)])
@pytest.mark.parametrize(
    "make,var",
    [
        (lambda lay: jinit.torch.kaiming_normal(layout=lay), lambda fi, fo: 2 / fi),
        (lambda lay: jinit.torch.xavier_uniform(layout=lay), lambda fi, fo: 2 / (fi + fo)),
        (lambda lay: jinit.torch.linear_default(layout=lay), lambda fi, fo: 1 / (3 * fi)),
        (
            lambda lay: jinit.torch.kaiming_uniform(mode="fan_out", layout=lay),
            lambda fi, fo: 2 / fo,
        ),
    ],
)
def test_torch_layout_uses_torchs_fans(make, var, shape):
    """``layout="torch"``: an (out, in, *k) shape gets PyTorch's fans and comes back in that
    layout; without it the same shape is read as (*k, in, out) and gets other fans."""
    fan_in, fan_out = _torch_fans(shape)
    big = (shape[0] * 8, *shape[1:])  # more samples, same fan_in
    w = np.asarray(make("torch")(KEY, big), np.float64)
    assert w.shape == big
    want = var(*_torch_fans(big))
    assert abs(w.var() / want - 1) < 5 * np.sqrt(2 / w.size) * 1.5
    assert make("torch") != make("jax")
    with pytest.raises(ValueError, match=r"`layout` must be one of 'jax', 'torch'"):
        make("pytorch")
    del fan_in, fan_out


def test_torch_layout_matches_the_jax_layout_transposed():
    shape = (16, 4, 3, 3)  # (out, in, kh, kw)
    jax_shape = (3, 3, 4, 16)
    ours = jinit.torch.orthogonal(layout="torch")(KEY, shape)
    np.testing.assert_array_equal(
        np.asarray(ours), _to_torch_layout(jinit.torch.orthogonal()(KEY, jax_shape))
    )
    rows = np.asarray(ours).reshape(16, -1)  # torch: the (out, in*k) matrix has orthonormal rows
    np.testing.assert_allclose(rows @ rows.T, np.eye(16), atol=1e-5)
    w = np.asarray(jinit.torch.dirac(layout="torch")(KEY, (4, 4, 3, 3)))
    np.testing.assert_array_equal(w[:, :, 1, 1], np.eye(4))  # torch's dirac_ layout
    w = np.asarray(jinit.torch.sparse(0.5, layout="torch")(KEY, (10, 3)))  # (out, in)
    assert (w == 0).sum(axis=0).tolist() == [5, 5, 5]  # sparse_: zeros per column


def test_torch_sparse_refuses_3d_as_torch_does():
    with pytest.raises(ValueError, match=r"Only tensors with 2 dimensions are supported"):
        jinit.torch.sparse(0.5)(KEY, (3, 4, 5))


def test_get_understands_what_keras_initializers_get_understands(keras):
    """Every string keras.initializers.get accepts names the same scheme in jinit.get."""
    from keras.src.initializers import ALL_OBJECTS_DICT

    # Not weight schemes, or needing arguments in both libraries.
    skip = {"Constant", "constant", "Initializer", "initializer", "STFT", "STFTInitializer", "stft"}
    # Snake-case names are jinit's (jax's) catalog, where variance_scaling needs arguments;
    # Keras' defaults are under "VarianceScaling".
    skip.add("variance_scaling")
    assert jinit.get(None) is None and keras.initializers.get(None) is None
    for name in sorted(set(ALL_OBJECTS_DICT) - skip):
        keras.initializers.get(name)
        assert callable(jinit.get(name)), name
    assert jinit.get("OrthogonalInitializer") == jinit.keras.orthogonal()
    assert jinit.get("IdentityInitializer") == jinit.keras.identity()
    assert jinit.get("GlorotUniform") == jinit.keras.glorot_uniform()
    assert jinit.get("HeNormal") == jinit.keras.he_normal()
    assert jinit.get("one") == jinit.ones and jinit.get("Zeros") == jinit.zeros
    spec = keras.initializers.serialize(keras.initializers.VarianceScaling(2.0, "fan_out"))
    assert jinit.get(spec) == jinit.keras.variance_scaling(2.0, "fan_out")
