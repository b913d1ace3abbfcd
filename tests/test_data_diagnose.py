"""diagnose: activation statistics and gradient norms against a hand computation."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jinit

RTOL = 1e-5


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((16, 3)).astype(np.float32),
        "w1": rng.standard_normal((3, 5)).astype(np.float32),
        "b1": rng.standard_normal(5).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((5, 2)).astype(np.float32),
        "b2": rng.standard_normal(2).astype(np.float32) * 0.1,
    }


def _by_hand(w):
    """Forward and backward of relu MLP with loss mean(y^2)/2, in float64 NumPy."""
    x, w1, b1, w2, b2 = (np.asarray(w[k], np.float64) for k in ("x", "w1", "b1", "w2", "b2"))
    h1 = x @ w1 + b1
    a1 = np.maximum(h1, 0)
    y = a1 @ w2 + b2
    loss = 0.5 * np.mean(y**2)
    dy = y / y.size
    dw2 = a1.T @ dy
    dh1 = (dy @ w2.T) * (h1 > 0)
    dw1 = x.T @ dh1
    return {
        "loss": loss,
        "layers": [
            (x.mean(), x.std(), h1.mean(), h1.std(), np.linalg.norm(dw1)),
            (a1.mean(), a1.std(), y.mean(), y.std(), np.linalg.norm(dw2)),
        ],
    }


def _check(d, expected, paths):
    assert [r.path for r in d] == paths
    assert d.loss == pytest.approx(expected["loss"], rel=RTOL)
    for r, e in zip(d, expected["layers"], strict=True):
        got = (r.input_mean, r.input_std, r.output_mean, r.output_std, r.grad_norm)
        np.testing.assert_allclose(got, e, rtol=RTOL, atol=1e-6)


def _nnx_model(w):
    model = nnx.Sequential(
        nnx.Linear(3, 5, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(5, 2, rngs=nnx.Rngs(0))
    )
    model.layers[0].kernel.set_value(jnp.asarray(w["w1"]))
    model.layers[0].bias.set_value(jnp.asarray(w["b1"]))
    model.layers[2].kernel.set_value(jnp.asarray(w["w2"]))
    model.layers[2].bias.set_value(jnp.asarray(w["b2"]))
    return model


class _LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2, name="out")(nn.relu(nn.Dense(5, name="hidden")(x)))


def _linen_variables(w):
    return {
        "params": {
            "hidden": {"kernel": jnp.asarray(w["w1"]), "bias": jnp.asarray(w["b1"])},
            "out": {"kernel": jnp.asarray(w["w2"]), "bias": jnp.asarray(w["b2"])},
        }
    }


def test_nnx_matches_hand_computation(weights):
    model = _nnx_model(weights)
    d = jinit.diagnose(model, jnp.asarray(weights["x"]))
    expected = _by_hand(weights)
    _check(d, expected, ["layers/0", "layers/2"])
    assert d.hidden_activation_std == pytest.approx([expected["layers"][1][1]], rel=RTOL)
    assert d["layers/2"] is d[1]
    text = str(d)
    assert "layers/0" in text and "|grad|" in text and "loss" in text
    # the model is not modified
    np.testing.assert_array_equal(np.asarray(model.layers[0].kernel[...]), weights["w1"])


def test_linen_pair_and_apply_fn(weights):
    x = jnp.asarray(weights["x"])
    variables = _linen_variables(weights)
    expected = _by_hand(weights)
    _check(jinit.diagnose((_LinenMLP(), variables), x), expected, ["hidden", "out"])
    _check(jinit.diagnose(_LinenMLP().apply, x, variables=variables), expected, ["hidden", "out"])

    def apply_fn(v, x):  # a user's own function that calls a linen module
        return _LinenMLP().apply(v, x)

    _check(jinit.diagnose(apply_fn, x, variables=variables), expected, ["hidden", "out"])


def test_custom_loss(weights):
    model = _nnx_model(weights)
    x = jnp.asarray(weights["x"])
    d = jinit.diagnose(model, x, loss_fn=lambda y: jnp.sum(y))

    def loss(k1, k2):
        h = jax.nn.relu(x @ k1 + weights["b1"])
        return jnp.sum(h @ k2 + weights["b2"])

    g1, g2 = jax.grad(loss, argnums=(0, 1))(jnp.asarray(weights["w1"]), jnp.asarray(weights["w2"]))
    np.testing.assert_allclose(
        d.grad_norm, [float(jnp.linalg.norm(g1)), float(jnp.linalg.norm(g2))], rtol=RTOL
    )


def test_cnn_records_every_conv_and_dense():
    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
            self.fc = nnx.Linear(4 * 6 * 6, 2, rngs=rngs)

        def __call__(self, x):
            return self.fc(nnx.relu(self.conv(x)).reshape(x.shape[0], -1))

    d = jinit.diagnose(CNN(nnx.Rngs(0)), jnp.ones((2, 6, 6, 3)))
    assert [(r.path, r.kind) for r in d] == [("conv", "Conv"), ("fc", "Linear")]
    assert all(np.isfinite(r.grad_norm) and r.grad_norm > 0 for r in d)


def test_same_definitions_as_trainer():
    model_mod = pytest.importorskip("jinit.train.model")
    mlp = model_mod.MLP(4, (8, 8), 3, kernel_init="he_normal", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (32, 4))
    y = jnp.arange(32) % 3

    def ce(logits):
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    d = jinit.diagnose(mlp, x, loss_fn=ce)
    _, hidden = mlp.forward_with_activations(x)
    np.testing.assert_allclose(d.hidden_activation_std, [h.std() for h in hidden], rtol=RTOL)
    graphdef, params = nnx.split(mlp)

    @jax.jit  # one compilation instead of one per eager op
    def kernel_grad_norms(params):
        grads = jax.grad(lambda p: ce(nnx.merge(graphdef, p)(x)))(params)
        return [jnp.linalg.norm(k) for k in nnx.merge(graphdef, grads).kernels()]

    np.testing.assert_allclose(d.grad_norm, kernel_grad_norms(params), rtol=RTOL)


def test_bad_inputs(weights):
    x = jnp.asarray(weights["x"])
    with pytest.raises(TypeError, match="variables"):
        jinit.diagnose(_LinenMLP().apply, x)
    with pytest.raises(TypeError, match="`model`"):
        jinit.diagnose(3, x)
    with pytest.raises(TypeError, match="`loss_fn`"):
        jinit.diagnose(_nnx_model(weights), x, loss_fn=1)


def test_linen_top_level_layer_has_a_gradient(weights):
    # A bare nn.Dense: its scope path is empty, its kernel is variables["params"]["kernel"].
    x, w, b = (jnp.asarray(weights[k]) for k in ("x", "w1", "b1"))
    d = jinit.diagnose((nn.Dense(5), {"params": {"kernel": w, "bias": b}}), x)
    assert [(r.path, r.kind) for r in d] == [("", "Dense")]
    y = np.asarray(x, np.float64) @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
    dw = np.asarray(x, np.float64).T @ (y / y.size)  # loss mean(y^2) / 2
    assert d.grad_norm == pytest.approx([np.linalg.norm(dw)], rel=RTOL)


def test_trainer_gradient_norms_need_the_trainer_loss(weights):
    # The docstring's claim, both ways: the default loss gives other gradient norms.
    mlp, x = _nnx_model(weights), jnp.asarray(weights["x"])
    y = jnp.arange(x.shape[0]) % 2
    ce = jinit.diagnose(
        mlp, x, loss_fn=lambda z: optax.softmax_cross_entropy_with_integer_labels(z, y).mean()
    )
    default = jinit.diagnose(mlp, x)
    assert ce.hidden_activation_std == default.hidden_activation_std
    assert not np.allclose(ce.grad_norm, default.grad_norm, rtol=0.01)


def test_skipped_layers_of_one_kind_and_reason_are_one_row():
    """ResNet-style: many normalization layers are one row of the printed table (count,
    abbreviated paths); ``skipped`` keeps each one."""
    layers = []
    for i in range(5):
        layers += [nnx.Linear(4, 4, rngs=nnx.Rngs(i)), nnx.LayerNorm(4, rngs=nnx.Rngs(i))]
    model = nnx.Sequential(*layers)
    x = jnp.ones((8, 4)) + jnp.arange(4.0)
    d = jinit.diagnose(model, x)
    norms = [f"layers/{i}" for i in range(1, 10, 2)]
    assert [s.path for s in d.skipped] == norms and len({s.reason for s in d.skipped}) == 1
    for report in (d, jinit.lsuv(model, x, max_iters=0)):
        assert [s.path for s in report.skipped] == norms
        text = str(report)
        assert "\nskipped:\n" in text
        lines = [line for line in text.splitlines() if "LayerNorm" in line]
        assert lines == [
            "  layers/1, layers/3, ..., layers/9 [5 layers] (LayerNorm): "
            + report.skipped[0].reason
        ], text
