"""from_checkpoint and transfer: round trips, errors, pickle refusal, reports, strictness."""

from __future__ import annotations

import json
import re
import struct

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

import jinit

KEY = jax.random.key(0)


def _write_safetensors(path, arrays: dict[str, np.ndarray]) -> None:
    """Reference writer, independent of jinit's reader (the optional package when present)."""
    try:
        from safetensors.numpy import save_file
    except ImportError:
        save_file = None
    if save_file is not None and all(a.dtype != ml_dtypes.bfloat16 for a in arrays.values()):
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
        return
    codes = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}
    header, blobs, offset = {}, [], 0
    for name, arr in arrays.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {
            "dtype": codes[arr.dtype.name],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {
        "fc.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "fc.bias": rng.standard_normal(4).astype(np.float32),
        "conv.weight": rng.standard_normal((5, 2, 3, 3)).astype(np.float32),
    }


@pytest.fixture(params=["npz", "safetensors"])
def ckpt(request, tmp_path, arrays):
    path = tmp_path / f"model.{request.param}"
    if request.param == "npz":
        np.savez(path, **arrays)
    else:
        _write_safetensors(path, arrays)
    return path


# --------------------------------------------------------------------------------------
# from_checkpoint
# --------------------------------------------------------------------------------------


def test_round_trip(ckpt, arrays):
    for name, arr in arrays.items():
        init = jinit.from_checkpoint(ckpt, name)
        out = init(KEY, arr.shape)
        assert out.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(out), arr)
        assert isinstance(init, jinit.Initializer)
        assert init == jinit.from_checkpoint(ckpt, name)
        assert hash(init) == hash(jinit.from_checkpoint(ckpt, name))
    # jit and eval_shape work; the key is ignored
    init = jinit.from_checkpoint(ckpt, "fc.bias")
    jitted = jax.jit(init, static_argnums=(1,))(jax.random.key(5), (4,))
    np.testing.assert_array_equal(np.asarray(jitted), arrays["fc.bias"])
    assert jax.eval_shape(lambda: init(KEY, (4,))).shape == (4,)


def test_torch_layout(ckpt, arrays):
    w = jinit.from_checkpoint(ckpt, "fc.weight", layout="torch")(KEY, (3, 4))
    np.testing.assert_array_equal(np.asarray(w), arrays["fc.weight"].T)
    k = jinit.from_checkpoint(ckpt, "conv.weight", layout="torch")(KEY, (3, 3, 2, 5))
    np.testing.assert_array_equal(np.asarray(k), arrays["conv.weight"].transpose(2, 3, 1, 0))


def test_as_flax_kernel_init(ckpt, arrays):
    layer = nnx.Linear(
        3,
        4,
        kernel_init=jinit.from_checkpoint(ckpt, "fc.weight", layout="torch"),
        bias_init=jinit.from_checkpoint(ckpt, "fc.bias"),
        rngs=nnx.Rngs(0),
    )
    x = np.ones((2, 3), np.float32)
    expected = x @ arrays["fc.weight"].T + arrays["fc.bias"]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6)


def test_shape_mismatch_names_everything(ckpt):
    init = jinit.from_checkpoint(ckpt, "fc.weight")
    with pytest.raises(ValueError) as e:
        init(KEY, (3, 4))
    msg = str(e.value)
    assert "'fc.weight'" in msg and "(4, 3)" in msg and "(3, 4)" in msg


def test_missing_name_lists_available(ckpt):
    with pytest.raises(KeyError) as e:
        jinit.from_checkpoint(ckpt, "fc.wieght")
    msg = str(e.value)
    assert "'fc.wieght'" in msg and "'fc.weight'" in msg and "'conv.weight'" in msg


def test_dtype_policy(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, f64=np.ones((2, 2)), i32=np.ones((2, 2), np.int32))
    # same_kind (default): float64 -> float32 / bfloat16 fine
    assert jinit.from_checkpoint(path, "f64")(KEY, (2, 2)).dtype == jnp.float32
    assert jinit.from_checkpoint(path, "f64")(KEY, (2, 2), jnp.bfloat16).dtype == jnp.bfloat16
    assert jinit.from_checkpoint(path, "f64", dtype=jnp.float16)(KEY, (2, 2)).dtype == jnp.float16
    # int -> float needs casting="unsafe"
    with pytest.raises(TypeError, match=r"int32 .*float32.*casting='unsafe'"):
        jinit.from_checkpoint(path, "i32")(KEY, (2, 2))
    out = jinit.from_checkpoint(path, "i32", casting="unsafe")(KEY, (2, 2))
    assert out.dtype == jnp.float32 and float(out.sum()) == 4.0
    # safe: no narrowing
    with pytest.raises(TypeError, match="casting='safe'"):
        jinit.from_checkpoint(path, "f64", casting="safe")(KEY, (2, 2), jnp.bfloat16)
    with pytest.raises(TypeError, match="casting='no'"):
        jinit.from_checkpoint(path, "f64", casting="no")(KEY, (2, 2))
    with pytest.raises(ValueError, match="`casting`"):
        jinit.from_checkpoint(path, "f64", casting="sometimes")
    with pytest.raises(ValueError, match="`layout`"):
        jinit.from_checkpoint(path, "f64", layout="tf")


def test_bfloat16_safetensors(tmp_path):
    path = tmp_path / "bf16.safetensors"
    arr = np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)
    _write_safetensors(path, {"w": arr})
    init = jinit.from_checkpoint(path, "w", casting="safe")
    out = init(KEY, (2, 3))  # bf16 -> f32 is value-preserving
    np.testing.assert_array_equal(np.asarray(out), arr.astype(np.float32))
    assert init(KEY, (2, 3), jnp.bfloat16).dtype == jnp.bfloat16


def test_object_arrays_refused_without_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "evil.npz"
    np.savez(path, ok=np.ones(2), obj=np.array([{"a": 1}, None], dtype=object))

    import pickle

    def boom(*args, **kwargs):
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    with pytest.raises(ValueError, match="unpickl"):
        jinit.from_checkpoint(path, "ok")  # the header check covers the whole file
    with pytest.raises(ValueError, match="unpickl"):
        jinit.transfer({"ok": np.zeros(2)}, path)


def test_pickle_formats_refused(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not read")
    with pytest.raises(ValueError, match="never unpickles"):
        jinit.from_checkpoint(path, "w")
    with pytest.raises(FileNotFoundError):
        jinit.from_checkpoint(tmp_path / "nope.npz", "w")


def test_malformed_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    h = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 8)
    with pytest.raises(ValueError, match="data offsets"):
        jinit.from_checkpoint(path, "w")
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(ValueError, match="header length"):
        jinit.from_checkpoint(path, "w")


# --------------------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------------------


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.fc = nnx.Linear(3, 4, rngs=rngs)
        self.conv = nnx.Conv(2, 5, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(5, rngs=rngs)


def test_transfer_torch_names_into_nnx(ckpt, arrays):
    model = _Net(nnx.Rngs(0))
    extra = {
        "conv.bias": np.arange(5, dtype=np.float32),
        "bn.weight": np.full(5, 2.0, np.float32),
        "bn.bias": np.full(5, 0.5, np.float32),
        "bn.running_mean": np.full(5, 0.1, np.float32),
        "bn.running_var": np.full(5, 3.0, np.float32),
        "bn.num_batches_tracked": np.array(7),
        "head.weight": np.zeros((2, 2), np.float32),
    }
    source = {**jinit.data._checkpoint.read_all(ckpt), **extra}
    out, report = jinit.transfer(model, source, layout="torch")
    assert out is model
    assert report.ok
    np.testing.assert_array_equal(np.asarray(model.fc.kernel[...]), arrays["fc.weight"].T)
    np.testing.assert_array_equal(
        np.asarray(model.conv.kernel[...]), arrays["conv.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(np.asarray(model.bn.scale[...]), extra["bn.weight"])
    np.testing.assert_array_equal(np.asarray(model.bn.var[...]), extra["bn.running_var"])
    assert report.copied["fc/kernel"] == "fc.weight"
    assert report.copied["bn/mean"] == "bn.running_mean"
    assert sorted(report.transposed) == ["conv/kernel", "fc/kernel"]
    assert "num_batches_tracked" in report.unused["bn.num_batches_tracked"] or (
        "bookkeeping" in report.unused["bn.num_batches_tracked"]
    )
    assert report.unused["head.weight"] == "no matching target parameter"
    assert report.missing == [] and report.mismatched == {}
    text = str(report)
    assert "fc/kernel <- fc.weight" in text and "[transposed]" in text


def test_transfer_from_path_strict_missing(ckpt):
    model = _Net(nnx.Rngs(0))
    before = np.asarray(model.bn.scale[...]).copy()
    with pytest.raises(ValueError) as e:
        jinit.transfer(model, ckpt, layout="torch")
    msg = str(e.value)
    assert "missing" in msg and "bn/scale" in msg and "conv/bias" in msg
    np.testing.assert_array_equal(np.asarray(model.bn.scale[...]), before)  # untouched
    _, report = jinit.transfer(model, ckpt, layout="torch", strict=False)
    assert set(report.copied) == {"fc/kernel", "fc/bias", "conv/kernel"}
    assert "bn/scale" in report.missing and not report.ok


def test_transfer_shape_mismatch(arrays):
    model = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
    src = {"weight": arrays["fc.weight"].T, "bias": arrays["fc.bias"]}  # already (in, out)
    with pytest.raises(
        ValueError, match=re.escape("(4, 3) after the PyTorch -> JAX transpose, target has (3, 4)")
    ):
        jinit.transfer(model, src, layout="torch")
    _, report = jinit.transfer(model, src, layout="torch", strict=False)
    assert (
        list(report.mismatched) == ["kernel"] and "target has (3, 4)" in report.mismatched["kernel"]
    )
    assert report.copied == {"bias": "bias"}
    # the same arrays under JAX names and layout copy cleanly
    _, report = jinit.transfer(model, {"kernel": src["weight"], "bias": src["bias"]})
    assert report.ok and report.transposed == []


def test_transfer_dtype_mismatch_is_reported():
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    src = {"kernel": np.ones((2, 2), np.int32), "bias": np.zeros(2)}
    with pytest.raises(ValueError, match="dtype int32"):
        jinit.transfer(model, src)
    _, report = jinit.transfer(model, src, casting="unsafe")
    assert report.ok and model.kernel[...].dtype == jnp.float32


def test_transfer_into_linen_variables_and_mapping():
    class M(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Dense(4, name="encoder")(x)
            return nn.Dense(2, name="head")(nn.relu(x))

    x = jnp.ones((1, 3))
    variables = M().init(KEY, x)
    src = {
        "enc.weight": np.ones((4, 3), np.float32),
        "enc.bias": np.zeros(4, np.float32),
        "head.weight": np.full((2, 4), 2.0, np.float32),
        "head.bias": np.ones(2, np.float32),
        "extra": np.zeros(1, np.float32),
    }
    mapping = {"enc.weight": "encoder/kernel", "enc.bias": "encoder/bias", "extra": None}
    new, report = jinit.transfer(variables, src, mapping=mapping, layout="torch")
    assert report.ok and report.unused == {"extra": "mapped to None"}
    assert set(new) == {"params"}
    np.testing.assert_array_equal(np.asarray(new["params"]["encoder"]["kernel"]), np.ones((3, 4)))
    np.testing.assert_array_equal(np.asarray(new["params"]["head"]["kernel"]), np.full((4, 2), 2))
    # the input tree is not modified
    assert not np.array_equal(np.asarray(variables["params"]["head"]["bias"]), np.ones(2))
    # a mapping to a name the target lacks is reported, and strict raises on the gap
    bad = {**mapping, "enc.weight": "encoder/kernal"}
    with pytest.raises(ValueError, match="encoder/kernal"):
        jinit.transfer(variables, src, mapping=bad, layout="torch")
    # a callable mapping sees every name
    _, report = jinit.transfer(
        variables,
        src,
        mapping=lambda n: None if n == "extra" else n.replace("enc.", "encoder."),
        layout="torch",
    )
    assert report.ok


def test_transfer_linen_lists_and_sequential_suffix():
    class M(nn.Module):
        def setup(self):
            self.layers = [nn.Dense(3), nn.Dense(2)]

        def __call__(self, x):
            return self.layers[1](self.layers[0](x))

    variables = M().init(KEY, jnp.ones((1, 2)))
    src = {
        "layers.0.weight": np.ones((3, 2)),
        "layers.0.bias": np.ones(3),
        "layers.1.weight": np.ones((2, 3)),
        "layers.1.bias": np.ones(2),
    }
    _, report = jinit.transfer(variables, src, layout="torch")
    assert report.copied["layers_0/kernel"] == "layers.0.weight" and report.ok

    seq = nnx.Sequential(
        nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(3, 2, rngs=nnx.Rngs(1))
    )
    torch_seq = {
        "0.weight": np.ones((3, 2)),
        "0.bias": np.ones(3),
        "2.weight": np.ones((2, 3)),
        "2.bias": np.ones(2),
    }
    _, report = jinit.transfer(seq, torch_seq, layout="torch")
    assert report.copied["layers/2/kernel"] == "2.weight" and report.ok


def test_transfer_nnx_state_and_pytree_sources():
    a, b = nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.Linear(3, 4, rngs=nnx.Rngs(1))
    state = nnx.state(b)
    new_state, report = jinit.transfer(state, a)  # nnx module as source, state as target
    assert report.ok and isinstance(new_state, nnx.State)
    np.testing.assert_array_equal(np.asarray(new_state["kernel"][...]), np.asarray(a.kernel[...]))
    assert not np.array_equal(np.asarray(b.kernel[...]), np.asarray(a.kernel[...]))  # b untouched
    nested = {"params": {"kernel": np.ones((3, 4)), "bias": np.ones(4)}}  # linen-style source
    _, report = jinit.transfer(b, nested)
    assert report.ok and float(b.kernel[...].sum()) == 12.0


def test_transfer_duplicate_targets_and_bad_inputs():
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="both map to"):
        jinit.transfer(
            model, {"kernel": np.ones((2, 2)), "x": np.ones((2, 2))}, mapping={"x": "kernel"}
        )
    with pytest.raises(TypeError, match="`target`"):
        jinit.transfer([1, 2], {})
    with pytest.raises(TypeError, match="`source`"):
        jinit.transfer(model, 3)
    with pytest.raises(ValueError, match="`layout`"):
        jinit.transfer(model, {}, layout="keras")


def test_from_checkpoint_out_sharding(tmp_path):
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    path = tmp_path / "w.npz"
    np.savez(path, w=np.arange(8.0).reshape(4, 2))
    init = jinit.from_checkpoint(path, "w")
    mesh = jax.make_mesh((1,), ("x",))
    named = NamedSharding(mesh, P("x"))
    out = init(KEY, (4, 2), out_sharding=named)
    assert out.sharding.is_equivalent_to(named, 2)
    with jax.set_mesh(mesh):
        for call in (init, jax.jit(init, static_argnums=(1,), static_argnames="out_sharding")):
            out = call(KEY, (4, 2), out_sharding=P("x"))
            assert out.sharding.is_equivalent_to(named, 2)
            np.testing.assert_array_equal(np.asarray(out), np.arange(8.0).reshape(4, 2))


def test_transfer_keeps_linen_partitioning_boxes():
    class M(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.with_partitioning(nn.initializers.lecun_normal(), (None, "model"))
            return nn.Dense(3, kernel_init=init)(x)

    variables = M().init(KEY, jnp.ones((1, 4)))
    new, report = jinit.transfer(
        variables, {"Dense_0.weight": np.ones((3, 4))}, layout="torch", strict=False
    )
    kernel = new["params"]["Dense_0"]["kernel"]
    assert isinstance(kernel, nn.Partitioned) and kernel.names == (None, "model")
    assert report.copied == {"Dense_0/kernel": "Dense_0.weight"} and report.missing == [
        "Dense_0/bias"
    ]
    np.testing.assert_array_equal(np.asarray(kernel.unbox()), np.ones((4, 3)))
    # and a boxed tree works as a source
    _, report = jinit.transfer(variables, new)
    assert report.ok
