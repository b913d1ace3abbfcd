"""Checkpoints people have (issue 10): sharded safetensors, orbax, hostile .npz files, the
casting policy's value checks, rewrites after the factory call, `mapping` kinds, README."""

from __future__ import annotations

import json
import os
import pathlib
import re
import struct
import sys
import textwrap
import tracemalloc
import zipfile

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from jinit.tools import _checkpoint
from tests.multidevice import run_json

KEY = jax.random.key(0)
ROOT = pathlib.Path(__file__).resolve().parents[1]
safetensors_numpy = pytest.importorskip("safetensors.numpy")
ocp = pytest.importorskip("orbax.checkpoint")


# --------------------------------------------------------------------------------------
# Casting: a value that does not fit the target dtype is an error, not a wrap or an inf
# --------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    ("stored", "requested", "shown"),
    [
        (np.array([1, 2**62 + 5], np.int64), jnp.int32, str(2**62 + 5)),
        (np.array([-(2**40), 0], np.int64), jnp.int16, str(-(2**40))),
        (np.array([1.0, 1e300], np.float64), jnp.float32, "1e+300"),
        (np.array([7e4, 1.0], np.float32), jnp.float16, "70000.0"),
        (np.array([1.0, -3.4e38], np.float32), jnp.bfloat16, "-3.4e+38"),
    ],
)
def test_default_casting_refuses_values_that_do_not_fit(tmp_path, stored, requested, shown):
    path = tmp_path / "w.npz"
    np.savez(path, big=stored)
    if jnp.issubdtype(requested, jnp.floating):  # initializers make float arrays only
        init = jinit.from_checkpoint(path, "big")
        with pytest.raises(ValueError, match=r"parameter 'big'.*" + re.escape(shown)) as e:
            init(KEY, (2,), requested)
        assert "w.npz" in str(e.value) and "casting='unsafe'" in str(e.value)
        out = jinit.from_checkpoint(path, "big", casting="unsafe")(KEY, (2,), requested)
        np.testing.assert_array_equal(np.asarray(out), stored.astype(requested))
    # transfer reports it as mismatched (strict raises), naming the source
    target = {"big": jnp.zeros((2,), requested)}
    with pytest.raises(ValueError, match=r"source 'big'.*" + re.escape(shown)):
        jinit.transfer(target, path)
    _, report = jinit.transfer(target, path, strict=False)
    assert "big" in report.mismatched and report.copied == {}
    # casting="unsafe" keeps NumPy's conversion, on request
    new, report = jinit.transfer(target, path, casting="unsafe")
    np.testing.assert_array_equal(np.asarray(new["big"]), stored.astype(requested))


def test_values_that_fit_are_cast(tmp_path):
    path = tmp_path / "w.npz"
    ints = np.array([-(2**31), 2**31 - 1], np.int64)
    floats = np.array([1e-300, 3e38, np.inf, -np.inf, np.nan])  # tiny -> 0; inf stays inf
    np.savez(path, ints=ints, floats=floats)
    new, _ = jinit.transfer({"ints": jnp.zeros(2, jnp.int32)}, path, strict=False)
    np.testing.assert_array_equal(np.asarray(new["ints"]), ints)
    out = jinit.from_checkpoint(path, "floats")(KEY, (5,))
    np.testing.assert_array_equal(np.asarray(out), floats.astype(np.float32))


# --------------------------------------------------------------------------------------
# from_checkpoint stands for the content at factory time
# --------------------------------------------------------------------------------------


def _save(path, fmt, value):
    arrays = {"w": np.full((2, 3), value, np.float32)}
    if fmt == "npz":
        np.savez(path, **arrays)
    else:
        safetensors_numpy.save_file(arrays, str(path))


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_same_size_rewrite_with_restored_mtime_is_detected(tmp_path, fmt):
    path = tmp_path / f"w.{fmt}"
    _save(path, fmt, 1.0)
    old = jinit.from_checkpoint(path, "w")
    st = os.stat(path)
    _save(path, fmt, 2.0)  # same size; within one timestamp tick or with the mtime restored
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ValueError, match=r"changed since from_checkpoint.*content differs"):
        old(KEY, (2, 3))
    with pytest.raises(ValueError, match="changed since from_checkpoint"):
        jax.jit(old, static_argnums=1)(KEY, (2, 3))
    new = jinit.from_checkpoint(path, "w")
    assert new != old
    np.testing.assert_array_equal(np.asarray(new(KEY, (2, 3))), np.full((2, 3), 2.0))
    _save(path, fmt, 1.0)  # the old content back: the old initializer is right again
    np.testing.assert_array_equal(np.asarray(old(KEY, (2, 3))), np.ones((2, 3)))
    assert old == jinit.from_checkpoint(path, "w")


# --------------------------------------------------------------------------------------
# transfer(mapping=...) kinds
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mapping",
    [{"kernel": 5}, {5: "kernel"}, {"kernel": ["kernel"]}, ["kernel"], "kernel", 3],
    ids=["int value", "int key", "list value", "list", "str", "int"],
)
def test_mapping_of_the_wrong_kind_is_a_type_error(mapping):
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    src = {"kernel": np.ones((2, 2)), "bias": np.ones(2)}
    with pytest.raises(TypeError, match="`mapping`"):
        jinit.transfer(model, src, mapping=mapping)
    with pytest.raises(TypeError, match=r"`mapping` must return.*returned 5 \(int\)"):
        jinit.transfer(model, src, mapping=lambda name: 5)


# --------------------------------------------------------------------------------------
# .npz: the header is checked against the member and the request before reading
# --------------------------------------------------------------------------------------


def _npy_header(shape, descr="<f4") -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    header = text.encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_npz_header_claiming_2_40_elements_is_refused_before_allocating(tmp_path):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", _npy_header((2**40,)) + b"\0" * 64)
    with pytest.raises(
        ValueError, match=r"liar\.npz.*\(array 'w'\).*declares shape \(1099511627776"
    ):
        jinit.from_checkpoint(path, "w")
    with pytest.raises(ValueError, match=r"liar\.npz.*array 'w'"):
        jinit.transfer({"w": np.zeros(2)}, path)


def test_npz_deflate_bomb_is_not_inflated_for_a_wrong_request(tmp_path):
    path = tmp_path / "bomb.npz"
    n = 2**26  # 256 MiB of float32 zeros, about 250 KiB deflated
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as f:
            f.write(_npy_header((n,)))
            chunk = bytes(2**22)
            for _ in range(n * 4 // len(chunk)):
                f.write(chunk)
    assert os.path.getsize(path) < 2**21
    tracemalloc.start()
    try:
        init = jinit.from_checkpoint(path, "w")  # fingerprints the stored (deflated) bytes
        with pytest.raises(
            ValueError, match=r"shape \(67108864,\), but shape \(4,\) was requested"
        ):
            init(KEY, (4,))
        _, report = jinit.transfer({"w": np.zeros(4, np.float32)}, path, strict=False)
        assert "target has (4,)" in report.mismatched["w"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def _patch_zip(path, *, flag=None, method=None):
    """Sets the general-purpose flag / compression method of every member, in both headers."""
    raw = bytearray(path.read_bytes())
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = raw.find(sig)
        while i != -1:
            if flag is not None:
                raw[i + flag_at : i + flag_at + 2] = struct.pack("<H", flag)
            if method is not None:
                raw[i + method_at : i + method_at + 2] = struct.pack("<H", method)
            i = raw.find(sig, i + 4)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("encrypted", "encrypted"),
        ("unknown method", "compression method 99"),
        ("lzma", "compression method 14"),
        ("corrupt deflate", "deflate|CRC|corrupt|Error"),
        ("truncated", "not a valid .npz|File is not a zip"),
        ("not npy", "not a .npy array"),
        ("bad npy header", "not a Python literal|header"),
    ],
)
def test_malformed_npz_members_are_value_errors_naming_file_and_entry(tmp_path, case, match):
    path = tmp_path / "bad.npz"
    arr = np.arange(2000, dtype=np.float32)
    if case == "lzma":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_LZMA) as zf:
            with zf.open("w.npy", "w") as f:
                np.lib.format.write_array(f, arr)
    elif case == "not npy":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("w.npy", b"plain text, no magic")
    elif case == "bad npy header":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("w.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4 }\n")
    else:
        np.savez_compressed(path, w=arr)
    if case == "encrypted":
        _patch_zip(path, flag=0x1)
    elif case == "unknown method":
        _patch_zip(path, method=99)
    elif case == "corrupt deflate":
        raw = bytearray(path.read_bytes())
        start = raw.find(b"w.npy") + 5
        raw[start + 40 : start + 80] = os.urandom(40)
        path.write_bytes(bytes(raw))
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[:200])

    def calls():
        init = jinit.from_checkpoint(path, "w")
        init(KEY, (2000,))

    for call in (calls, lambda: jinit.transfer({"w": np.zeros(2000, np.float32)}, path)):
        with pytest.raises(ValueError, match=match) as e:
            call()
        assert type(e.value) is ValueError and "bad.npz" in str(e.value)
        if case != "truncated":  # a zip without a central directory has no entries
            assert "array 'w'" in str(e.value)


# --------------------------------------------------------------------------------------
# Sharded safetensors (model.safetensors.index.json + shards)
# --------------------------------------------------------------------------------------


def _torch_mlp_state(rng):
    return {
        "fc1.weight": rng.standard_normal((8, 4)).astype(np.float32),
        "fc1.bias": rng.standard_normal(8).astype(np.float32),
        "fc2.weight": rng.standard_normal((3, 8)).astype(np.float32),
        "fc2.bias": rng.standard_normal(3).astype(np.float32),
    }


def _write_sharded(folder, arrays, shards=2):
    folder.mkdir(exist_ok=True)
    names = list(arrays)
    weight_map = {}
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: arrays[n] for n in names[i::shards]}
        safetensors_numpy.save_file(part, str(folder / shard))
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder / "model.safetensors.index.json"


class _MLP(nnx.Module):
    def __init__(self, rngs):
        self.fc1 = nnx.Linear(4, 8, rngs=rngs)
        self.fc2 = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.fc2(nnx.relu(self.fc1(x)))


class _LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3, name="fc2")(nn.relu(nn.Dense(8, name="fc1")(x)))


def _torch_mlp(state, x):
    h = np.maximum(x @ state["fc1.weight"].T + state["fc1.bias"], 0)
    return h @ state["fc2.weight"].T + state["fc2.bias"]


def test_sharded_safetensors_folder_and_index(tmp_path):
    state = _torch_mlp_state(np.random.default_rng(0))
    index = _write_sharded(tmp_path / "ckpt", state)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    for source in (index, tmp_path / "ckpt"):
        model, report = jinit.transfer(_MLP(nnx.Rngs(0)), source, layout="torch")
        assert report.ok and sorted(report.transposed) == ["fc1/kernel", "fc2/kernel"]
        assert "sharded safetensors" in report.source
        np.testing.assert_allclose(np.asarray(model(x)), _torch_mlp(state, x), rtol=1e-5)
        variables = _LinenMLP().init(KEY, x)
        new, report = jinit.transfer(variables, source, layout="torch")
        assert report.ok
        np.testing.assert_allclose(_LinenMLP().apply(new, x), _torch_mlp(state, x), rtol=1e-5)
        w = jinit.from_checkpoint(source, "fc2.weight", layout="torch")(KEY, (8, 3))
        np.testing.assert_array_equal(np.asarray(w), state["fc2.weight"].T)
    weight_map = json.loads(index.read_text())["weight_map"]
    assert list(_checkpoint.read_header(index)) == list(weight_map)  # the index's order


def test_sharded_safetensors_errors(tmp_path):
    state = _torch_mlp_state(np.random.default_rng(0))
    index = _write_sharded(tmp_path / "ckpt", state)
    good = json.loads(index.read_text())

    def write(doc):
        index.write_text(doc if isinstance(doc, str) else json.dumps(doc))

    write({**good, "weight_map": {**good["weight_map"], "fc3.weight": "model-00009.safetensors"}})
    with pytest.raises(ValueError, match=r"missing.*'model-00009\.safetensors'.*'fc3\.weight'"):
        jinit.from_checkpoint(index, "fc1.weight")
    write({**good, "weight_map": {**good["weight_map"], "fc3.weight": "model-00001-of-00002.safetensors"}})  # fmt: skip
    with pytest.raises(ValueError, match=r"tensor 'fc3\.weight' in 'model-00001.*no such tensor"):
        jinit.transfer(_MLP(nnx.Rngs(0)), tmp_path / "ckpt", layout="torch")
    write({**good, "weight_map": {"fc1.weight": "../model-00001-of-00002.safetensors"}})
    with pytest.raises(ValueError, match="plain file names"):
        jinit.from_checkpoint(index, "fc1.weight")
    write('{"weight_map": {"fc1.weight": ')
    with pytest.raises(ValueError, match=r"index\.json' is not a valid sharded safetensors index"):
        jinit.from_checkpoint(tmp_path / "ckpt", "fc1.weight")
    write({"weight_map": ["fc1.weight"]})
    with pytest.raises(ValueError, match="weight_map"):
        jinit.from_checkpoint(index, "fc1.weight")
    write(good)
    with pytest.raises(KeyError, match=r"'fc1\.weight'"):
        jinit.from_checkpoint(index, "fc9.weight")


# --------------------------------------------------------------------------------------
# Orbax checkpoints
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orbax_ckpts(tmp_path_factory):
    """One nnx.State, one linen TrainState-like tree and one CheckpointManager (2 steps)."""
    root = tmp_path_factory.mktemp("orbax")
    x = jnp.ones((2, 4))
    nnx_src = _MLP(nnx.Rngs(3))
    linen_src = _LinenMLP().init(jax.random.key(3), x)
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(root / "nnx", nnx.state(nnx_src))
    tree = {"params": linen_src["params"], "step": np.int64(7)}
    ckptr.save(root / "linen", tree)
    ckptr.wait_until_finished()
    ocp.PyTreeCheckpointer().save(root / "pytree", {"emb": {"table": np.eye(3, dtype=np.float64)}})
    with ocp.CheckpointManager(root / "manager") as mgr:
        for step in (1, 5):
            scaled = jax.tree.map(lambda a, s=step: a * s, nnx.state(nnx_src))
            mgr.save(step, args=ocp.args.StandardSave(scaled))
        mgr.wait_until_finished()
    return root, nnx_src, linen_src


def test_orbax_into_nnx_and_linen_without_pickle(orbax_ckpts, monkeypatch):
    import pickle

    def boom(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    root, nnx_src, linen_src = orbax_ckpts
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    # nnx checkpoint -> nnx model; linen checkpoint -> linen variables and nnx model
    model, report = jinit.transfer(_MLP(nnx.Rngs(0)), root / "nnx")
    assert report.ok and report.copied["fc1/kernel"] == "fc1/kernel"
    assert report.source.startswith("orbax checkpoint")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(nnx_src(x)))
    fresh = _LinenMLP().init(KEY, x)
    new, report = jinit.transfer(fresh, root / "linen")
    assert report.ok and report.unused == {"step": "no matching target parameter"}
    np.testing.assert_array_equal(_LinenMLP().apply(new, x), _LinenMLP().apply(linen_src, x))
    model, report = jinit.transfer(_MLP(nnx.Rngs(0)), root / "linen")
    assert report.ok
    np.testing.assert_array_equal(np.asarray(model(x)), _LinenMLP().apply(linen_src, x))
    # from_checkpoint names are the tree paths
    init = jinit.from_checkpoint(root / "linen", "params/fc1/kernel")
    np.testing.assert_array_equal(
        np.asarray(init(KEY, (4, 8))), np.asarray(linen_src["params"]["fc1"]["kernel"])
    )
    with pytest.raises(KeyError, match="'params/fc1/kernel'"):
        jinit.from_checkpoint(root / "linen", "fc1/kernal")
    # PyTreeCheckpointer output; float64 -> float32 under the default casting
    table = jinit.from_checkpoint(root / "pytree", "emb/table")(KEY, (3, 3))
    assert table.dtype == jnp.float32 and bool((table == jnp.eye(3)).all())


def test_orbax_checkpoint_manager_reads_latest_step_and_says_so(orbax_ckpts):
    root, nnx_src, _ = orbax_ckpts
    model, report = jinit.transfer(_MLP(nnx.Rngs(0)), root / "manager")
    assert report.ok and "latest of steps 1, 5" in report.source and "/5/" in report.source
    np.testing.assert_allclose(
        np.asarray(model.fc1.kernel[...]), 5 * np.asarray(nnx_src.fc1.kernel[...]), rtol=1e-6
    )
    init = jinit.from_checkpoint(root / "manager" / "1", "fc2/bias")  # a step folder
    np.testing.assert_array_equal(np.asarray(init(KEY, (3,))), np.asarray(nnx_src.fc2.bias[...]))


def test_orbax_shape_mismatch_and_broken_folder(orbax_ckpts, tmp_path):
    root, _, _ = orbax_ckpts
    small = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="target has"):
        jinit.transfer(small, root / "nnx", mapping={"fc1/kernel": "kernel", "fc1/bias": "bias"})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "_METADATA").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken' is not a readable orbax checkpoint"):
        jinit.transfer(small, broken)
    with pytest.raises(ValueError, match="Unsupported checkpoint folder"):
        jinit.from_checkpoint(tmp_path, "w")


def test_orbax_restores_into_the_target_sharding_on_8_devices():
    """A sharded target on 8 simulated CPU devices (subprocess)."""
    result = run_json(ROOT / "tests" / "checkpoint_worker.py")
    assert result["devices"] == 8
    for case in ("nnx", "linen", "from_checkpoint"):
        assert result[case]["equal"], case
        assert result[case]["same_sharding"], (case, result[case])
    # orbax was asked for the target's shardings: each device restores its own shard
    assert result["nnx"]["requested"] == ["NamedSharding", "NamedSharding"]
    assert result["linen"]["requested"] == ["NamedSharding", "NamedSharding"]


# --------------------------------------------------------------------------------------
# README: the code blocks of "Pretrained and transfer init" run as written
# --------------------------------------------------------------------------------------


def _readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("### Pretrained and transfer init")
    end = text.index("\n## ", start) if "\n## " in text[start:] else len(text)
    nxt = text.find("\n### ", start + 10)
    end = min(end, nxt) if nxt != -1 else end
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def test_readme_checkpoint_examples_run(tmp_path, monkeypatch):
    blocks = _readme_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    for block in blocks:  # each block on its own: imports included
        exec(compile(textwrap.dedent(block), "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize(
    ("module", "path", "package"),
    [("safetensors", "w.safetensors", "safetensors"), ("orbax", "ckpt", "orbax-checkpoint")],
)
def test_missing_optional_package_names_the_extra(tmp_path, monkeypatch, module, path, package):
    if module == "safetensors":
        safetensors_numpy.save_file({"w": np.ones(2, np.float32)}, str(tmp_path / path))
    else:
        (tmp_path / path).mkdir()
        (tmp_path / path / "_METADATA").write_text("{}")
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "orbax.checkpoint", None)
    with pytest.raises(ImportError, match=rf"`{package}`.*jinit\[checkpoints\]"):
        jinit.from_checkpoint(tmp_path / path, "w")


def test_damaged_files_only_raise_value_key_or_type_errors(tmp_path):
    """Byte flips, truncations and insertions (fixed seed): never a foreign exception."""
    import random

    rng = np.random.default_rng(0)
    arrays = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": np.arange(5)}
    originals = {}
    for ext, save in [
        ("npz", lambda p: np.savez(p, **arrays)),
        ("z.npz", lambda p: np.savez_compressed(p, **arrays)),
        ("safetensors", lambda p: safetensors_numpy.save_file(arrays, str(p))),
    ]:
        path = tmp_path / f"orig.{ext}"
        save(path)
        originals[ext] = path.read_bytes()
    r = random.Random(0)
    for trial in range(150):
        ext = r.choice(list(originals))
        data = bytearray(originals[ext])
        op = r.random()
        if op < 0.5:
            for _ in range(r.randint(1, 4)):
                data[r.randrange(len(data))] = r.randrange(256)
        elif op < 0.75:
            del data[r.randrange(len(data)) :]
        else:
            i = r.randrange(len(data))
            data[i:i] = bytes(r.randrange(256) for _ in range(r.randint(1, 20)))
        path = tmp_path / f"damaged{trial}.{ext}"
        path.write_bytes(bytes(data))
        for name in ("a", "b"):
            try:
                init = jinit.from_checkpoint(path, name, casting="unsafe")
                init(KEY, arrays[name].shape)
                _checkpoint.read_all(path)
            except (ValueError, KeyError, TypeError):
                pass
