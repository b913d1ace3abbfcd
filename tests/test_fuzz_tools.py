"""Property-based fuzzing of the model tools' arguments (hypothesis).

The same contract as ``tests/test_fuzz.py`` for the initializers, here for
``jinit.reinit``, ``jinit.fast_init``, ``jinit.transfer`` and ``jinit.lsuv``: whatever a
user passes, the call either gives a well-formed result or raises ``ValueError`` /
``TypeError``, never another exception from deep inside jax or Flax. Where a call succeeds,
the result is checked against what the arguments ask for (shapes, dtypes, which parameters
changed, unit output variance).

Small by default (``JINIT_FUZZ_EXAMPLES`` examples per test, 10 unless set, deterministic).
"""

from __future__ import annotations

import math
import os
import re
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import event, given
from hypothesis import strategies as st

import jinit
from tests.test_fuzz import ANY_VALUE, FUZZ

pytestmark = pytest.mark.filterwarnings("ignore")
JINIT_DIR = os.path.dirname(jinit.__file__)


def mostly(valid, invalid):
    """Valid values three times in four, so that most examples reach the computation."""
    return st.integers(0, 3).flatmap(lambda i: valid if i else invalid)


PARAMS = {
    "enc": {"dense": {"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3)}},
    "head": {"kernel": jnp.ones((3, 2), jnp.bfloat16), "bias": jnp.zeros(2, jnp.bfloat16)},
    "step": jnp.zeros((), jnp.int32),
}
PATHS = ["enc/dense/kernel", "enc/dense/bias", "head/kernel", "head/bias", "step"]

# Patterns: real paths, globs over them, regexes (valid or not) and junk.
PATTERNS = mostly(
    st.one_of(
        st.sampled_from(PATHS),
        st.sampled_from(["**", "**/kernel", "*/kernel", "enc/**", "*/*/bias", "h?ad/*", "**/x"]),
        st.lists(st.sampled_from(["enc", "head", "dense", "*", "**", "?", "kernel", "bias", ""]))
        .filter(bool)
        .map("/".join),
        st.sampled_from([r".*kernel", r"head/(kernel|bias)", r"enc/.*"]).map(re.compile),
    ),
    st.one_of(st.just("("), st.text(max_size=8), ANY_VALUE),
)
SPECS = mostly(
    st.sampled_from(
        [
            *("zeros", "ones", "he_normal", "orthogonal", "torch.linear_default", None),
            {"name": "normal", "stddev": 0.5},
            jinit.normal(0.1),
            jax.nn.initializers.lecun_normal(),
        ]
    ),
    st.one_of(
        st.sampled_from(["nope", {"name": "normal", "stddev": -1.0}, jinit.dirac()]), ANY_VALUE
    ),
)
RULES = mostly(
    st.dictionaries(PATTERNS.filter(lambda p: isinstance(p, (str, re.Pattern))), SPECS, max_size=3)
    | st.lists(st.tuples(PATTERNS, SPECS), max_size=3),
    ANY_VALUE,
)
KEYS = mostly(
    st.sampled_from([jax.random.key(0), jax.random.PRNGKey(1)]),
    st.sampled_from([0, None, "k", np.zeros(2)]),
)


def _outcome(fn, *args, allowed=(ValueError, TypeError), **kwargs):
    """Runs ``fn``; an ``allowed`` error is a valid answer, anything else fails."""
    try:
        result = fn(*args, **kwargs)
    except allowed as e:
        # raised by jinit's own checks, not by jax or Flax deep inside the call
        innermost = traceback.extract_tb(e.__traceback__)[-1].filename
        assert innermost.startswith(JINIT_DIR), (repr(e), innermost)
        event(f"refused: {type(e).__name__}")
        return None
    event("accepted")
    return result


def _paths(tree) -> dict[str, jax.Array]:
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf for path, leaf in leaves}


@FUZZ
@given(rules=RULES, key=KEYS)
def test_reinit_any_rules_and_key(rules, key):
    out = _outcome(jinit.reinit, PARAMS, rules, key)
    if out is None:
        return
    new, report = out
    old_leaves, new_leaves = _paths(PARAMS), _paths(new)
    assert old_leaves.keys() == new_leaves.keys()
    changed = {
        p
        for rule, rule_paths in report.by_rule.items()
        if report.initializers[rule] is not None  # a None rule keeps its parameters
        for p in rule_paths
    }
    assert changed.isdisjoint(report.kept)
    assert changed | set(report.kept) == set(PATHS)
    for path in PATHS:
        a, b = old_leaves[path], new_leaves[path]
        assert (a.shape, a.dtype) == (b.shape, b.dtype), path
        if path in report.kept:
            assert b is a, path
        else:
            assert np.isfinite(np.asarray(b, np.float32)).all(), path


@FUZZ
@given(
    chunk_bytes=mostly(st.integers(1, 2**40), ANY_VALUE),
    fn=mostly(st.sampled_from(["fn", "Model"]), st.sampled_from([None, 3, "not callable"])),
)
def test_fast_init_any_arguments(chunk_bytes, fn):
    def init(key):
        k1, k2 = jax.random.split(key)
        return {"a": jinit.he_normal()(k1, (8, 4)), "b": jax.random.normal(k2, (8, 4))}

    target = {"fn": init, "Model": nnx.Linear}.get(fn, fn)
    wrapped = _outcome(jinit.fast_init, target, chunk_bytes=chunk_bytes)
    if wrapped is None:
        return
    assert isinstance(chunk_bytes, (int, np.integer)) and chunk_bytes > 0
    if fn == "Model":
        model = wrapped(3, 2, rngs=nnx.Rngs(0))
        want = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        np.testing.assert_array_equal(model.kernel[...], want.kernel[...])
    else:
        got, want = wrapped(jax.random.key(3)), jax.jit(init)(jax.random.key(3))
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


SOURCES = mostly(
    st.sampled_from(
        [
            {"enc.dense.kernel": np.full((4, 3), 2.0, np.float32)},
            {"head/kernel": np.full((3, 2), 3.0, np.float32), "step": np.ones((), np.int64)},
        ]
    ),
    st.one_of(
        st.sampled_from(
            [
                {"head/kernel": np.zeros((2, 3), np.float32)},  # wrong shape
                {"head/kernel": np.zeros((3, 2), np.complex64)},  # cannot cast
                {"other": np.zeros(1)},
            ]
        ),
        ANY_VALUE,
    ),
)


@FUZZ
@given(
    source=SOURCES,
    strict=mostly(st.booleans(), st.sampled_from([None, 1, "yes"])),
    layout=mostly(st.sampled_from(["jax", "torch"]), st.sampled_from(["keras", None, 1])),
    casting=mostly(st.sampled_from(["same_kind", "unsafe"]), st.sampled_from(["no", "x", 0])),
)
def test_transfer_any_source_and_options(source, strict, layout, casting):
    # A string source is a checkpoint path: a missing file is FileNotFoundError.
    allowed = (ValueError, TypeError, FileNotFoundError)
    out = _outcome(
        jinit.transfer,
        PARAMS,
        source,
        strict=strict,
        layout=layout,
        casting=casting,
        allowed=allowed,
    )
    if out is None:
        return
    assert isinstance(strict, bool)
    new, report = out
    old_leaves, new_leaves = _paths(PARAMS), _paths(new)
    for path in PATHS:
        a, b = old_leaves[path], new_leaves[path]
        assert (a.shape, a.dtype) == (b.shape, b.dtype), path
        if path in report.copied:  # the source's values, in the target's layout and dtype
            want = np.asarray(source[report.copied[path]])
            want = want.T if path in report.transposed else want
            np.testing.assert_array_equal(np.asarray(b), want.astype(b.dtype), err_msg=path)
        else:
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=path)


class _MLP(nnx.Module):
    def __init__(self, rngs):
        self.a = nnx.Linear(16, 32, rngs=rngs)
        self.b = nnx.Linear(32, 8, rngs=rngs)

    def __call__(self, x):
        return self.b(jnp.tanh(self.a(x)))


X = jax.random.normal(jax.random.key(5), (64, 16))


@FUZZ
@given(
    tol=mostly(
        st.floats(1e-3, 0.5), st.sampled_from([0.0, -1.0, math.nan, math.inf, "0.1"]) | ANY_VALUE
    ),
    max_iters=mostly(st.integers(0, 20), st.sampled_from([-2, 2.5, True]) | ANY_VALUE),
    preinit=mostly(st.booleans(), st.sampled_from([0, "yes", None])),
    key=KEYS,
)
def test_lsuv_any_options(tol, max_iters, preinit, key):
    model = _MLP(nnx.Rngs(0))
    report = _outcome(
        jinit.lsuv, model, X, tol=tol, max_iters=max_iters, orthogonal_preinit=preinit, key=key
    )
    if report is None:
        return
    assert isinstance(preinit, bool)
    h = jnp.tanh(model.a(X))
    for layer, inp in ((model.a, X), (model.b, h)):
        var = float(jnp.var(inp @ layer.kernel[...]))
        assert np.isfinite(var)
        if tol > 0 and max_iters >= 10:
            assert abs(var - 1.0) < max(tol, 1e-5) + 1e-4


@FUZZ
@given(
    loss_fn=mostly(
        st.sampled_from([None, lambda y: jnp.mean(y**2), lambda y: jnp.sum(jnp.abs(y))]),
        st.sampled_from([lambda y: y, lambda y: "x", lambda: 0.0, 3, "mean"]),
    ),
    layer_types=mostly(
        st.sampled_from([None, [nnx.Linear], (nnx.Linear, nnx.Conv), nnx.Linear]),
        st.sampled_from([[], ["Linear"], [int], 3, "Linear"]),
    ),
)
def test_diagnose_any_loss_and_layer_types(loss_fn, layer_types):
    model = _MLP(nnx.Rngs(0))
    allowed = (ValueError, TypeError)
    diagnosis = _outcome(
        jinit.diagnose, model, X, loss_fn=loss_fn, layer_types=layer_types, allowed=allowed
    )
    if diagnosis is None:
        return
    assert [layer.path for layer in diagnosis.layers] == ["a", "b"]
    # the recorded output std is the plain forward pass's
    np.testing.assert_allclose(
        diagnosis.layers[0].output_std, float(jnp.std(model.a(X))), rtol=1e-5
    )
    assert np.isfinite(diagnosis.loss)


@FUZZ
@given(
    name=mostly(st.sampled_from(["w", "b"]), st.sampled_from(["x", "", None, 3])),
    layout=mostly(st.sampled_from(["jax", "torch"]), st.sampled_from(["keras", None])),
    casting=mostly(st.sampled_from(["same_kind", "unsafe"]), st.sampled_from(["no", "x"])),
    dtype=mostly(
        st.sampled_from([None, jnp.float32, jnp.bfloat16, "float64"]),
        st.sampled_from([jnp.int32, "x", 3, jnp.complex64]),
    ),
    shape=mostly(st.sampled_from([(4, 3), (3, 4), (3,)]), st.sampled_from([(), (5,), "ab"])),
)
def test_from_checkpoint_any_arguments(tmp_path_factory, name, layout, casting, dtype, shape):
    path = tmp_path_factory.getbasetemp() / "fuzz.npz"
    if not path.exists():
        np.savez(path, w=np.arange(12, dtype=np.float32).reshape(4, 3), b=np.ones(3, np.float32))
    allowed = (ValueError, TypeError, KeyError)  # KeyError: a missing name, documented
    init = _outcome(
        jinit.from_checkpoint,
        path,
        name,
        layout=layout,
        casting=casting,
        dtype=dtype,
        allowed=allowed,
    )
    if init is None:
        return
    w = _outcome(init, jax.random.key(0), shape, allowed=allowed)
    if w is None:
        return
    stored = {"w": np.arange(12, dtype=np.float32).reshape(4, 3), "b": np.ones(3, np.float32)}[name]
    if layout == "torch" and stored.ndim == 2:
        stored = stored.T
    assert w.shape == stored.shape == tuple(shape)
    np.testing.assert_allclose(np.asarray(w, np.float64), stored, rtol=1e-2)
