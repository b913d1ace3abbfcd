"""LSUV (Mishkin & Matas 2016) on nnx and linen models: MLP, small CNN, dead ReLU."""

from __future__ import annotations

import itertools
import math
import re
import threading

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from tests.multidevice import run

TOL = 0.1


def _lecun_numpy(key, shape, dtype=jnp.float32):
    """LeCun normal drawn by NumPy: no XLA compilation per shape, which keeps these tests
    fast (jax's samplers compile once per kernel shape, about a second each on CPU)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
    fan_in = math.prod(shape[:-1])
    return jnp.asarray(rng.standard_normal(shape) / math.sqrt(fan_in), dtype)


FAST = {"kernel_init": _lecun_numpy}


def _linen_init(module: nn.Module, *args, **kwargs):
    """Variables like ``module.init``'s (kernels LeCun normal, the rest zero), drawn by
    NumPy: linen initializes under jit, where a NumPy initializer cannot run."""
    shapes = jax.eval_shape(lambda k, *a: module.init(k, *a, **kwargs), jax.random.key(0), *args)
    leaves, treedef = jax.tree_util.tree_flatten(shapes)
    keys = jax.random.split(jax.random.key(0), len(leaves))
    values = [
        _lecun_numpy(k, s.shape, s.dtype) if len(s.shape) >= 2 else jnp.zeros(s.shape, s.dtype)
        for k, s in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, values)


def _mlp(rngs: nnx.Rngs, widths=(12, 48, 48, 32, 5), act=nnx.relu) -> nnx.Sequential:
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nnx.Linear(a, b, **FAST, rngs=rngs))
        if i < len(widths) - 2:
            layers.append(act)
    return nnx.Sequential(*layers)


class _CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(3, 8, (3, 3), **FAST, rngs=rngs)
        self.conv2 = nnx.Conv(8, 16, (3, 3), strides=2, **FAST, rngs=rngs)
        self.head = nnx.Linear(16 * 4 * 4, 10, **FAST, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv1(x))
        x = nnx.relu(self.conv2(x))
        return self.head(x.reshape(x.shape[0], -1))


class _LinenCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.relu(nn.Conv(16, (3, 3), strides=2)(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


class _LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (48, 48):
            x = nn.tanh(nn.Dense(width)(x))
        return nn.Dense(5)(x)


def _cnn_variances(model: _CNN, x) -> dict[str, float]:
    """Independent check: each layer's output variance from a hand-written forward pass."""
    h1 = model.conv1(x)
    h2 = model.conv2(nnx.relu(h1))
    h3 = model.head(nnx.relu(h2).reshape(x.shape[0], -1))
    return {"conv1": float(h1.var()), "conv2": float(h2.var()), "head": float(h3.var())}


@pytest.fixture(scope="module")
def x_mlp():
    return jax.random.normal(jax.random.key(1), (256, 12)) * 3.0 + 1.0


@pytest.fixture(scope="module")
def x_img():
    return jax.random.normal(jax.random.key(2), (32, 8, 8, 3))


def test_lsuv_nnx_mlp(x_mlp):
    model = _mlp(nnx.Rngs(0))
    report = jinit.lsuv(model, x_mlp, tol=TOL)
    assert [r.path for r in report] == ["layers/0", "layers/2", "layers/4", "layers/6"]
    assert report.converged
    assert all(r.reason is None and r.iterations >= 1 for r in report)
    # The final variances hold on a fresh forward pass (the model was updated in place).
    for r in report:
        assert abs(r.variance - 1) < TOL
    h = x_mlp
    for layer in model.layers:
        h = layer(h)
        if isinstance(layer, nnx.Linear):
            assert abs(float(jnp.var(h)) - 1) < TOL
    # Orthogonal pre-init: the kernel is a scaled orthonormal matrix (columns orthogonal).
    k = np.asarray(model.layers[2].kernel[...], np.float64)
    gram = k.T @ k
    assert np.allclose(gram, np.eye(48) * gram[0, 0], atol=1e-4 * gram[0, 0])
    text = str(report)
    assert "layers/0" in text and "converged" in text


def test_lsuv_nnx_cnn(x_img):
    model = _CNN(nnx.Rngs(0))
    report = jinit.lsuv(model, x_img, tol=TOL)
    assert [r.path for r in report] == ["conv1", "conv2", "head"]
    assert [r.kind for r in report] == ["Conv", "Conv", "Linear"]
    assert report.converged
    variances = _cnn_variances(model, x_img)
    for p in ("conv1", "conv2", "head"):
        assert abs(variances[p] - 1) < TOL


def test_lsuv_conv_orthogonal_over_flattened_kernel(x_img):
    model = _CNN(nnx.Rngs(0))
    jinit.lsuv(model, x_img, max_iters=0)  # orthogonal pre-init only, no rescaling
    k = np.asarray(model.conv2.kernel[...], np.float64).reshape(-1, 16)  # (3*3*8, 16)
    assert np.allclose(k.T @ k, np.eye(16), atol=1e-5)


def test_lsuv_without_preinit_keeps_direction(x_mlp):
    model = _mlp(nnx.Rngs(0))
    before = np.asarray(model.layers[0].kernel[...])
    report = jinit.lsuv(model, x_mlp, orthogonal_preinit=False)
    after = np.asarray(model.layers[0].kernel[...])
    ratio = after / before
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-5)  # only rescaled
    assert report.converged


def test_lsuv_linen_mlp_and_cnn(x_mlp, x_img):
    for module, x in ((_LinenMLP(), x_mlp), (_LinenCNN(), x_img)):
        variables = _linen_init(module, x)
        old = jax.tree_util.tree_map(np.asarray, variables)
        new, report = jinit.lsuv_linen(module, variables, x, tol=TOL)
        assert report.converged, str(report)
        # input not modified, output keeps the structure
        jax.tree_util.tree_map(np.testing.assert_array_equal, old, variables)
        assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(variables)
        d = jinit.diagnose((module, new), x)
        assert [r.path for r in d] == [r.path for r in report]
        for r in d:
            assert abs(r.output_std**2 - 1) < TOL, r


def test_lsuv_linen_apply_kwargs(x_mlp):
    class Drop(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dense(32)(x)
            x = nn.Dropout(0.5, deterministic=not train)(nn.relu(x))
            return nn.Dense(4)(x)

    v = _linen_init(Drop(), x_mlp, train=False)
    _, report = jinit.lsuv_linen(Drop(), v, x_mlp, train=False)
    assert report.converged and len(report) == 2


def test_lsuv_dead_relu_reported(x_mlp):
    model = _mlp(nnx.Rngs(0))
    # A bias of -1e3 kills every unit of the first ReLU: layer 2 sees a constant zero input.
    model.layers[0].bias.set_value(jnp.full((48,), -1e3))
    report = jinit.lsuv(model, x_mlp)
    r = report[1]
    assert r.path == "layers/2"
    assert not r.converged and r.variance == 0.0
    assert "dead ReLU" in r.reason
    assert not report.converged
    assert report[0].converged  # layer 0's pre-activation output is still fine


def test_lsuv_dead_relu_with_bias_reported(x_mlp):
    model = _mlp(nnx.Rngs(0))
    model.layers[0].bias.set_value(jnp.full((48,), -1e3))
    model.layers[2].bias.set_value(jnp.linspace(-4.0, 4.0, 48))  # variance from the bias only
    r = jinit.lsuv(model, x_mlp)[1]
    assert not r.converged and r.iterations == 1 and "dead ReLU" in r.reason


def test_lsuv_nonzero_bias_needs_several_iterations(x_mlp):
    model = _mlp(nnx.Rngs(0), act=nnx.tanh)
    for i in (0, 2, 4):
        n = model.layers[i].bias.shape[0]
        model.layers[i].bias.set_value(jnp.linspace(-0.6, 0.6, n))
    report = jinit.lsuv(model, x_mlp, tol=0.01)
    assert report.converged, str(report)
    assert max(r.iterations for r in report) >= 2
    assert all(abs(r.variance - 1) < 0.01 for r in report)


def test_lsuv_max_iters_reason(x_mlp):
    model = _mlp(nnx.Rngs(0))
    # Bias spread adds variance that rescaling the kernel cannot remove.
    model.layers[0].bias.set_value(jnp.linspace(-3.0, 3.0, 48))
    report = jinit.lsuv(model, x_mlp, max_iters=3)
    r = report[0]
    assert not r.converged and r.iterations == 3 and "max_iters" in r.reason


def test_lsuv_records_call_order_not_attribute_order():
    class Reversed(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(8, 8, **FAST, rngs=rngs)
            self.b = nnx.Linear(4, 8, **FAST, rngs=rngs)

        def __call__(self, x):
            return self.a(nnx.tanh(self.b(x)))

    x = jax.random.normal(jax.random.key(0), (128, 4))
    report = jinit.lsuv(Reversed(nnx.Rngs(0)), x)
    assert [r.path for r in report] == ["b", "a"]


def test_lsuv_bad_arguments(x_mlp):
    model = _mlp(nnx.Rngs(0))
    with pytest.raises(ValueError, match="`tol`"):
        jinit.lsuv(model, x_mlp, tol=0.0)
    with pytest.raises(ValueError, match="`max_iters`"):
        jinit.lsuv(model, x_mlp, max_iters=-1)
    for tol in ("a", None, True, 1j, [0.1]):
        with pytest.raises(
            TypeError, match=f"`tol` must be a real number; got {re.escape(repr(tol))}"
        ):
            jinit.lsuv(model, x_mlp, tol=tol)
        with pytest.raises(TypeError, match="`tol`"):
            jinit.lsuv_linen(_LinenMLP(), {"params": {}}, x_mlp, tol=tol)
    for max_iters in (2.0, "3", None, True):
        with pytest.raises(
            TypeError, match=f"`max_iters` must be an int; got {re.escape(repr(max_iters))}"
        ):
            jinit.lsuv(model, x_mlp, max_iters=max_iters)
    with pytest.raises(ValueError, match=r"`tol` must be a number in \(0, 1\); got 1.5"):
        jinit.lsuv(model, x_mlp, tol=1.5)
    with pytest.raises(TypeError, match="lsuv_linen"):
        jinit.lsuv(_LinenMLP(), x_mlp)
    with pytest.raises(ValueError, match=r"no nnx\.Linear"):
        jinit.lsuv(nnx.Sequential(nnx.relu), x_mlp)
    with pytest.raises(TypeError, match=r"jinit\.lsuv\("):
        jinit.lsuv_linen(model, {}, x_mlp)


def test_lsuv_restores_layer_classes(x_mlp):
    model = _mlp(nnx.Rngs(0))
    jinit.lsuv(model, x_mlp)
    assert "__call__" in nnx.Linear.__dict__
    assert not getattr(nnx.Linear.__call__, "_jinit_wrapped", False)
    assert not getattr(nnx.Conv.__call__, "_jinit_wrapped", False)


def test_lsuv_linen_partitioned_params(x_mlp):
    class M(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.with_partitioning(nn.initializers.lecun_normal(), (None, "model"))
            return nn.Dense(4, kernel_init=init)(nn.relu(nn.Dense(16, kernel_init=init)(x)))

    variables = _linen_init(M(), x_mlp)
    new, report = jinit.lsuv_linen(M(), variables, x_mlp)
    assert report.converged and len(report) == 2
    assert isinstance(new["params"]["Dense_0"]["kernel"], nn.Partitioned)
    d = jinit.diagnose((M(), new), x_mlp)
    assert all(abs(r.output_std**2 - 1) < TOL for r in d)


def test_lsuv_accepts_numpy_scalars(x_mlp):
    model = _mlp(nnx.Rngs(0), widths=(12, 16, 4))
    report = jinit.lsuv(model, x_mlp, tol=np.float32(0.1), max_iters=np.int64(5))
    assert report.converged


def test_lsuv_linen_top_level_layer(x_mlp):
    # A bare nn.Dense: its scope path is empty, its kernel is variables["params"]["kernel"].
    variables = _linen_init(nn.Dense(8), x_mlp)
    new, report = jinit.lsuv_linen(nn.Dense(8), variables, x_mlp)
    assert [(r.path, r.kind) for r in report] == [("", "Dense")] and report.converged
    assert abs(float(nn.Dense(8).apply(new, x_mlp).var()) - 1) < TOL


def test_concurrent_captures_do_not_unpatch_each_other():
    """Thread A's capture starts first and ends while thread B's runs: B must still record."""
    from jinit.tools import _capture

    original = nnx.Linear.__dict__["__call__"]
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, list] = {}
    errors: list[BaseException] = []
    x = jnp.ones((1, 2))

    def capture(name, entered, wait_to_enter, wait_to_call):
        try:
            layer = nnx.Linear(2, 2, **FAST, rngs=nnx.Rngs(0))
            if wait_to_enter is not None:
                assert wait_to_enter.wait(10)
            with _capture.record_nnx(layer) as rec:
                entered.set()
                assert wait_to_call.wait(10)
                layer(x)
            seen[name] = rec
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            entered.set()
            if name == "a":
                a_out.set()

    threads = [
        threading.Thread(target=capture, args=("a", a_in, None, b_in)),
        threading.Thread(target=capture, args=("b", b_in, a_in, a_out)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert [r.path for r in seen["a"]] == [""], "thread A recorded nothing"
    assert [r.path for r in seen["b"]] == [""], "thread B recorded nothing"
    assert nnx.Linear.__dict__["__call__"] is original  # never replaced


class _Mixed(nn.Module):
    """Biased layers of several kinds (the bias added as each layer type adds it), and a
    layer called twice."""

    @nn.compact
    def __call__(self, x):  # (G, B, F)
        b = nn.initializers.normal(0.5)
        h = nn.Dense(8, bias_init=b, name="fc")(x)
        h = nn.DenseGeneral((2, 4), batch_dims=(0,), bias_init=b, name="gen")(jnp.tanh(h))
        h = nn.Einsum((2, 4, 8), "gbnh,nhd->gbd", bias_init=b, name="ein")(jnp.tanh(h))
        shared = nn.Dense(8, bias_init=b, name="shared")
        h = shared(jnp.tanh(shared(jnp.tanh(h))))
        return nn.Conv(5, (3,), bias_init=b, name="conv")(jax.nn.relu(h))


def _mixed_reference(p, x) -> dict[str, float]:
    """Each layer's output variance, by a forward pass in plain JAX."""
    fc = x @ p["fc"]["kernel"] + p["fc"]["bias"]
    gen = jnp.einsum("gbi,gino->gbno", jnp.tanh(fc), p["gen"]["kernel"])
    gen = gen + p["gen"]["bias"][:, None]
    ein = jnp.einsum("gbnh,nhd->gbd", jnp.tanh(gen), p["ein"]["kernel"]) + p["ein"]["bias"]
    shared = jnp.tanh(ein) @ p["shared"]["kernel"] + p["shared"]["bias"]
    again = jnp.tanh(shared) @ p["shared"]["kernel"] + p["shared"]["bias"]
    conv = (
        jax.lax.conv_general_dilated(
            jax.nn.relu(again),
            p["conv"]["kernel"],
            (1,),
            "SAME",
            dimension_numbers=("NWC", "WIO", "NWC"),
        )
        + p["conv"]["bias"]
    )
    outs = {"fc": fc, "gen": gen, "ein": ein, "shared": shared, "conv": conv}
    return {k: jnp.var(v) for k, v in outs.items()}


def test_lsuv_report_is_the_final_models_layer_variances():
    """One forward pass computes the rescaled outputs from each layer's output and bias:
    the reported variances are those of the final kernels' forward pass, per layer, within
    float rounding (biases added as each layer type adds them; a layer called twice is
    judged by its first call, its second call uses the final kernel)."""
    x = jax.random.normal(jax.random.key(4), (3, 16, 6)) * 2.0 + 0.5
    variables = _linen_init(_Mixed(), x)
    rng = np.random.default_rng(0)
    for layer in variables["params"].values():  # non-zero biases
        layer["bias"] = jnp.asarray(rng.normal(0, 0.5, layer["bias"].shape), jnp.float32)
    for preinit in (True, False):
        new, report = jinit.lsuv_linen(_Mixed(), variables, x, tol=0.01, orthogonal_preinit=preinit)
        assert [r.path for r in report] == ["fc", "gen", "ein", "shared", "conv"]
        assert report.converged, str(report)
        ref = jax.jit(_mixed_reference)(new["params"], x)
        for r in report:
            np.testing.assert_allclose(r.variance, float(ref[r.path]), rtol=1e-4, err_msg=r.path)
        # only the kernels changed
        for layer in ref:
            np.testing.assert_array_equal(
                new["params"][layer]["bias"], variables["params"][layer]["bias"]
            )


def test_lsuv_nnx_shared_layer_and_bias_match_a_plain_forward_pass(x_mlp):
    class Shared(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(12, 16, **FAST, rngs=rngs)
            self.b = nnx.Linear(16, 16, **FAST, rngs=rngs)
            for layer in (self.a, self.b):
                layer.bias.set_value(jnp.linspace(-0.5, 0.5, 16))

        def __call__(self, x):
            return self.b(jnp.tanh(self.b(jnp.tanh(self.a(x)))))

    model = Shared(nnx.Rngs(0))
    report = jinit.lsuv(model, x_mlp, tol=0.01)
    assert [r.path for r in report] == ["a", "b"] and report.converged, str(report)
    wa, ba = model.a.kernel[...], model.a.bias[...]
    wb, bb = model.b.kernel[...], model.b.bias[...]
    ya = x_mlp @ wa + ba
    yb = jnp.tanh(ya) @ wb + bb
    np.testing.assert_allclose(report[0].variance, float(jnp.var(ya)), rtol=1e-4)
    np.testing.assert_allclose(report[1].variance, float(jnp.var(yb)), rtol=1e-4)


def test_preinit_draws_are_haar_orthogonal():
    """The host-side Cholesky-QR draws: orthonormal columns, and the first column uniform
    on the sphere (q_11^2 ~ Beta(1/2, (n-1)/2)), on the float32 path (n >= 4m) and the
    float64 one; KS tests against scipy."""
    from scipy import stats

    from jinit.tools import _lsuv

    rng = np.random.default_rng(0)
    for n, m, dtype in ((12, 3, np.float32), (5, 4, np.float64)):
        q = _lsuv._haar(rng.standard_normal((4000, n, m), dtype))
        gram = np.einsum("kij,kil->kjl", q.astype(np.float64), q.astype(np.float64))
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(m), gram.shape), atol=1e-5)
        for col in range(m):
            p = stats.kstest(q[:, 0, col].astype(np.float64) ** 2, stats.beta(0.5, (n - 1) / 2).cdf)
            assert p.pvalue > 1e-3, (n, m, col, p)
        assert abs(np.mean(np.sign(q[:, 0, 0]))) < 5 / np.sqrt(4000)  # symmetric signs
    groups = [(((1, 6, 3), "float32"), ["p"])]
    a = _lsuv._draw(groups, [1, 2])[0]
    np.testing.assert_array_equal(a, _lsuv._draw(groups, [1, 2])[0])  # deterministic
    assert not np.allclose(a, _lsuv._draw(groups, [1, 3])[0])


_SHARDED = """
import jax, numpy as np, jinit
import flax.linen as nn
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
module = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(8)])
x = jax.random.normal(jax.random.key(0), (64, 12))
variables = module.init(jax.random.key(1), x)
x = jax.device_put(x, NamedSharding(mesh, P("data", None)))
put = lambda a: jax.device_put(a, NamedSharding(mesh, P(None, "model") if a.ndim == 2 else P()))
variables = jax.tree_util.tree_map(put, variables)
for preinit in (True, False):
    new, report = jinit.lsuv_linen(module, variables, x, orthogonal_preinit=preinit)
    assert report.converged, report
    for layer in ("layers_0", "layers_2"):
        assert new["params"][layer]["kernel"].sharding.spec == P(None, "model")
    assert abs(float(module.apply(new, x).var()) - 1) < 0.1
print("ok")
"""


@pytest.mark.slow
def test_lsuv_linen_sharded_kernels_keep_their_sharding():
    """Kernels sharded over a 2x4 mesh of simulated devices and a batch sharded over
    'data': the program compiles, and each new kernel keeps its sharding."""
    assert run(_SHARDED).strip() == "ok"


def test_preinit_draws_on_one_blas_thread_and_restores_the_limit():
    import threadpoolctl

    from jinit.tools import _lsuv

    seen = []
    real = _lsuv._assemble

    def spy(*args):
        seen.append(
            [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        )
        return real(*args)

    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    kernels = {"w": jnp.ones((8, 4))}
    groups, perms = _lsuv._plan(kernels, {"w": ((), (0,), (1,))})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_lsuv, "_assemble", spy)
        out = _lsuv._preinit(kernels, groups, perms, [0, 1])
    assert out["w"].shape == (8, 4)
    assert seen and all(n == 1 for n in seen[0])
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert after == before


class _Tied(nn.Module):
    """A tied embedding (lm1b's ``logits_via_embedding``) with a layer after ``attend``."""

    @nn.compact
    def __call__(self, ids):
        emb = nn.Embed(10, 16, embedding_init=nn.initializers.normal(3.0), name="emb")
        h = jnp.tanh(nn.Dense(16, name="fc")(emb(ids)))
        return nn.Dense(4, name="head")(emb.attend(h))


@pytest.mark.parametrize("api", ["linen", "nnx"])
def test_lsuv_tied_embedding_attend_uses_the_final_table(api):
    """``Embed.attend`` after the embedding's first call sees the rescaled table in the
    pass, so the layer after it is judged on what the final model feeds it."""
    ids = jax.random.randint(jax.random.key(0), (64,), 0, 10)
    if api == "linen":
        variables = _linen_init(_Tied(), ids)
        variables["params"]["emb"]["embedding"] *= 3.0
        new, report = jinit.lsuv_linen(_Tied(), variables, ids, tol=0.01)
        p = new["params"]
        table, fc, head = p["emb"]["embedding"], p["fc"], p["head"]
    else:

        class Tied(nnx.Module):
            def __init__(self, rngs):
                self.emb = nnx.Embed(10, 16, embedding_init=nnx.initializers.normal(3.0), rngs=rngs)
                self.fc = nnx.Linear(16, 16, **FAST, rngs=rngs)
                self.head = nnx.Linear(10, 4, **FAST, rngs=rngs)

            def __call__(self, ids):
                return self.head(self.emb.attend(jnp.tanh(self.fc(self.emb(ids)))))

        model = Tied(nnx.Rngs(0))
        report = jinit.lsuv(model, ids, tol=0.01)
        table = model.emb.embedding[...]
        fc = {"kernel": model.fc.kernel[...], "bias": model.fc.bias[...]}
        head = {"kernel": model.head.kernel[...], "bias": model.head.bias[...]}
    assert [r.path for r in report] == ["emb", "fc", "head"] and report.converged, str(report)
    h = jnp.tanh(table[ids] @ fc["kernel"] + fc["bias"])
    y = (h @ table.T) @ head["kernel"] + head["bias"]
    np.testing.assert_allclose(report[2].variance, float(jnp.var(y)), rtol=1e-4)


def test_lsuv_and_diagnose_layer_called_inside_jax_vmap(x_mlp):
    """An nnx layer called only inside a plain ``jax.vmap`` (its values cannot leave the
    transform) is skipped, not a crash; the layers outside it are processed."""

    class PerStep(nnx.Module):
        def __init__(self, rngs):
            self.fc = nnx.Linear(12, 16, **FAST, rngs=rngs)
            self.out = nnx.Linear(16, 4, **FAST, rngs=rngs)

        def __call__(self, x):
            h = jax.vmap(lambda t: jnp.tanh(self.fc(t)), in_axes=1, out_axes=1)(x)
            return self.out(h)

    x = x_mlp.reshape(-1, 4, 12) * 3.0
    model = PerStep(nnx.Rngs(0))
    report = jinit.lsuv(model, x, tol=0.01)
    assert [r.path for r in report] == ["out"] and report.converged, str(report)
    assert [s.path for s in report.skipped] == ["fc"] and "jax.vmap" in report.skipped[0].reason
    y = jnp.tanh(x @ model.fc.kernel[...] + model.fc.bias[...]) @ model.out.kernel[...]
    np.testing.assert_allclose(
        report[0].variance, float(jnp.var(y + model.out.bias[...])), rtol=1e-4
    )
    diagnosis = jinit.diagnose(model, x)
    assert [layer.path for layer in diagnosis.layers] == ["out"]


def test_lsuv_nnx_layers_sharing_one_kernel(x_mlp):
    """Two nnx layers holding the same kernel Variable (tied weights): the kernel is
    processed once, at the first call, and the other layer is reported as sharing it."""

    class Tied(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(12, 12, **FAST, rngs=rngs)
            self.b = nnx.Linear(12, 12, **FAST, rngs=rngs)
            self.b.kernel = self.a.kernel

        def __call__(self, x):
            return self.b(jnp.tanh(self.a(x)))

    model = Tied(nnx.Rngs(0))
    report = jinit.lsuv(model, x_mlp, tol=0.01)
    assert [r.path for r in report] == ["a"] and report.converged, str(report)
    assert model.a.kernel is model.b.kernel
    assert [(s.path, "shares" in s.reason) for s in report.skipped] == [("b", True)]
    w, ba = model.a.kernel[...], model.a.bias[...]
    np.testing.assert_allclose(report[0].variance, float(jnp.var(x_mlp @ w + ba)), rtol=1e-4)


def test_lsuv_model_holding_rngs_without_a_params_stream(x_mlp):
    """A model holding only a dropout ``nnx.Rngs`` (no params/default stream): the
    pre-init key falls back to the kernels' seed instead of failing."""

    class Drop(nnx.Module):
        def __init__(self):
            self.fc = nnx.Linear(12, 8, **FAST, rngs=nnx.Rngs(0))
            self.rngs = nnx.Rngs(dropout=1)

        def __call__(self, x):
            return nnx.Dropout(0.5)(self.fc(x), rngs=self.rngs)

    models = [Drop(), Drop()]
    reports = [jinit.lsuv(m, x_mlp) for m in models]
    assert all(r.converged for r in reports)
    np.testing.assert_array_equal(models[0].fc.kernel[...], models[1].fc.kernel[...])
