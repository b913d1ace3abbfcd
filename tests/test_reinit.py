"""jinit.reinit: rules by path pattern, path-derived keys, kept dtypes/shardings, errors."""

import contextlib
import hashlib
import io
import os
import re
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx
from flax.core import FrozenDict

import jinit
from tests.conftest import count_compiles
from tests.multidevice import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ref_key(key, path):
    """The documented derivation, written out independently of jinit."""
    digest = hashlib.sha256(path.encode()).digest()
    w0 = np.uint32(int.from_bytes(digest[:4], "big"))
    w1 = np.uint32(int.from_bytes(digest[4:8], "big"))
    return jax.random.fold_in(jax.random.fold_in(key, w0), w1)


def get(tree, path):
    for p in path.split("/"):
        tree = tree[int(p) if isinstance(tree, (list, tuple)) else p]
    return tree


def params_tree():
    ones = jnp.ones
    return {
        "h_0": {"attn": {"out": {"kernel": ones((8, 8))}}, "mlp": {"kernel": ones((8, 16))}},
        "h_1": {"attn": {"out": {"kernel": ones((8, 8))}}, "mlp": {"kernel": ones((8, 16))}},
        "head": {"kernel": ones((8, 4)), "bias": ones((4,))},
    }


RULES = {
    "*/attn/out/kernel": jinit.gpt2_residual_normal(2),
    "head/bias": "zeros",
    "**/kernel": {"name": "normal", "stddev": 0.02},
}


def test_values_equal_direct_calls_with_the_derived_key():
    key = jax.random.key(3)
    new, report = jinit.reinit(params_tree(), RULES, key)
    expected_rule = {
        "h_0/attn/out/kernel": jinit.gpt2_residual_normal(2),
        "h_1/attn/out/kernel": jinit.gpt2_residual_normal(2),
        "h_0/mlp/kernel": jinit.normal(0.02),
        "h_1/mlp/kernel": jinit.normal(0.02),
        "head/kernel": jinit.normal(0.02),
        "head/bias": jinit.zeros,
    }
    for path, init in expected_rule.items():
        old = get(params_tree(), path)
        want = init(ref_key(key, path), old.shape, old.dtype)
        got = get(new, path)
        assert got.dtype == old.dtype and got.shape == old.shape
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=path)
    assert report.kept == []
    assert report.by_rule == {
        "*/attn/out/kernel": ["h_0/attn/out/kernel", "h_1/attn/out/kernel"],
        "head/bias": ["head/bias"],
        "**/kernel": ["h_0/mlp/kernel", "h_1/mlp/kernel", "head/kernel"],
    }
    assert report.initialized["head/kernel"] == "**/kernel"


def test_jax_initializer_callable_matches_its_direct_call():
    key = jax.random.key(0)
    params = {"w": jnp.zeros((6, 5))}
    init = jax.nn.initializers.lecun_normal()
    new, _ = jinit.reinit(params, {"w": init}, key)
    want = init(ref_key(key, "w"), (6, 5), jnp.float32)
    np.testing.assert_allclose(new["w"], want, rtol=1e-6, atol=1e-7)


def test_adding_a_parameter_or_a_rule_never_changes_the_others():
    key = jax.random.key(0)
    rules = {"**/kernel": "he_normal"}
    small = {"a": {"kernel": jnp.zeros((4, 3))}, "c": {"kernel": jnp.zeros((3, 2))}}
    big = {
        "a": {"kernel": jnp.zeros((4, 3))},
        "b": {"kernel": jnp.zeros((4, 3))},  # same shape, new path
        "c": {"kernel": jnp.zeros((3, 2))},
    }
    s, _ = jinit.reinit(small, rules, key)
    b, _ = jinit.reinit(big, rules, key)
    b2, _ = jinit.reinit(big, [("b/kernel", "ones"), ("**/kernel", "he_normal")], key)
    for p in ("a", "c"):
        np.testing.assert_array_equal(s[p]["kernel"], b[p]["kernel"])
        np.testing.assert_array_equal(s[p]["kernel"], b2[p]["kernel"])
    assert not np.array_equal(b["a"]["kernel"], b["b"]["kernel"])  # different paths differ


def test_deterministic_and_key_kinds():
    params = {"w": jnp.zeros((5, 4))}
    a, _ = jinit.reinit(params, {"w": "glorot_uniform"}, jax.random.key(7))
    b, _ = jinit.reinit(params, {"w": "glorot_uniform"}, jax.random.key(7))
    raw, _ = jinit.reinit(params, {"w": "glorot_uniform"}, jax.random.PRNGKey(7))
    other, _ = jinit.reinit(params, {"w": "glorot_uniform"}, jax.random.key(8))
    np.testing.assert_array_equal(a["w"], b["w"])
    np.testing.assert_array_equal(a["w"], raw["w"])
    assert not np.array_equal(a["w"], other["w"])


def test_second_call_with_another_key_does_not_recompile():
    params = {"a": {"kernel": jnp.zeros((5, 3))}, "b": {"kernel": jnp.zeros((3, 2))}}
    rules = {"**/kernel": "lecun_normal"}
    first, _ = jinit.reinit(params, rules, jax.random.key(10))
    with count_compiles() as n:
        second, _ = jinit.reinit(params, rules, jax.random.key(11))
        jax.block_until_ready(second)
    assert n[0] == 0
    want = jinit.lecun_normal()(ref_key(jax.random.key(11), "b/kernel"), (3, 2))
    np.testing.assert_array_equal(second["b"]["kernel"], want)
    assert not np.array_equal(first["b"]["kernel"], second["b"]["kernel"])


def test_unmatched_kept_input_untouched_frozen_stays_frozen():
    params = params_tree()
    before = jax.tree.map(np.asarray, params)
    new, report = jinit.reinit(params, {"head/*": "zeros"}, jax.random.key(0))
    assert new["h_0"]["mlp"]["kernel"] is params["h_0"]["mlp"]["kernel"]
    assert (np.asarray(new["head"]["kernel"]) == 0).all()
    jax.tree.map(np.testing.assert_array_equal, params, before)  # not modified
    assert report.kept == [
        "h_0/attn/out/kernel",
        "h_0/mlp/kernel",
        "h_1/attn/out/kernel",
        "h_1/mlp/kernel",
    ]
    frozen, _ = jinit.reinit(FrozenDict(params), {"head/*": "zeros"}, jax.random.key(0))
    assert isinstance(frozen, FrozenDict) and isinstance(frozen["head"], FrozenDict)
    jax.tree.map(np.testing.assert_array_equal, frozen.unfreeze(), new)


def test_linen_variables_dict_only_params_same_values_as_params_dict():
    model = nn.Sequential([nn.Dense(6), nn.BatchNorm(use_running_average=True), nn.Dense(3)])
    variables = model.init(jax.random.key(0), jnp.ones((2, 4)))
    rules = [("layers_1/*", "ones"), ("**/kernel", "glorot_normal"), ("**/bias", "ones")]
    new_vars, report = jinit.reinit(variables, rules, jax.random.key(1))
    new_params, _ = jinit.reinit(variables["params"], rules, jax.random.key(1))
    jax.tree.map(np.testing.assert_array_equal, new_vars["params"], new_params)
    assert new_vars["batch_stats"] is variables["batch_stats"]
    assert "layers_1/mean" not in report.shapes  # batch statistics are not parameters
    assert sorted(report.by_rule["layers_1/*"]) == ["layers_1/bias", "layers_1/scale"]


def test_glob_and_regex_semantics():
    leaves = [
        "kernel",
        "enc/kernel",
        "enc/layer_0/kernel",
        "enc/layer_1/bias",
        "enc/layer_10/kernel",
        "dec/x/y/kernel",
    ]
    params = {}
    for p in leaves:
        node = params
        *head, last = p.split("/")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = jnp.zeros((2, 2))

    def matched(pattern):
        _, report = jinit.reinit(params, {pattern: "zeros"}, jax.random.key(0))
        return report.by_rule[report_label(pattern)]

    def report_label(pattern):
        return pattern if isinstance(pattern, str) else f"re.compile({pattern.pattern!r})"

    assert matched("**/kernel") == [
        "kernel",
        "enc/kernel",
        "enc/layer_0/kernel",
        "enc/layer_10/kernel",
        "dec/x/y/kernel",
    ]
    assert matched("*/kernel") == ["enc/kernel"]
    assert matched("enc/*/kernel") == ["enc/layer_0/kernel", "enc/layer_10/kernel"]
    assert matched("enc/layer_?/*") == ["enc/layer_0/kernel", "enc/layer_1/bias"]
    assert matched("enc/**") == [p for p in leaves if p.startswith("enc/")]
    assert matched("dec/**/kernel") == ["dec/x/y/kernel"]
    assert matched("kernel") == ["kernel"]  # whole path, not a suffix
    assert matched(re.compile(r"enc/layer_\d+/.*")) == [
        "enc/layer_0/kernel",
        "enc/layer_1/bias",
        "enc/layer_10/kernel",
    ]


def test_regex_uses_fullmatch():
    params = {"enc": {"layer_0": {"kernel": jnp.zeros((2, 2))}}}
    with pytest.raises(ValueError, match="matches no parameter"):
        jinit.reinit(params, {re.compile(r"layer_0/kernel"): "zeros"}, jax.random.key(0))


def test_first_match_wins_and_shadowed_rule_is_an_error():
    params = params_tree()
    new, _ = jinit.reinit(params, [("head/kernel", "ones"), ("**", "zeros")], jax.random.key(0))
    assert (np.asarray(new["head"]["kernel"]) == 1).all()
    assert (np.asarray(new["head"]["bias"]) == 0).all()
    with pytest.raises(ValueError, match=r"'head/kernel' initializes no parameter.*'\*\*'"):
        jinit.reinit(params, [("**", "zeros"), ("head/kernel", "ones")], jax.random.key(0))


def test_none_rule_keeps_and_shields_from_later_rules():
    params = params_tree()
    new, report = jinit.reinit(params, [("h_*/**", None), ("**", "zeros")], jax.random.key(0))
    assert new["h_1"]["mlp"]["kernel"] is params["h_1"]["mlp"]["kernel"]
    assert (np.asarray(new["head"]["kernel"]) == 0).all()
    assert report.initialized == {"head/kernel": "**", "head/bias": "**"}
    assert len(report.by_rule["h_*/**"]) == 4 and report.kept == report.by_rule["h_*/**"]
    lines = str(report).splitlines()
    assert lines[0] == "reinit: 2 of 6 parameters re-initialized by 2 rules; 4 kept"
    assert lines[3].split()[:3] == ["h_*/**", "(keep)", "4"]
    assert len(report.details().splitlines()) == 2 + 2


def test_unmatched_rule_names_rule_and_nearest_paths():
    with pytest.raises(ValueError) as e:
        jinit.reinit(params_tree(), {"*/atn/out/kernel": "zeros"}, jax.random.key(0))
    msg = str(e.value)
    assert "'*/atn/out/kernel' matches no parameter" in msg
    assert "'h_0/attn/out/kernel'" in msg


@pytest.mark.parametrize(
    "spec, exc, match",
    [
        ("he_nromal", ValueError, r"rule 'head/kernel': bad initializer 'he_nromal'.*he_normal"),
        ({"name": "normal", "std": 1.0}, TypeError, r"rule 'head/kernel': bad initializer"),
        ({"stddev": 1.0}, ValueError, r"rule 'head/kernel'.*'name'"),
        (3.0, TypeError, r"rule 'head/kernel'"),
    ],
)
def test_bad_spec_names_the_rule(spec, exc, match):
    with pytest.raises(exc, match=match):
        jinit.reinit(params_tree(), {"head/kernel": spec}, jax.random.key(0))


@pytest.mark.parametrize(
    "path, init, shape",
    [
        ("head/bias", jinit.orthogonal(), (4,)),
        ("head/kernel", jinit.dirac(), (8, 4)),
        ("head/bias", "he_normal", (4,)),
    ],
)
def test_shape_the_initializer_cannot_take(path, init, shape):
    rule = path
    with pytest.raises(ValueError) as e:
        jinit.reinit(params_tree(), {rule: init}, jax.random.key(0))
    msg = str(e.value)
    assert f"rule {rule!r}" in msg and f"parameter {path!r}" in msg and str(shape) in msg


def test_integer_parameter_refused_with_path():
    params = {"w": jnp.zeros((3, 3)), "step": jnp.zeros((), jnp.int32)}
    with pytest.raises(ValueError, match=r"parameter 'step'.*int32"):
        jinit.reinit(params, {"*": "he_normal"}, jax.random.key(0))


def test_callable_wrong_shape_and_dtype_cast():
    params = {"w": jnp.zeros((3, 2), jnp.bfloat16)}
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\) for parameter 'w'"):
        jinit.reinit(params, {"w": lambda k, s, d=None: jnp.zeros((2, 3))}, jax.random.key(0))
    new, _ = jinit.reinit(
        params, {"w": lambda k, s, d=None: jax.random.normal(k, s)}, jax.random.key(0)
    )
    assert new["w"].dtype == jnp.bfloat16
    want = jax.random.normal(ref_key(jax.random.key(0), "w"), (3, 2)).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(new["w"], np.float32), np.asarray(want, np.float32))


def test_dtypes_kept():
    params = {"a": jnp.zeros((4, 4), jnp.bfloat16), "b": jnp.zeros((4, 4), jnp.float16)}
    new, report = jinit.reinit(params, {"*": "he_normal"}, jax.random.key(0))
    assert new["a"].dtype == jnp.bfloat16 and new["b"].dtype == jnp.float16
    want = jinit.he_normal()(ref_key(jax.random.key(0), "a"), (4, 4), jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(new["a"], np.float32), np.asarray(want, np.float32))
    assert report.shapes["a"] == ((4, 4), "bfloat16")


@pytest.mark.parametrize(
    "target, rules, key, exc, match",
    [
        ([1, 2], {"*": "zeros"}, jax.random.key(0), TypeError, "`target` must be"),
        ({"w": jnp.zeros(2)}, "zeros", jax.random.key(0), TypeError, "`rules` must be"),
        ({"w": jnp.zeros(2)}, [("w",)], jax.random.key(0), TypeError, "item 0"),
        ({"w": jnp.zeros(2)}, {1: "zeros"}, jax.random.key(0), TypeError, "got 1 of type int"),
        ({"w": jnp.zeros(2)}, {"a**/w": "zeros"}, jax.random.key(0), ValueError, "whole path"),
        ({"w": jnp.zeros(2)}, {"/w": "zeros"}, jax.random.key(0), ValueError, "empty path"),
        ({"w": jnp.zeros(2)}, {"": "zeros"}, jax.random.key(0), ValueError, "must not be empty"),
        ({"w": jnp.zeros(2)}, {"w": "zeros"}, 0, TypeError, "`key` must be a PRNG key"),
        ({"w": jnp.zeros(2)}, {"w": "zeros"}, np.zeros(2), TypeError, "`key`"),
    ],
)
def test_bad_arguments(target, rules, key, exc, match):
    with pytest.raises(exc, match=match):
        jinit.reinit(target, rules, key)


def test_empty_rules_return_a_copy():
    params = {"w": jnp.ones(2)}
    new, report = jinit.reinit(params, {}, jax.random.key(0))
    assert new == params and new is not params and report.kept == ["w"]


class Block(nnx.Module):
    def __init__(self, rngs):
        self.attn = nnx.Linear(4, 4, rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.layers = nnx.List([nnx.Linear(4, 4, rngs=rngs) for _ in range(2)])


def test_nnx_module_in_place_and_state():
    model = Block(nnx.Rngs(0))
    mean_before = np.asarray(model.norm.mean.get_value())
    untouched = np.asarray(model.attn.kernel.get_value())
    key = jax.random.key(5)
    rules = {"layers/*/kernel": "he_uniform", "**/bias": {"name": "constant", "value": 0.5}}
    state_before = nnx.state(model)
    new_state, report = jinit.reinit(state_before, rules, key)
    assert not (np.asarray(state_before["attn"]["bias"].get_value()) == 0.5).all()  # a copy
    out, report_m = jinit.reinit(model, rules, key)
    assert out is model and report_m.by_rule == report.by_rule
    assert report.by_rule["layers/*/kernel"] == ["layers/0/kernel", "layers/1/kernel"]
    for i in range(2):
        path = f"layers/{i}/kernel"
        want = jinit.he_uniform()(ref_key(key, path), (4, 4))
        np.testing.assert_array_equal(model.layers[i].kernel.get_value(), want)
        np.testing.assert_array_equal(new_state["layers"][i]["kernel"].get_value(), want)
    assert (np.asarray(model.attn.bias.get_value()) == 0.5).all()
    np.testing.assert_array_equal(model.attn.kernel.get_value(), untouched)
    np.testing.assert_array_equal(model.norm.mean.get_value(), mean_before)  # BatchStat kept
    assert "norm/mean" not in report.shapes
    assert isinstance(new_state, nnx.State)
    assert isinstance(new_state["norm"]["mean"], nnx.BatchStat)


def test_nnx_abstract_module_and_under_nnx_jit():
    key = jax.random.key(4)
    abstract = nnx.eval_shape(lambda: nnx.Linear(3, 2, rngs=nnx.Rngs(0)))
    jinit.reinit(abstract, {"kernel": "he_normal", "bias": "zeros"}, key)
    want = jinit.he_normal()(ref_key(key, "kernel"), (3, 2))
    np.testing.assert_array_equal(abstract.kernel.get_value(), want)
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

    @nnx.jit
    def reinit_in_jit(m, k):
        jinit.reinit(m, {"kernel": "he_normal"}, k)

    reinit_in_jit(model, key)
    np.testing.assert_array_equal(model.kernel.get_value(), want)


def test_linen_partitioning_boxes_kept():
    model = nn.Dense(3, kernel_init=nn.with_partitioning(nn.initializers.ones, (None, "model")))
    variables = model.init(jax.random.key(0), jnp.ones((1, 2)))
    new, _ = jinit.reinit(variables, {"kernel": "glorot_normal"}, jax.random.key(1))
    box = new["params"]["kernel"]
    assert isinstance(box, nn.Partitioned) and box.names == (None, "model")
    want = jinit.glorot_normal()(ref_key(jax.random.key(1), "kernel"), (2, 3))
    np.testing.assert_array_equal(box.unbox(), want)


def test_abstract_target_and_under_jit():
    model = nn.Dense(3)
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 2)))
    key = jax.random.key(2)
    new, _ = jinit.reinit(abstract, {"kernel": "he_normal", "bias": "zeros"}, key)
    want = jinit.he_normal()(ref_key(key, "kernel"), (2, 3))
    np.testing.assert_array_equal(new["params"]["kernel"], want)
    concrete = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)
    jitted = jax.jit(lambda v, k: jinit.reinit(v, {"kernel": "he_normal"}, k)[0])(concrete, key)
    np.testing.assert_array_equal(jitted["params"]["kernel"], want)


def test_report_table():
    _, report = jinit.reinit(params_tree(), RULES, jax.random.key(0))
    lines = str(report).splitlines()
    assert lines[0] == "reinit: 6 of 6 parameters re-initialized by 3 rules; 0 kept"
    assert lines[1].split() == ["rule", "initializer", "count", "parameters"]
    assert lines[3].split()[:3] == ["*/attn/out/kernel", "normal()", "2"]  # stddev 0.01
    assert lines[5].split() == [
        "**/kernel",
        "normal(stddev=0.02)",
        "3",
        "h_0/mlp/kernel,",
        "h_1/mlp/kernel,",
        "...",
        "(+1)",
    ]
    assert len(lines) == 2 + 1 + 3  # no kept row
    details = report.details().splitlines()
    assert details[0].split() == ["parameter", "shape", "dtype", "rule", "initializer"]
    row = next(line for line in details if line.startswith("head/bias"))
    assert row.split() == ["head/bias", "(4,)", "float32", "head/bias", "zeros"]
    assert len(details) == 2 + 6
    _, partial = jinit.reinit(params_tree(), {"head/*": "zeros"}, jax.random.key(0))
    assert str(partial).splitlines()[-1].split()[:3] == ["(unmatched)", "(keep)", "4"]


SHARDED = textwrap.dedent(
    """
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P
    import jinit
    mesh = jax.make_mesh((4, 2), ("data", "model"))
    params = {"a": {"kernel": jnp.zeros((16, 8)), "bias": jnp.zeros((8,))},
              "b": {"kernel": jnp.zeros((8, 4), jnp.bfloat16)}}
    specs = {"a": {"kernel": P("data", "model"), "bias": P("model")},
             "b": {"kernel": P(None, "data")}}
    sharded = jax.device_put(params, jax.tree.map(lambda s: NamedSharding(mesh, s), specs))
    rules = {"**/kernel": "he_normal", "**/bias": {"name": "normal", "stddev": 1.0}}
    new, _ = jinit.reinit(sharded, rules, jax.random.key(0))
    ref, _ = jinit.reinit(params, rules, jax.random.key(0))
    for x, r, s in zip(jax.tree.leaves(new), jax.tree.leaves(ref), jax.tree.leaves(sharded)):
        assert x.sharding == s.sharding, (x.sharding, s.sharding)
        assert x.dtype == s.dtype and bool((x == r).all())
    print("OK")
    """
)


@pytest.mark.slow
def test_shardings_kept_on_8_simulated_devices():
    assert run(SHARDED).strip() == "OK"


def readme_blocks():
    """``(code, printed output or None)`` for each python block of the README's reinit part;
    the output is the plain code block right after it, if any."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.find("<!-- reinit subsection -->")
    if start < 0:
        return []
    end = text.find("\n## ", start)
    found = re.findall(r"```python\n(.*?)```\n(?:\n```\n(.*?)```)?", text[start:end], flags=re.S)
    return [(code, out or None) for code, out in found]


@pytest.mark.slow
def test_readme_examples_run():
    blocks = readme_blocks()
    assert blocks, "the README's reinit subsection has no python examples"
    for code, expected in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md (reinit)", "exec"), {})
        if expected is not None:
            assert out.getvalue() == expected
