"""jinit.train: datasets, model, the compiled program, results schema, determinism."""

import importlib.util
import json
import math
import types

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jinit import train
from jinit.train import loop, metrics

# The same study (3 inits x 2 seeds, 2 hidden layers of 16, 150 steps on circles) is run by
# test_train_findings.py and test_train_cli.py: one compiled program serves all three files.
SMALL_MODEL = train.MLPConfig(hidden=(16, 16))
SMALL_TRAIN = train.TrainConfig(steps=150, learning_rate=0.05)
SMALL_INITS = ("zeros", "he_normal", "glorot_uniform")


@pytest.fixture(scope="module")
def small_study():
    return train.compare(SMALL_INITS, "circles", model=SMALL_MODEL, train=SMALL_TRAIN, seeds=2)


# --- datasets -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["circles", "moons", "spirals"])
def test_synthetic_datasets_are_balanced_standardized_and_deterministic(name):
    data = train.load_dataset(name, n_samples=200, seed=3)
    assert data.x_train.shape == (160, 2) and data.x_test.shape == (40, 2)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert np.bincount(data.y_train).tolist() == [80, 80]
    assert np.bincount(data.y_test).tolist() == [20, 20]
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1.0, atol=1e-5)
    again = train.load_dataset(name, n_samples=200, seed=3)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    other = train.load_dataset(name, n_samples=200, seed=4)
    assert not np.array_equal(data.x_train, other.x_train)


def test_circles_are_two_rings_of_different_radius():
    data = train.load_dataset("circles", n_samples=400, noise=0.0)
    radius = np.linalg.norm(data.x_train, axis=1)
    assert radius[data.y_train == 0].min() > radius[data.y_train == 1].max()


def test_digits_is_a_real_ten_class_dataset():
    data = train.load_dataset("digits")
    assert data.n_features == 64 and data.n_classes == 10
    assert len(data.y_train) + len(data.y_test) == 1797
    assert set(np.unique(data.y_test).tolist()) == set(range(10))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist"}, r"`dataset` must be one of 'circles'.*got 'mnist'"),
        ({"name": "circles", "n_samples": 3}, r"`n_samples` must be an int >= 10.*got 3"),
        ({"name": "circles", "test_fraction": 1.0}, r"`test_fraction` must be in \(0, 1\)"),
        ({"name": "moons", "noise": -1.0}, r"`noise` must be .* >= 0"),
    ],
)
def test_load_dataset_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.load_dataset(**kwargs)


# --- model ----------------------------------------------------------------------------


def test_mlp_uses_the_named_initializer_for_every_kernel():
    model = train.MLP(3, (64, 64), 2, kernel_init="he_normal", rngs=nnx.Rngs(0))
    kernels = model.kernels()
    assert [k.shape for k in kernels] == [(3, 64), (64, 64), (64, 2)]
    assert abs(float(jnp.std(kernels[1])) - math.sqrt(2 / 64)) < 0.03
    zero = train.MLP(3, (4,), 2, kernel_init="zeros", bias_init="ones", rngs=nnx.Rngs(0))
    assert all(not jnp.any(k) for k in zero.kernels())
    assert bool(jnp.all(zero.layers[0].bias[...] == 1.0))


@pytest.mark.parametrize("activation", sorted(train.ACTIVATIONS))
def test_mlp_activations(activation):
    model = train.MLP(2, (5, 3), 4, activation=activation, rngs=nnx.Rngs(1))
    logits, hidden = model.forward_with_activations(jnp.ones((7, 2)))
    assert logits.shape == (7, 4) and [h.shape for h in hidden] == [(7, 5), (7, 3)]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hidden": (8, 0)}, ValueError, r"`hidden` widths must be ints >= 1; got \(8, 0\)"),
        ({"hidden": 8}, TypeError, r"`hidden` must be a sequence of ints"),
        ({"activation": "swish"}, ValueError, r"`activation` must be one of 'relu'.*got 'swish'"),
    ],
)
def test_mlp_config_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        train.MLPConfig(**kwargs)


def test_deep_config_rejects_zero_width():
    with pytest.raises(ValueError, match=r"`width` must be an int >= 1; got 0"):
        train.MLPConfig.deep(depth=3, width=0)


def test_configs_accept_numpy_numbers_and_store_python_ones():
    deep = train.MLPConfig.deep(np.int64(3), np.int32(4))
    assert deep.hidden == (4, 4, 4) and all(type(w) is int for w in deep.hidden)
    assert train.MLPConfig(hidden=[np.int16(5)]).hidden == (5,)
    config = train.TrainConfig(
        steps=np.int64(5), learning_rate=np.float32(0.5), batch_size=np.int32(8), target_loss=0
    )
    assert (config.steps, config.learning_rate, config.batch_size, config.target_loss) == (
        5,
        0.5,
        8,
        0.0,
    )
    assert [type(v) for v in (config.steps, config.batch_size)] == [int, int]
    assert [type(v) for v in (config.learning_rate, config.target_loss)] == [float, float]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: train.TrainConfig(steps=3.0), r"`steps` must be an int; got 3.0 of type float"),
        (lambda: train.TrainConfig(steps="3"), r"`steps` must be an int; got '3'"),
        (lambda: train.TrainConfig(steps=True), r"`steps` must be an int; got True"),
        (lambda: train.TrainConfig(optimizer=3), r"`optimizer` must be a string.*got 3"),
        (lambda: train.TrainConfig(learning_rate="0.1"), r"`learning_rate` must be a real .*'0.1'"),
        (
            lambda: train.TrainConfig(batch_size=2.5),
            r"`batch_size` must be an int or None; got 2.5",
        ),
        (lambda: train.TrainConfig(target_loss=None), r"`target_loss` must be a real.*got None"),
        (lambda: train.MLPConfig.deep(3.0, 4), r"`depth` must be an int; got 3.0"),
        (lambda: train.MLPConfig.deep(3, "4"), r"`width` must be an int; got '4'"),
        (lambda: train.MLPConfig(hidden=(8, 2.5)), r"`hidden` must be a sequence of ints.*2.5"),
        (lambda: train.MLPConfig(activation=None), r"`activation` must be a string.*got None"),
        (lambda: train.load_dataset("circles", n_samples=100.0), r"`n_samples` .*got 100.0"),
        (lambda: train.load_dataset("circles", seed="0"), r"`seed` must be an int; got '0'"),
        (lambda: train.load_dataset(3), r"`dataset` must be a string.*got 3"),
        (
            lambda: train.MLP(4, (3,), 2, kernel_init=None, rngs=nnx.Rngs(0)),
            r"`kernel_init` must be an initializer spec; got None",
        ),
        (
            lambda: train.MLP(4, (3,), 2, bias_init=None, rngs=nnx.Rngs(0)),
            r"`bias_init` must be an initializer spec; got None",
        ),
    ],
)
def test_wrong_kinds_raise_type_error_naming_the_argument(build, match):
    with pytest.raises(TypeError, match=match):
        build()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, r"`steps` must be an int >= 1; got 0"),
        ({"optimizer": "rmsprop"}, r"`optimizer` must be one of 'sgd', 'momentum', 'adam'"),
        ({"learning_rate": -1.0}, r"`learning_rate` must be a finite number > 0"),
        ({"batch_size": 0}, r"`batch_size` must be an int >= 1 or None"),
    ],
)
def test_train_config_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.TrainConfig(**kwargs)


def test_compare_rejects_unknown_and_duplicate_inits():
    with pytest.raises(ValueError, match="he_nromal"):
        train.compare(["he_nromal"], "circles", model=SMALL_MODEL, train=SMALL_TRAIN)
    with pytest.raises(ValueError, match="names 'zeros' twice"):
        train.compare(["zeros", "zeros"], "circles", model=SMALL_MODEL, train=SMALL_TRAIN)
    with pytest.raises(ValueError, match="`seeds` must be an int >= 1; got 0"):
        train.compare(["zeros"], "circles", model=SMALL_MODEL, train=SMALL_TRAIN, seeds=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seeds": 2.0}, r"`seeds` must be an int .*; got 2.0"),
        ({"seeds": "3"}, r"`seeds` must be an int .*; got '3'"),
        ({"seeds": [0, 1.5]}, r"`seeds` must be an int .*; got \[0, 1.5\]"),
        ({"inits": 3}, r"`inits` must be a sequence or mapping .*; got 3"),
        ({"inits": "he_normal"}, r"`inits` must be a sequence or mapping .*; got 'he_normal'"),
        ({"dataset": 3}, r"`dataset` must be a dataset name or a Dataset; got 3"),
        ({"model": (8, 8)}, r"`model` must be an MLPConfig; got \(8, 8\)"),
    ],
)
def test_compare_rejects_wrong_kinds_with_type_error(kwargs, match):
    kwargs = {"inits": ["zeros"], "dataset": "circles", **kwargs}
    with pytest.raises(TypeError, match=match):
        train.compare(kwargs.pop("inits"), kwargs.pop("dataset"), **kwargs)


# --- results ------------------------------------------------------------------------------


def _assert_mean_std(stat, n_seeds):
    assert set(stat) == {"mean", "std", "per_seed"}
    assert len(stat["per_seed"]) == n_seeds


def test_results_follow_the_schema(small_study):
    results = json.loads(json.dumps(small_study.to_dict(), allow_nan=False))
    assert set(results) == {"config", "runs"}
    config = results["config"]
    assert config["dataset"] == "circles" and config["hidden"] == [16, 16]
    assert config["inits"] == list(SMALL_INITS) and config["seeds"] == [0, 1]
    assert [run["init"] for run in results["runs"]] == list(SMALL_INITS)
    for run in results["runs"]:
        assert len(run["loss_curve"]) == SMALL_TRAIN.steps + 1
        for key in ("final_train_loss", "test_accuracy", "train_accuracy", "initial_loss"):
            _assert_mean_std(run[key], 2)
        assert len(run["steps_to_target"]) == 2
        assert all(s is None or isinstance(s, int) for s in run["steps_to_target"])
        assert run["diverged"] is False
        assert len(run["activation_std_at_init"]) == 2  # hidden layers
        assert len(run["grad_norm_at_init"]) == 3  # all layers
    he = results["runs"][1]
    assert he["final_train_loss"]["mean"] < he["loss_curve"][0]
    assert he["final_train_loss"]["per_seed"][0] == pytest.approx(
        small_study.curves["he_normal"][0, -1]
    )


def _reference_at_init(init, seed, data):
    """Loss, hidden-layer stds and kernel-gradient norms at init, computed without the trainer."""
    import jax

    param_key = jax.random.split(jax.random.key(seed))[0]  # the trainer's parameter key
    model = train.MLP(2, (16, 16), 2, kernel_init=init, rngs=nnx.Rngs(params=param_key))
    kernels = [layer.kernel[...] for layer in model.layers]
    biases = [layer.bias[...] for layer in model.layers]
    x, labels = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    def loss_and_stds(kernels):
        h, stds = x, []
        for w, b in zip(kernels[:-1], biases[:-1], strict=True):
            h = jnp.maximum(h @ w + b, 0.0)
            stds.append(jnp.std(h))
        logits = h @ kernels[-1] + biases[-1]
        log_p = logits - jax.scipy.special.logsumexp(logits, axis=1, keepdims=True)
        return -jnp.mean(log_p[jnp.arange(len(labels)), labels]), stds

    (loss, stds), grads = jax.jit(jax.value_and_grad(loss_and_stds, has_aux=True))(kernels)
    return float(loss), np.array(stds), np.array([float(jnp.linalg.norm(g)) for g in grads])


def test_statistics_at_init_match_an_independent_computation(small_study):
    data = train.load_dataset("circles")
    for init in ("he_normal", "glorot_uniform"):
        run = next(r for r in small_study.runs if r["init"] == init)
        refs = [_reference_at_init(init, seed, data) for seed in (0, 1)]
        for seed, (loss, _, _) in enumerate(refs):
            assert small_study.curves[init][seed, 0] == pytest.approx(loss, rel=1e-5)
        np.testing.assert_allclose(
            run["activation_std_at_init"], np.mean([r[1] for r in refs], axis=0), rtol=1e-5
        )
        np.testing.assert_allclose(
            run["grad_norm_at_init"], np.mean([r[2] for r in refs], axis=0), rtol=1e-4
        )


def test_same_seeds_give_identical_results_also_as_a_numpy_int(small_study):
    again = train.compare(
        SMALL_INITS, "circles", model=SMALL_MODEL, train=SMALL_TRAIN, seeds=np.int64(2)
    )
    assert again.to_dict() == small_study.to_dict()
    assert [type(s) for s in again.config["seeds"]] == [int, int]


def test_one_compile_per_configuration(small_study):
    before = loop.trace_count()
    # Other initializers (and another learning rate) reuse the compiled program...
    other = train.TrainConfig(steps=SMALL_TRAIN.steps, learning_rate=0.01)
    train.compare(
        ["ones", "lecun_normal", "orthogonal"], "circles", model=SMALL_MODEL, train=other, seeds=2
    )
    assert loop.trace_count() == before
    # ...and a new architecture is traced exactly once for all its inits and seeds.
    train.compare(
        SMALL_INITS, "circles", model=train.MLPConfig(hidden=(8, 4)), train=SMALL_TRAIN, seeds=2
    )
    assert loop.trace_count() == before + 1


def test_divergence_is_reported_not_raised(tmp_path):
    # lr 1e6 blows up He and Glorot in every seed; zero init gets no gradient (balanced
    # classes, dead units) and stays finite. Same program as `small_study` (lr is traced).
    blowup = train.TrainConfig(steps=SMALL_TRAIN.steps, learning_rate=1e6)
    study = train.compare(SMALL_INITS, "circles", model=SMALL_MODEL, train=blowup, seeds=2)
    zeros, he, glorot = study.runs
    assert zeros["diverged"] is False and None not in zeros["loss_curve"]
    for run in (he, glorot):
        assert run["diverged"] is True and run["diverged_per_seed"] == [True, True]
        assert run["final_train_loss"]["mean"] is None and run["final_train_loss"]["std"] is None
        # Every seed diverged: the curve is null from the first non-finite mean on.
        assert run["loss_curve"][0] is not None and run["loss_curve"][-1] is None
    paths = study.save(tmp_path)
    json.loads(paths["results.json"].read_text())  # strict JSON: nulls, no NaN
    assert (
        "**he_normal** diverged (non-finite loss) for 2/2 seeds." in paths["report.md"].read_text()
    )


def test_loss_curve_averages_the_seeds_that_did_not_diverge():
    nan, inf = float("nan"), float("inf")
    curves = np.array([[0.7, 0.5, 0.3], [0.7, 2e30, nan], [0.7, 0.4, 0.2]])
    run = metrics.summarize_runs(
        "x",
        curves,
        train_accuracy=np.array([0.9, 0.1, 1.0]),
        test_accuracy=np.array([0.8, 0.5, 1.0]),
        activation_std=np.ones((3, 2)),
        grad_norm=np.ones((3, 3)),
        target_loss=0.45,
    )
    assert run["diverged"] is True and run["diverged_per_seed"] == [False, True, False]
    np.testing.assert_allclose(run["loss_curve"], [0.7, 0.45, 0.25])
    np.testing.assert_allclose(run["loss_curve_std"], [0.0, 0.1 / 2**0.5, 0.1 / 2**0.5])
    assert run["final_train_loss"]["per_seed"] == [0.3, None, 0.2]
    assert run["final_train_loss"]["mean"] == pytest.approx(0.25)
    assert run["test_accuracy"]["mean"] == pytest.approx(0.9)
    assert run["steps_to_target"] == [2, None, 1]
    assert run["initial_loss"]["mean"] == pytest.approx(0.7)
    # When every seed diverged the plain mean is kept: null where it is not finite.
    both = metrics.summarize_runs(
        "y",
        np.array([[0.7, 0.6, inf], [0.7, nan, nan]]),
        train_accuracy=np.zeros(2),
        test_accuracy=np.zeros(2),
        activation_std=np.ones((2, 1)),
        grad_norm=np.ones((2, 2)),
        target_loss=0.1,
    )
    assert both["diverged_per_seed"] == [True, True]
    assert both["loss_curve"] == [0.7, None, None]


def test_std_over_seeds_is_the_sample_std():
    assert metrics.mean_std([1.0, 3.0, None])["std"] == pytest.approx(2**0.5)
    assert metrics.mean_std([1.0, 2.0, 3.0])["std"] == pytest.approx(1.0)
    assert metrics.mean_std([0.25])["std"] == 0.0
    _, std = metrics.curve_mean_std(np.array([[1.0, 2.0], [3.0, 2.0]]))
    np.testing.assert_allclose(std, [2**0.5, 0.0])


def _fake_study(steps_by_init, seeds=(0, 1, 2)):
    runs = [
        {
            "init": init,
            "steps_to_target": steps,
            "loss_curve": [0.7, 0.01],
            "diverged": False,
            "diverged_per_seed": [False] * len(seeds),
            "activation_std_at_init": [1.0, 1.0],
        }
        for init, steps in steps_by_init.items()
    ]
    config = {"target_loss": 0.05, "seeds": list(seeds)}
    return train.Study(config, runs, curves={}, activations={}, seconds=0.0)


def test_fastest_is_the_init_most_seeds_reach_the_target_with_then_fewest_steps():
    from jinit.train.report import findings

    study = _fake_study({"lucky": [10, None, None], "steady": [50, 60, 70], "two": [20, None, 30]})
    fastest = [note for note in findings(study) if note.startswith("Fastest")]
    assert fastest == [
        "Fastest to training loss 0.05: **steady** (3/3 seeds reached it, in 60 steps on average)."
    ]
    same_count = _fake_study({"slow": [50, 70, None], "quick": [None, 30, 40]})
    assert "**quick** (2/3 seeds reached it, in 35 steps" in findings(same_count)[0]
    assert not any(n.startswith("Fastest") for n in findings(_fake_study({"a": [None] * 3})))


def test_minibatch_training_is_deterministic_and_learns():
    config = train.TrainConfig(steps=40, learning_rate=0.05, batch_size=16)
    a = train.compare(["he_normal"], "circles", model=SMALL_MODEL, train=config, seeds=1)
    b = train.compare(["he_normal"], "circles", model=SMALL_MODEL, train=config, seeds=1)
    np.testing.assert_array_equal(a.curves["he_normal"], b.curves["he_normal"])
    curve = a.runs[0]["loss_curve"]
    assert curve[-1] < curve[0]


def test_save_writes_the_four_files(small_study, tmp_path):
    paths = small_study.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "activations.png",
        "loss_curves.png",
        "report.md",
        "results.json",
    ]
    assert paths["loss_curves.png"].read_bytes()[:4] == b"\x89PNG"
    report = paths["report.md"].read_text()
    assert "| he_normal |" in report and "loss_curves.png" in report
    assert "Mean ± sample std over seeds" in report
    assert "**zeros** did not learn" in report
    assert "Fastest to training loss 0.05: **" in report and "(2/2 seeds reached it" in report
    table = small_study.table()
    assert table.splitlines()[0].startswith("init") and "glorot_uniform" in table


# --- issue 11: heads, per-layer and data-dependent inits, sweeps, targets, data --------------

COURSE_X, COURSE_Y = train.datasets.make_circles(60, noise=0.05, seed=1)
COURSE = train.Dataset.from_arrays(COURSE_X, COURSE_Y, test_fraction=0.25, name="c60")
TINY_SIGMOID = train.MLPConfig(hidden=(6, 3), loss="sigmoid")
TINY_TRAIN = train.TrainConfig(steps=12, optimizer="sgd", learning_rate=0.5)
# Two runs per study (1 init x 2 seeds or 2 inits x 1 seed) share one compiled program.


@pytest.fixture(scope="module")
def he_sigmoid():
    return train.compare(["he_normal"], COURSE, model=TINY_SIGMOID, train=TINY_TRAIN, seeds=2)


def test_make_circles_is_scikit_learns():
    sklearn = pytest.importorskip("sklearn.datasets")
    for n, seed in ((300, 1), (101, 2)):
        np.random.seed(seed)  # noqa: NPY002 - the course seeds the global generator
        x_ref, y_ref = sklearn.make_circles(n_samples=n, noise=0.05)
        x, y = train.datasets.make_circles(n, noise=0.05, seed=seed)
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)
    x, y = train.datasets.make_circles(200, factor=0.3, seed=0)
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], 0.3)


def test_dataset_options_factor_standardize_and_custom_arrays(tmp_path):
    raw = train.load_dataset("circles", n_samples=200, noise=0.0, factor=0.8, standardize=False)
    radius = np.linalg.norm(raw.x_train, axis=1)
    np.testing.assert_allclose(sorted(set(np.round(radius, 5))), [0.8, 1.0])
    assert abs(float(raw.x_train.std()) - 1.0) > 0.05  # not standardized
    with pytest.raises(ValueError, match=r"`factor` applies to 'circles' only"):
        train.load_dataset("moons", factor=0.5)
    with pytest.raises(ValueError, match=r"`factor` must be in \(0, 1\); got 1.5"):
        train.load_dataset("circles", factor=1.5)
    assert COURSE.n_classes == 2 and len(COURSE.y_train) == 44 and len(COURSE.y_test) == 16
    np.testing.assert_array_equal(np.bincount(COURSE.y_test), [8, 8])  # stratified
    path = tmp_path / "d.npz"
    np.savez(path, x=COURSE_X, y=COURSE_Y, x_test=COURSE_X[:5], y_test=COURSE_Y[:5])
    data = train.datasets.load_npz(path)
    np.testing.assert_array_equal(data.x_train, COURSE_X.astype(np.float32))
    assert data.name == "d" and len(data.y_test) == 5
    np.savez(tmp_path / "bad.npz", features=COURSE_X)
    with pytest.raises(ValueError, match=r"must hold arrays named 'x' and 'y'"):
        train.datasets.load_npz(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match=r"`x` and `y` must have the same length; got 60 and 59"):
        train.Dataset.from_arrays(COURSE_X, COURSE_Y[:-1])
    regression = train.Dataset.from_arrays(COURSE_X, COURSE_X @ np.ones((2, 3)))
    assert regression.n_classes == 0 and regression.n_targets == 3


def _bce_reference(x, y, seed, steps, lr):
    """Plain JAX: the same [2, 6, 3, 1] ReLU net, sigmoid + hand-written BCE, gradient descent."""
    import jax

    param_key = jax.random.split(jax.random.key(seed))[0]
    model = train.MLP(2, (6, 3), 1, kernel_init="he_normal", rngs=nnx.Rngs(params=param_key))
    params = [(layer.kernel[...], layer.bias[...]) for layer in model.layers]

    def loss(params):
        h = x
        for w, b in params[:-1]:
            h = jnp.maximum(h @ w + b, 0.0)
        p = jax.nn.sigmoid(h @ params[-1][0] + params[-1][1])[:, 0]
        return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    @jax.jit
    def step(params):
        value, grads = jax.value_and_grad(loss)(params)
        return value, jax.tree.map(lambda p, g: p - lr * g, params, grads)

    losses = []
    for _ in range(steps):
        value, params = step(params)
        losses.append(float(value))
    return np.array([*losses, float(jax.jit(loss)(params))])


def test_sigmoid_head_trains_like_a_hand_written_bce_loop(he_sigmoid):
    study = he_sigmoid
    x, y = jnp.asarray(COURSE.x_train), jnp.asarray(COURSE.y_train, jnp.float32)
    for seed in (0, 1):
        ref = _bce_reference(x, y, seed, TINY_TRAIN.steps, TINY_TRAIN.learning_rate)
        np.testing.assert_allclose(study.curves["he_normal"][seed], ref, rtol=2e-5)
    assert study.config["loss"] == "sigmoid"


def test_per_layer_inits_are_applied_in_order(he_sigmoid):
    model = train.MLP(
        2,
        (4, 3),
        1,
        kernel_init=["zeros", "ones", {"name": "constant", "value": 2.0}],
        rngs=nnx.Rngs(0),
    )
    assert [float(k.mean()) for k in model.kernels()] == [0.0, 1.0, 2.0]
    he = train.MLP(2, (4, 3), 1, kernel_init=["he_normal"] * 3, rngs=nnx.Rngs(0))
    same = train.MLP(2, (4, 3), 1, kernel_init="he_normal", rngs=nnx.Rngs(0))
    for a, b in zip(he.kernels(), same.kernels(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"one spec per layer \(3: 2 hidden \+ the output"):
        train.MLP(2, (4, 3), 1, kernel_init=["zeros", "ones"], rngs=nnx.Rngs(0))
    dead = train.compare(
        ["he_normal+zeros+he_normal"], COURSE, model=TINY_SIGMOID, train=TINY_TRAIN, seeds=2
    ).runs[0]
    assert dead["init"] == "he_normal+zeros+he_normal"
    assert dead["activation_std_at_init"][1] == 0.0
    assert he_sigmoid.runs[0]["activation_std_at_init"][1] > 0
    listed = train.compare(
        [["he_normal"] * 3], COURSE, model=TINY_SIGMOID, train=TINY_TRAIN, seeds=2
    )
    np.testing.assert_array_equal(
        listed.curves["he_normal+he_normal+he_normal"], he_sigmoid.curves["he_normal"]
    )


def test_learning_rate_sweep_picks_the_minimum_in_one_program(he_sigmoid):
    before = loop.trace_count()
    rates = [1e-3, 0.5, 1e4]
    study = train.compare(
        ["he_normal"],
        COURSE,
        model=TINY_SIGMOID,
        train=TINY_TRAIN,
        seeds=2,
        learning_rates=rates,
    )
    assert loop.trace_count() - before <= 1  # every rate in the same program
    (run,) = study.runs
    finals = {e["learning_rate"]: e["final_train_loss"] for e in run["lr_sweep"]}
    fine = {lr: f for lr, f in finals.items() if f is not None}
    assert run["learning_rate"] == min(fine, key=fine.get) == 0.5
    assert run["final_train_loss"]["mean"] == pytest.approx(finals[0.5])
    # The swept rate gives the same numbers as a study trained at that rate alone.
    np.testing.assert_allclose(study.curves["he_normal"], he_sigmoid.curves["he_normal"], rtol=1e-6)
    by_steps = train.compare(
        ["he_normal"],
        COURSE,
        model=TINY_SIGMOID,
        train=train.TrainConfig(steps=12, optimizer="sgd", target_fraction=0.95),
        seeds=2,
        learning_rates=rates,
        select="steps_to_target",
    )
    sweep = by_steps.runs[0]["lr_sweep"]
    reached = [e for e in sweep if None not in e["steps_to_target"] and not e["diverged"]]
    best = min(reached, key=lambda e: np.mean(e["steps_to_target"]))
    assert by_steps.runs[0]["learning_rate"] == best["learning_rate"]
    with pytest.raises(ValueError, match=r"`select` must be one of 'final_loss'"):
        train.compare(["he_normal"], COURSE, learning_rates=[0.1], select="best")
    with pytest.raises(TypeError, match=r"`learning_rates` must be a non-empty sequence"):
        train.compare(["he_normal"], COURSE, learning_rates=0.1)


def test_relative_target_is_a_fraction_of_each_runs_initial_loss():
    config = train.TrainConfig(steps=12, optimizer="sgd", learning_rate=0.5, target_fraction=0.8)
    study = train.compare(["he_normal", "zeros"], COURSE, model=TINY_SIGMOID, train=config, seeds=1)
    for run in study.runs:
        for curve, steps in zip(study.curves[run["init"]], run["steps_to_target"], strict=True):
            hits = np.flatnonzero(curve <= 0.8 * curve[0])
            assert steps == (int(hits[0]) if hits.size else None)
    assert study.runs[1]["steps_to_target"] == [None]  # zeros never moves
    with pytest.raises(ValueError, match=r"`target_fraction` must be in \(0, 1\]"):
        train.TrainConfig(target_fraction=1.5)


def test_lsuv_as_an_init_spec_gives_unit_variances():
    import jax

    import jinit

    study = train.compare(["lsuv"], COURSE, model=TINY_SIGMOID, train=TINY_TRAIN, seeds=2)
    (run,) = study.runs
    for seed, info in enumerate(run["lsuv"]):
        assert info["converged"] and all(abs(v - 1) < 0.1 for v in info["variances"])
        # The same network rebuilt and LSUV-initialized by hand: the same initial loss and
        # unit-variance pre-activations in every layer.
        param_key = jax.random.split(jax.random.key(seed))[0]
        net = train.MLP(2, (6, 3), 1, kernel_init="orthogonal", rngs=nnx.Rngs(params=param_key))
        x = jnp.asarray(COURSE.x_train)
        jinit.lsuv(net, x, key=jax.random.fold_in(param_key, 1))
        h = x
        for layer in net.layers:
            pre = layer(h)
            assert abs(float(pre.var()) - 1) < 0.1
            h = jnp.maximum(pre, 0.0)
        y = jnp.asarray(COURSE.y_train, jnp.float32)
        z = pre[:, 0]
        ref = float(jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))))
        assert study.curves["lsuv"][seed, 0] == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ValueError, match=r"'lsuv' option `tol` must be a number in \(0, 1\)"):
        train.compare([{"name": "lsuv", "tol": 2.0}], COURSE, model=TINY_SIGMOID)


def test_backprop_grad_std_matches_jax_grad_wrt_pre_activations(he_sigmoid):
    import jax

    study = he_sigmoid
    x, y = jnp.asarray(COURSE.x_train), jnp.asarray(COURSE.y_train, jnp.float32)
    stds = []
    for seed in (0, 1):
        param_key = jax.random.split(jax.random.key(seed))[0]
        model = train.MLP(2, (6, 3), 1, kernel_init="he_normal", rngs=nnx.Rngs(params=param_key))
        params = [(layer.kernel[...], layer.bias[...]) for layer in model.layers]

        def loss(shifts, params=params):
            h = x
            for (w, b), s in zip(params[:-1], shifts, strict=True):
                h = jnp.maximum(h @ w + b + s, 0.0)
            z = (h @ params[-1][0] + params[-1][1])[:, 0]
            return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))

        grads = jax.grad(loss)([jnp.zeros((len(x), 6)), jnp.zeros((len(x), 3))])
        stds.append([float(g.std()) for g in grads])
    np.testing.assert_allclose(
        study.runs[0]["backprop_grad_std_at_init"], np.mean(stds, axis=0), rtol=1e-4
    )


def test_mse_head_fits_regression_targets_and_one_hot_labels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    data = train.Dataset.from_arrays(x, x @ rng.standard_normal((3, 2)), test_fraction=0.25)
    model = train.MLPConfig(hidden=(4,), activation="linear", loss="mse", use_bias=False)
    study = train.compare(["orthogonal"], data, model=model, train=TINY_TRAIN, seeds=1)
    (run,) = study.runs
    assert run["final_train_loss"]["mean"] < 0.1 * run["loss_curve"][0]
    assert run["test_accuracy"]["mean"] is None  # regression: no accuracy
    with pytest.raises(ValueError, match=r"loss 'softmax' needs class labels"):
        train.compare(["orthogonal"], data, model=train.MLPConfig(hidden=(4,)))
    with pytest.raises(ValueError, match=r"loss 'sigmoid' needs binary 0/1 labels"):
        train.compare(["orthogonal"], data, model=TINY_SIGMOID)


def test_cli_options_for_heads_data_and_sweeps(he_sigmoid, tmp_path, capsys):
    from jinit.train import cli

    path = tmp_path / "course.npz"
    np.savez(path, x=COURSE_X, y=COURSE_Y)
    argv = ["--data", str(path), "--no-standardize", "--test-fraction", "0.25", "--loss"]
    argv += ["sigmoid", "--hidden", "6,3", "--optimizer", "sgd", "--lr", "0.5", "--steps", "12"]
    argv += ["--seeds", "2", "--inits", "he_normal", "--no-progress", "--out", str(tmp_path / "o")]
    assert cli.main([*argv, "--target-fraction", "0.95"]) == 0
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["config"]["loss"] == "sigmoid" and results["config"]["target_fraction"] == 0.95
    np.testing.assert_allclose(
        results["runs"][0]["loss_curve"], he_sigmoid.runs[0]["loss_curve"], rtol=1e-6
    )
    with pytest.raises(SystemExit):
        cli.main([*argv, "--lr-sweep", "0.1,-1"])
    assert "--lr-sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*argv, "--inits", "lsuv+zeros"])
    assert "per-layer init list holds plain initializers" in capsys.readouterr().err


def test_cli_sweep_report_names_the_rates_the_choice_the_target_and_the_head(tmp_path, capsys):
    from jinit.train import cli
    from jinit.train.schema import check_results

    path = tmp_path / "course.npz"
    np.savez(path, x=COURSE_X, y=COURSE_Y)
    out = tmp_path / "o"
    argv = ["--data", str(path), "--no-standardize", "--test-fraction", "0.25", "--loss"]
    argv += ["sigmoid", "--hidden", "6,3", "--optimizer", "sgd", "--lr-sweep", "0.05,0.5"]
    argv += ["--steps", "12", "--seeds", "2", "--inits", "zeros,he_normal", "--no-progress"]
    assert cli.main([*argv, "--target-fraction", "0.95", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    header = captured.err.splitlines()[-1]
    assert "lr sweep 0.05,0.5 (select final_loss)" in header and "sigmoid loss" in header
    assert "target 0.95 x initial loss" in header and "x 2 lr" in header
    results = json.loads((out / "results.json").read_text())
    assert check_results(results) == []
    chosen = {run["init"]: run["learning_rate"] for run in results["runs"]}
    assert set(chosen.values()) <= {0.05, 0.5}
    assert (
        "selected learning rates (final_loss): "
        + ", ".join(f"{init} {lr:g}" for init, lr in chosen.items())
        in captured.out
    )
    report = (out / "report.md").read_text()
    assert "learning rates 0.05, 0.5 swept" in report and "lr=" not in report
    assert "loss `sigmoid`" in report and "<= 0.95 x its initial loss" in report
    assert "| init | lr 0.05 | lr 0.5 | selected |" in report
    sweep_lines = report.split("## Learning-rate sweep")[1].splitlines()
    for run in results["runs"]:
        row = next(line for line in sweep_lines if line.startswith(f"| {run['init']} |"))
        assert row.endswith(f"| {run['learning_rate']:g} |") and row.count("**") == 2
        sweep = {e["learning_rate"]: e["final_train_loss"] for e in run["lr_sweep"]}
        assert f"**{sweep[run['learning_rate']]:.3g}**" in row
    if importlib.util.find_spec("matplotlib") is not None:
        from jinit.train import plots

        title = plots._title(types.SimpleNamespace(config=results["config"]))
        assert "lr in {0.05, 0.5} (best per init)" in title and "sigmoid loss" in title
        assert "target 0.95 x initial loss" in title
