"""Depth/width-aware presets: each formula, and sample statistics within ~5 standard errors.

For n i.i.d. N(0, s^2) samples the sample variance has standard error s^2 * sqrt(2 / (n - 1)).
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jinit

KEY = jax.random.key(0)
Z = 5.0  # tolerance in standard errors


def _check_normal(w, expected_var: float) -> None:
    x = np.asarray(w, np.float64).ravel()
    n = x.size
    se = expected_var * math.sqrt(2.0 / (n - 1))
    assert abs(x.var() - expected_var) < Z * se, (x.var(), expected_var, se)
    assert abs(x.mean()) < Z * math.sqrt(expected_var / n)
    # and it is an (untruncated) normal: KS test against N(0, expected_var)
    assert stats.kstest(x / math.sqrt(expected_var), "norm").pvalue > 1e-4


# --------------------------------------------------------------------------------------
# GPT-2
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 12, 48])
def test_gpt2_residual_formula(n_layers):
    init = jinit.gpt2_residual_normal(n_layers)
    assert init == jinit.normal(0.02 / math.sqrt(2 * n_layers))
    _check_normal(init(KEY, (256, 384)), (0.02 / math.sqrt(2 * n_layers)) ** 2)


def test_gpt2_residual_custom_std_and_dtype():
    init = jinit.gpt2_residual_normal(4, stddev=0.1, dtype=jnp.bfloat16)
    assert init == jinit.normal(0.1 / math.sqrt(8), jnp.bfloat16)
    w = init(KEY, (256, 256))
    assert w.dtype == jnp.bfloat16
    _check_normal(w, (0.1 / math.sqrt(2 * 4)) ** 2)
    with pytest.raises(ValueError, match="`n_layers`"):
        jinit.gpt2_residual_normal(0)


# --------------------------------------------------------------------------------------
# DeepNet / DeepNorm (Wang et al. 2022, Figure 2)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 6, 18, 100, 1000])
def test_deepnorm_encoder_or_decoder_only(n):
    for kw in ({"encoder_layers": n}, {"decoder_layers": n}):
        assert jinit.deepnorm_alpha(**kw) == pytest.approx((2 * n) ** 0.25, rel=1e-12)
        assert jinit.deepnorm_beta(**kw) == pytest.approx((8 * n) ** -0.25, rel=1e-12)


def test_deepnorm_encoder_decoder():
    n, m = 12, 6  # different, so a swap of N and M fails
    assert jinit.deepnorm_alpha(n, m, part="encoder") == pytest.approx(
        0.81 * (n**4 * m) ** (1 / 16)
    )
    assert jinit.deepnorm_beta(n, m, part="encoder") == pytest.approx(
        0.87 * (n**4 * m) ** (-1 / 16)
    )
    assert jinit.deepnorm_alpha(n, m, part="decoder") == pytest.approx((3 * m) ** 0.25)
    assert jinit.deepnorm_beta(n, m, part="decoder") == pytest.approx((12 * m) ** -0.25)
    with pytest.raises(ValueError, match="`part`"):
        jinit.deepnorm_alpha(n, m)
    with pytest.raises(ValueError, match="> 0"):
        jinit.deepnorm_beta()
    with pytest.raises(ValueError, match="`encoder_layers`"):
        jinit.deepnorm_beta(-1)


def test_deepnorm_initializer_is_beta_scaled_xavier_normal():
    beta = (8 * 24) ** -0.25
    init = jinit.deepnorm_normal(decoder_layers=24)
    assert init == jinit.variance_scaling(beta**2, "fan_avg", "normal")
    fan_in, fan_out = 256, 512
    _check_normal(init(KEY, (fan_in, fan_out)), beta**2 * 2.0 / (fan_in + fan_out))


# --------------------------------------------------------------------------------------
# Fixup (Zhang et al. 2019)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("L", "m"), [(16, 2), (54, 3), (8, 4)])
def test_fixup_scale(L, m):
    assert jinit.fixup_scale(L, m) == pytest.approx(L ** (-1.0 / (2 * m - 2)), rel=1e-12)


def test_fixup_branch_variance():
    L, m = 16, 2  # a ResNet with 16 two-layer residual branches: He init times 1/4
    init = jinit.fixup_branch(L, m)
    shape = (3, 3, 32, 64)
    fan_in = 3 * 3 * 32
    expected = 2.0 / fan_in * L ** (-2.0 / (2 * m - 2))
    _check_normal(init(KEY, shape), expected)
    out = jinit.fixup_branch(L, m, mode="fan_out")(KEY, shape)
    _check_normal(out, 2.0 / (3 * 3 * 64) * L ** (-2.0 / (2 * m - 2)))
    with pytest.raises(ValueError, match="`branch_depth`"):
        jinit.fixup_branch(L, 1)
    with pytest.raises(ValueError, match="`mode`"):
        jinit.fixup_branch(L, m, mode="fan_sum")


# --------------------------------------------------------------------------------------
# muP (Yang et al. 2022)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fan_in", [64, 1024])
def test_mup_hidden(fan_in):
    _check_normal(jinit.mup_hidden()(KEY, (fan_in, 512)), 1.0 / fan_in)
    _check_normal(jinit.mup_hidden(2.0)(KEY, (fan_in, 512)), 2.0 / fan_in)


@pytest.mark.parametrize("fan_in", [64, 1024])
def test_mup_readout(fan_in):
    init = jinit.mup_readout()
    _check_normal(init(KEY, (fan_in, 512)), 1.0 / fan_in**2)
    _check_normal(jinit.mup_readout(4.0)(KEY, (fan_in, 512)), 4.0 / fan_in**2)
    assert init == jinit.mup_readout() and hash(init) == hash(jinit.mup_readout())
    assert init != jinit.mup_readout(2.0)
    z = jinit.mup_readout(zero=True)(KEY, (fan_in, 10))
    assert z.shape == (fan_in, 10) and not z.any()


def test_mup_readout_conv_and_jit():
    init = jinit.mup_readout()
    w = jax.jit(init, static_argnums=(1,))(KEY, (3, 3, 32, 256))  # fan_in = 288
    _check_normal(w, 1.0 / 288**2)
    assert jinit.mup_readout(dtype=jnp.bfloat16)(KEY, (8, 8)).dtype == jnp.bfloat16
    assert jinit.mup_readout(zero=True, dtype=jnp.float16)(KEY, (8, 8)).dtype == jnp.float16


def test_width_scaling_of_readout_vs_hidden():
    """muP's point: readout outputs shrink like 1/sqrt(width); hidden outputs stay O(1)."""
    ratios = []
    for width in (128, 2048):
        x = jax.random.normal(jax.random.key(1), (256, width))
        hidden = x @ jinit.mup_hidden()(KEY, (width, width))
        logits = x @ jinit.mup_readout()(KEY, (width, 10))
        ratios.append((float(hidden.std()), float(logits.std()) * math.sqrt(width)))
    (h1, l1), (h2, l2) = ratios
    assert abs(h1 - 1) < 0.05 and abs(h2 - 1) < 0.05
    assert abs(l1 - 1) < 0.1 and abs(l2 - 1) < 0.1


# --------------------------------------------------------------------------------------
# Argument kinds and values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda v: jinit.gpt2_residual_normal(v), "n_layers"),
        (lambda v: jinit.deepnorm_alpha(encoder_layers=v), "encoder_layers"),
        (lambda v: jinit.deepnorm_beta(decoder_layers=v), "decoder_layers"),
        (lambda v: jinit.deepnorm_normal(6, v, part="encoder"), "decoder_layers"),
        (lambda v: jinit.fixup_scale(v, 2), "num_branches"),
        (lambda v: jinit.fixup_branch(16, v), "branch_depth"),
    ],
)
def test_counts_reject_other_kinds_and_accept_numpy_ints(call, arg):
    for bad in (12.0, "12", None, True, np.float32(12)):
        with pytest.raises(TypeError, match=f"`{arg}` must be an int.*got {re.escape(repr(bad))}"):
            call(bad)
    with pytest.raises(ValueError, match=f"`{arg}` must be an int >= .*got -3"):
        call(-3)
    assert call(np.int64(12)) == call(12)


def test_float_arguments_kind_and_value():
    with pytest.raises(TypeError, match=r"`stddev`.*'a'"):
        jinit.gpt2_residual_normal(12, stddev="a")
    with pytest.raises(ValueError, match=r"`stddev`.*-0.1"):
        jinit.gpt2_residual_normal(12, stddev=-0.1)
    assert jinit.gpt2_residual_normal(12, stddev=np.float32(0.5)) == jinit.gpt2_residual_normal(
        12, stddev=0.5
    )
    for factory in (jinit.mup_hidden, jinit.mup_readout):
        with pytest.raises(TypeError, match="`scale`"):
            factory("1")
        with pytest.raises(ValueError, match=r"`scale`.*-1"):
            factory(-1.0)
        assert factory(2) == factory(2.0)
    with pytest.raises(TypeError, match=r"`part`.*got 1"):
        jinit.deepnorm_alpha(6, 6, part=1)
    with pytest.raises(ValueError, match=r"`part`.*'middle'"):
        jinit.deepnorm_alpha(6, 6, part="middle")
