"""jinit.train: datasets, model, the compiled program, results schema, determinism."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jinit import train
from jinit.train import loop

SMALL_MODEL = train.MLPConfig(hidden=(8, 8))
SMALL_TRAIN = train.TrainConfig(steps=30, learning_rate=0.05)
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
    with pytest.raises(ValueError, match="`seeds` must be >= 1; got 0"):
        train.compare(["zeros"], "circles", model=SMALL_MODEL, train=SMALL_TRAIN, seeds=0)


# --- results ------------------------------------------------------------------------------


def _assert_mean_std(stat, n_seeds):
    assert set(stat) == {"mean", "std", "per_seed"}
    assert len(stat["per_seed"]) == n_seeds


def test_results_follow_the_schema(small_study):
    results = json.loads(json.dumps(small_study.to_dict(), allow_nan=False))
    assert set(results) == {"config", "runs"}
    config = results["config"]
    assert config["dataset"] == "circles" and config["hidden"] == [8, 8]
    assert config["inits"] == list(SMALL_INITS) and config["seeds"] == [0, 1]
    assert [run["init"] for run in results["runs"]] == list(SMALL_INITS)
    for run in results["runs"]:
        assert len(run["loss_curve"]) == SMALL_TRAIN.steps + 1
        assert run["loss_curve"][0] == pytest.approx(run["initial_loss"]["mean"])
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


def test_same_seed_gives_identical_results(small_study):
    again = train.compare(SMALL_INITS, "circles", model=SMALL_MODEL, train=SMALL_TRAIN, seeds=2)
    assert again.to_dict() == small_study.to_dict()


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
    blowup = train.TrainConfig(steps=20, optimizer="sgd", learning_rate=1e4)
    study = train.compare(
        ["he_normal"], "circles", model=train.MLPConfig(hidden=(8,)), train=blowup, seeds=2
    )
    run = study.runs[0]
    assert run["diverged"] is True and run["diverged_per_seed"] == [True, True]
    assert run["final_train_loss"]["mean"] is None and None in run["loss_curve"]
    paths = study.save(tmp_path)
    json.loads(paths["results.json"].read_text())  # strict JSON: nulls, no NaN
    assert "diverged" in paths["report.md"].read_text()


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
    table = small_study.table()
    assert table.splitlines()[0].startswith("init") and "glorot_uniform" in table


def test_init_statistics_match_jinit_data_diagnose():
    # The trainer and jinit.data.diagnose share the definitions of the statistics.
    diagnose = pytest.importorskip("jinit.data").diagnose
    import jax
    import optax

    data = train.load_dataset("circles", n_samples=100)
    study = train.compare(
        ["he_normal"], data, model=SMALL_MODEL, train=train.TrainConfig(steps=1), seeds=[0]
    )
    param_key = jax.random.split(jax.random.key(0))[0]  # the trainer's key for seed 0
    model = train.MLP(2, (8, 8), 2, kernel_init="he_normal", rngs=nnx.Rngs(params=param_key))
    labels = data.y_train
    report = diagnose(
        model,
        data.x_train,
        loss_fn=lambda logits: optax.softmax_cross_entropy_with_integer_labels(
            logits, labels
        ).mean(),
    )
    run = study.runs[0]
    np.testing.assert_allclose(
        run["activation_std_at_init"], report.hidden_activation_std, rtol=1e-5
    )
    np.testing.assert_allclose(run["grad_norm_at_init"], report.grad_norm, rtol=1e-4)
    assert run["loss_curve"][0] == pytest.approx(report.loss, rel=1e-5)
