"""from_checkpoint and transfer: round trips, errors, pickle refusal, reports, strictness."""

from __future__ import annotations

import json
import os
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


def _raw_safetensors(path, header, data: bytes = b"") -> None:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def _entry(**changes):
    """A header with one tensor 'w' (2x2 float32, 16 bytes), with fields changed or dropped."""
    entry = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    entry.update(changes)
    return {"w": {k: v for k, v in entry.items() if v is not _DROP}}


_DROP = object()
_W = "(`w`|'w')"  # the entry, named by the library (`w`) or by jinit ('w')
_TWO = {
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
}
# Each malformed file: (header, data, a pattern the message must contain). The files are read
# by the safetensors library; jinit turns its errors into a ValueError naming the file and,
# where it can be told, the tensor. The hand-written reader this replaced accepted the last
# four groups (duplicates, overlaps, holes, odd __metadata__).
_MALFORMED = {
    "negative dims": (_entry(shape=[-2, -2]), None, f"integer `-2`.*{_W}"),
    "int64 overflow": (_entry(shape=[2**62, 4], data_offsets=[0, 0]), None, f"overflow.*{_W}"),
    "huge dim": (_entry(shape=[2**70]), None, f"floating point.*{_W}"),
    "float dim": (_entry(shape=[2.0, 2]), None, f"floating point `2.0`.*{_W}"),
    "bool dim": (_entry(shape=[True, 4]), None, f"boolean.*{_W}"),
    "None shape": (_entry(shape=None), None, f"null.*{_W}"),
    "string shape": (_entry(shape="4"), None, f'string "4".*{_W}'),
    "no shape": (_entry(shape=_DROP, data_offsets=[0, 4]), None, f"missing field `shape`.*{_W}"),
    "no dtype": (_entry(dtype=_DROP), None, f"missing field `dtype`.*{_W}"),
    "no offsets": (_entry(data_offsets=_DROP), None, f"missing field `data_offsets`.*{_W}"),
    "three offsets": (_entry(data_offsets=[0, 8, 16]), None, f"invalid length 3.*{_W}"),
    "string offsets": (_entry(data_offsets=["0", "16"]), None, f'string "0".*{_W}'),
    "negative offset": (_entry(data_offsets=[-16, 0]), None, f"integer `-16`.*{_W}"),
    "reversed offsets": (_entry(shape=[0], data_offsets=[16, 0]), None, f"offset.*{_W}"),
    "offsets past the end": (_entry(data_offsets=[8, 24]), None, f"offset.*{_W}"),
    "byte count": (_entry(shape=[2, 3]), None, f"invalid shape, data type, or offset.*{_W}"),
    "unknown dtype": (_entry(dtype="F128"), None, "unknown variant `F128`"),
    "entry not an object": ({"w": [1, 2]}, None, f"expected string or map.*{_W}"),
    "header not an object": ([{"w": 1}], None, "invalid type: sequence"),
    "deeply nested": ({"w": json.loads("[" * 50 + "]" * 50)}, None, f"invalid type.*{_W}"),
    "too deep for json": (b"[" * 100_000 + b"]" * 100_000, None, "invalid"),
    "not utf-8": (b"\xff\xfe{}", None, "invalid UTF-8"),
    "bad json": (b'{"w": {"dtype": "F32", "sha', None, "invalid JSON.*EOF"),
    "truncated data": (_entry(), b"\0" * 10, "file not fully covered|offset"),
    "trailing data": (_entry(), b"\0" * 20, "file not fully covered|offset"),
    "duplicate names": (
        b'{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, '
        b'"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}',
        None,
        "names tensor 'w' twice",
    ),
    "overlapping offsets": (
        {**_TWO, "b": {**_TWO["b"], "data_offsets": [0, 8]}},
        b"\0" * 8,
        "invalid offset for tensor `(a|b)`",
    ),
    "hole between tensors": (
        {**_TWO, "b": {**_TWO["b"], "data_offsets": [12, 20]}},
        b"\0" * 20,
        "invalid offset for tensor `(a|b)`",
    ),
    "metadata repeats a key": (
        b'{"__metadata__": {"a": "1", "a": "2"}, '
        b'"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}',
        None,
        "repeats the key 'a'",
    ),
    "metadata not strings": ({"__metadata__": {"a": 1}, **_entry()}, None, "in __metadata__"),
    "metadata a list": ({"__metadata__": [1], **_entry()}, None, "in __metadata__"),
}


@pytest.mark.parametrize("case", list(_MALFORMED))
def test_malformed_safetensors_are_value_errors_naming_file_and_entry(tmp_path, case):
    header, data, match = _MALFORMED[case]
    path = tmp_path / "bad.safetensors"
    _raw_safetensors(path, header, b"\0" * 16 if data is None else data)
    for read in (
        lambda: jinit.from_checkpoint(path, "w"),
        lambda: jinit.tools._checkpoint.read_all(path),
        lambda: jinit.transfer({"w": np.zeros((2, 2))}, path),
    ):
        with pytest.raises(ValueError, match=match) as e:
            read()
        assert "bad.safetensors' is not a valid safetensors file" in str(e.value)
        assert type(e.value) is ValueError  # not the library's SafetensorError


def test_safetensors_header_length_and_short_files(tmp_path):
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"tiny\.safetensors.*header too small"):
        jinit.from_checkpoint(path, "w")
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(ValueError, match=r"tiny\.safetensors.*header too large|invalid"):
        jinit.from_checkpoint(path, "w")


def test_safetensors_metadata_and_empty_tensors_are_fine(tmp_path):
    path = tmp_path / "ok.safetensors"
    _raw_safetensors(
        path,
        {
            "__metadata__": {"format": "pt"},
            **_entry(),
            "e": _entry(shape=[0], data_offsets=[16, 16])["w"],
        },
        b"\0" * 16,
    )
    header = jinit.tools._checkpoint.read_header(path)
    assert list(header) == ["w", "e"]  # file order
    assert header["w"].shape == (2, 2) and header["w"].dtype == np.float32
    out = jinit.tools._checkpoint.read_all(path)
    assert out["w"].shape == (2, 2) and out["e"].shape == (0,)


def test_float8_safetensors_read_without_numpy_support(tmp_path):
    path = tmp_path / "f8.safetensors"
    arr = np.linspace(-2, 2, 8).astype(ml_dtypes.float8_e4m3fn)
    _raw_safetensors(path, {"w": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}},
                     arr.tobytes())  # fmt: skip
    out = jinit.from_checkpoint(path, "w")(KEY, (8,))
    np.testing.assert_array_equal(np.asarray(out), arr.astype(np.float32))


def test_corrupt_npz_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, w=np.arange(1000, dtype=np.float32))
    path.write_bytes(path.read_bytes()[:300])  # truncated: no central directory
    with pytest.raises(ValueError, match=r"cut\.npz' is not a valid \.npz file"):
        jinit.from_checkpoint(path, "w")
    with pytest.raises(ValueError, match=r"cut\.npz' is not a valid \.npz file"):
        jinit.transfer({"w": np.zeros(1000)}, path)


def test_npz_with_corrupt_data_is_a_value_error(tmp_path):
    path = tmp_path / "crc.npz"
    arr = np.arange(1000, dtype=np.float32)
    np.savez(path, w=arr)  # stored uncompressed: the raw bytes are in the file
    raw = bytearray(path.read_bytes())
    i = bytes(raw).index(arr[500:502].tobytes())
    raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    init = jinit.from_checkpoint(path, "w")  # the header is fine; the CRC check is at the end
    with pytest.raises(ValueError, match=r"crc\.npz' is not a valid \.npz file \(array 'w'\)"):
        init(KEY, (1000,))
    with pytest.raises(ValueError, match=r"crc\.npz'.*array 'w'"):
        jinit.tools._checkpoint.read_all(path)


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_rewritten_checkpoint_never_gives_stale_values(tmp_path, fmt):
    path = tmp_path / f"w.{fmt}"

    def write(value: float) -> None:  # same shape and dtype: same file size
        arrays = {"w": np.full((2, 3), value, np.float32)}
        np.savez(path, **arrays) if fmt == "npz" else _write_safetensors(path, arrays)

    write(1.0)
    old = jinit.from_checkpoint(path, "w")
    np.testing.assert_array_equal(jax.jit(old, static_argnums=1)(KEY, (2, 3)), np.ones((2, 3)))
    st = os.stat(path)
    write(2.0)
    # a later write: filesystem timestamps are coarse, so a rewrite within the same tick
    # could keep the mtime; make the time step explicit
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = jinit.from_checkpoint(path, "w")
    twos = np.full((2, 3), 2.0)
    np.testing.assert_array_equal(jax.jit(new, static_argnums=1)(KEY, (2, 3)), twos)
    assert new != old  # not interned into the old one: jax traced it afresh
    np.testing.assert_array_equal(new(KEY, (2, 3)), twos)
    # the old initializer refuses, eagerly and when traced, instead of returning either
    with pytest.raises(ValueError, match="changed since from_checkpoint") as e:
        old(KEY, (2, 3))
    assert f"w.{fmt}" in str(e.value) and "call jinit.from_checkpoint again" in str(e.value)
    with pytest.raises(ValueError, match="changed since from_checkpoint"):
        jax.eval_shape(lambda: old(KEY, (2, 3), jnp.bfloat16))
    os.remove(path)
    with pytest.raises(ValueError, match="can no longer be read"):
        new(KEY, (2, 3))


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
    source = {**jinit.tools._checkpoint.read_all(ckpt), **extra}
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
    assert "bookkeeping buffer" in report.unused["bn.num_batches_tracked"]
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
    for strict in (None, "no", 0):  # a truthy or falsy non-bool must not pick a branch
        with pytest.raises(TypeError, match="`strict` must be a bool"):
            jinit.transfer(model, {}, strict=strict)


@pytest.mark.parametrize("source", [np.array(7), np.int64(7), 7, jnp.array(7)])
def test_scalars_keep_their_shape(tmp_path, source):
    # np.ascontiguousarray turns a 0-d array into shape (1,); found by tests/test_fuzz_tools.py
    params = {"step": jnp.zeros((), jnp.int32), "scale": jnp.ones((), jnp.float32)}
    new, report = jinit.transfer(params, {"step": source, "scale": np.float32(2.0)})
    assert report.ok and new["step"].shape == () and new["scale"].shape == ()
    assert int(new["step"]) == 7 and new["step"].dtype == jnp.int32 and float(new["scale"]) == 2
    np.savez(tmp_path / "s.npz", scale=np.array(2.5, np.float32))
    got = jinit.from_checkpoint(tmp_path / "s.npz", "scale")(jax.random.key(0), ())
    assert got.shape == () and float(got) == 2.5


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


# --------------------------------------------------------------------------------------
# ConvTranspose: PyTorch stores (in, out, *k) and flips the kernel relative to Flax
# --------------------------------------------------------------------------------------


# the values are overwritten by transfer; zeros skip compiling random init for each shape
_ZERO_INIT = {"kernel_init": nnx.initializers.zeros, "bias_init": nnx.initializers.zeros}


def _torch_conv_transpose_1d(x, w, b, stride):
    """PyTorch's ConvTranspose1d (padding=0, dilation=1) by its definition, in NumPy.

    x (n, in, length), w (in, out, k): y[:, o, i * stride + j] += x[:, c, i] * w[c, o, j].
    """
    n, _, length = x.shape
    _, c_out, k = w.shape
    y = np.zeros((n, c_out, (length - 1) * stride + k)) + b[None, :, None]
    for i in range(length):
        for j in range(k):
            y[:, :, i * stride + j] += x[:, :, i] @ w[:, :, j]
    return y


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize(("c_in", "c_out"), [(3, 3), (2, 5)])
def test_transfer_conv_transpose_into_nnx_matches_pytorch_definition(transpose_kernel, c_in, c_out):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((c_in, c_out, 3)).astype(np.float32)  # PyTorch (in, out, k)
    b = rng.standard_normal(c_out).astype(np.float32)
    x = rng.standard_normal((2, c_in, 5)).astype(np.float32)  # NCL

    class Up(nnx.Module):
        def __init__(self, rngs):
            self.up = nnx.ConvTranspose(
                c_in, c_out, 3, strides=2, padding="VALID", transpose_kernel=transpose_kernel,
                **_ZERO_INIT, rngs=rngs,
            )  # fmt: skip

    model, report = jinit.transfer(Up(nnx.Rngs(0)), {"up.weight": w, "up.bias": b}, layout="torch")
    assert report.ok and report.transposed == ["up/kernel"] and report.warnings == {}
    got = np.asarray(model.up(jnp.asarray(x.transpose(0, 2, 1)))).transpose(0, 2, 1)
    np.testing.assert_allclose(got, _torch_conv_transpose_1d(x, w, b, 2), rtol=1e-5, atol=1e-5)


def test_transfer_conv_transpose_into_nnx_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ConvTranspose2d(4, 4, (3, 2), stride=2, dilation=2),
    )
    model = nnx.Sequential(
        nnx.Conv(3, 4, (3, 3), padding="VALID", **_ZERO_INIT, rngs=nnx.Rngs(0)),
        nnx.ConvTranspose(
            4,
            4,
            (3, 2),
            strides=2,
            kernel_dilation=2,
            padding="VALID",
            **_ZERO_INIT,
            rngs=nnx.Rngs(0),
        ),
    )
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    _, report = jinit.transfer(model, state, layout="torch")
    assert report.ok and sorted(report.transposed) == ["layers/0/kernel", "layers/1/kernel"]
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(model(jnp.asarray(x.transpose(0, 2, 3, 1))))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_transfer_conv_transpose_without_module_types_is_not_guessed():
    class Dec(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(4, (3, 3), padding="VALID")(x)  # Conv_0: (3, 3, 3, 4)
            x = nn.ConvTranspose(4, (3, 3), padding="VALID")(x)  # ConvTranspose_0: (3, 3, 4, 4)
            x = nn.ConvTranspose(4, (3, 3), name="up")(x)  # named: (3, 3, 4, 4)
            return nn.ConvTranspose(2, (3, 3), name="out")(x)  # named: (3, 3, 4, 2)

    shapes = jax.eval_shape(Dec().init, KEY, jnp.ones((1, 8, 8, 3)))  # no conv compiled
    variables = jax.tree.map(lambda a: np.full(a.shape, 7.0, a.dtype), shapes)
    rng = np.random.default_rng(0)
    src = {
        "Conv_0.weight": rng.standard_normal((4, 3, 3, 3)),  # PyTorch Conv (out, in, *k)
        "ConvTranspose_0.weight": rng.standard_normal((4, 4, 3, 3)),  # (in, out, *k)
        "up.weight": rng.standard_normal((4, 4, 3, 3)),
        "out.weight": rng.standard_normal((4, 2, 3, 3)),
    }
    new, report = jinit.transfer(variables, src, layout="torch", strict=False)
    # linen's automatic name says ConvTranspose: refused, neither transposed nor copied
    reason = report.mismatched["ConvTranspose_0/kernel"]
    assert "not transposed" in reason and "nnx" in reason
    assert "ConvTranspose_0/kernel" not in report.copied
    assert "ConvTranspose_0/kernel" not in report.transposed
    np.testing.assert_array_equal(
        np.asarray(new["params"]["ConvTranspose_0"]["kernel"]),
        np.asarray(variables["params"]["ConvTranspose_0"]["kernel"]),
    )
    # a square kernel under another name passes the shape check: copied, with a warning
    assert (
        report.copied["up/kernel"] == "up.weight"
        and "ConvTranspose" in report.warnings["up/kernel"]
    )
    assert "warning    up/kernel" in str(report)
    # a non-square one fails the shape check, with a hint
    assert "ConvTranspose weight?" in report.mismatched["out/kernel"]
    # a non-square Conv kernel is copied without a warning
    assert (
        report.copied["Conv_0/kernel"] == "Conv_0.weight" and "Conv_0/kernel" not in report.warnings
    )
    with pytest.raises(ValueError, match="ConvTranspose_0/kernel"):
        jinit.transfer(variables, src, layout="torch")
