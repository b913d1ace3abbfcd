r"""Depth- and width-aware presets from the literature.

Each preset is a small specialization of jinit's core (:func:`jinit.normal`,
:func:`jinit.variance_scaling`) with the paper's constant filled in, or a float function
for a constant that is not an initializer (DeepNorm's :math:`\alpha`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import jax
import numpy as np

from jinit._core import (
    AxisSpec,
    Initializer,
    Shape,
    check_axes,
    check_choice,
    check_dtype_arg,
    check_int,
    check_real,
    compute_fans,
)
from jinit._initializers import (
    DISTRIBUTIONS,
    MODES,
    constant,
    normal,
    variance_scaling,
    zeros,
)
from jinit._validate import check_bool

__all__ = [
    "deepnorm_alpha",
    "deepnorm_beta",
    "deepnorm_normal",
    "fixup_branch",
    "fixup_scale",
    "gpt2_residual_normal",
    "mup_hidden",
    "mup_readout",
]

Part = Literal["encoder", "decoder"]
PARTS: tuple[str, ...] = ("encoder", "decoder")


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count (layers, branches): an int >= ``minimum`` and at most 2**53 (exact as a
    float; the presets take roots of it)."""
    return check_int(name, value, minimum=minimum, maximum=2**53)


# --------------------------------------------------------------------------------------
# GPT-2
# --------------------------------------------------------------------------------------


def gpt2_residual_normal(n_layers: int, stddev: float = 0.02, dtype: Any = None) -> Initializer:
    r"""GPT-2's init for residual projections: ``normal(stddev / sqrt(2 * n_layers))``.

    .. math::
        W \sim \mathcal{N}\!\left(0, \left(\frac{0.02}{\sqrt{2 N}}\right)^2\right)

    GPT-2 scales the weights of the layers that write into the residual stream (the
    attention output projection and the second MLP matrix) by :math:`1/\sqrt{N_r}`, where
    :math:`N_r = 2N` residual layers accumulate over :math:`N` transformer blocks (two per
    block). Other weights use ``jinit.normal(0.02)``.

    Args:
      n_layers: number of transformer blocks :math:`N`.
      stddev: the base standard deviation (GPT-2: 0.02).
      dtype: the default dtype of the weights.

    Returns:
      ``jinit.normal(stddev / sqrt(2 * n_layers), dtype)``.

    Raises:
      TypeError: if ``n_layers`` is not an int or ``stddev`` not a real number.
      ValueError: if ``n_layers`` < 1 or ``stddev`` is negative or NaN.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.gpt2_residual_normal(12)(jax.random.key(0), (768, 768))
      >>> w.shape, bool(abs(float(w.std()) / (0.02 / 24**0.5) - 1) < 0.01)
      ((768, 768), True)

    References:
      Radford et al., "Language Models are Unsupervised Multitask Learners", 2019 (GPT-2,
      Section 2.3: residual-layer weights scaled by :math:`1/\sqrt{N}`).
    """
    n_layers = _check_count("n_layers", n_layers)
    stddev = check_real("stddev", stddev, nonnegative=True)
    return normal(stddev / math.sqrt(2 * n_layers), dtype)


# --------------------------------------------------------------------------------------
# DeepNet / DeepNorm
# --------------------------------------------------------------------------------------


def _deepnorm_constants(encoder_layers: Any, decoder_layers: Any, part: Any) -> tuple[float, float]:
    n = _check_count("encoder_layers", encoder_layers, minimum=0)
    m = _check_count("decoder_layers", decoder_layers, minimum=0)
    if part is not None:
        check_choice("part", part, PARTS)
    if n == 0 and m == 0:
        raise ValueError("DeepNorm needs `encoder_layers` or `decoder_layers` > 0; got 0 and 0.")
    if n and m:  # encoder-decoder
        if part is None:
            raise ValueError(
                "`part` is required for an encoder-decoder model: one of 'encoder', 'decoder'; "
                "got None."
            )
        if part == "encoder":
            return 0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)
        return (3 * m) ** (1 / 4), (12 * m) ** (-1 / 4)
    layers = n or m  # encoder-only or decoder-only
    return (2 * layers) ** (1 / 4), (8 * layers) ** (-1 / 4)


def deepnorm_alpha(
    encoder_layers: int = 0, decoder_layers: int = 0, *, part: Part | None = None
) -> float:
    r"""DeepNorm's residual scale :math:`\alpha` in ``LayerNorm(alpha * x + f(x))``.

    .. math::
        \text{encoder-only or decoder-only (}N\text{ layers): } \alpha = (2N)^{1/4};
        \quad \text{encoder-decoder: } \alpha_e = 0.81 (N^4 M)^{1/16},\ \alpha_d = (3M)^{1/4}

    Give one of ``encoder_layers`` / ``decoder_layers`` for an encoder-only (BERT-like)
    or decoder-only (GPT-like) model; give both, and ``part``, for an encoder-decoder.

    Args:
      encoder_layers: number of encoder layers :math:`N` (0 if none).
      decoder_layers: number of decoder layers :math:`M` (0 if none).
      part: ``"encoder"`` or ``"decoder"``; required for encoder-decoder models.

    Returns:
      :math:`\alpha` as a float.

    Raises:
      TypeError: if a layer count is not an int (``12.0`` included) or ``part`` is not a str.
      ValueError: for a negative layer count, both counts zero, or a missing or unknown
        ``part`` for an encoder-decoder.

    Examples:
      >>> import jinit
      >>> jinit.deepnorm_alpha(encoder_layers=8)  # (2 * 8) ** 0.25
      2.0

    References:
      Wang et al., "DeepNet: Scaling Transformers to 1,000 Layers", 2022. arXiv:2203.00555.
    """
    return _deepnorm_constants(encoder_layers, decoder_layers, part)[0]


def deepnorm_beta(
    encoder_layers: int = 0, decoder_layers: int = 0, *, part: Part | None = None
) -> float:
    r"""DeepNorm's init gain :math:`\beta`.

    .. math::
        \text{encoder-only or decoder-only (}N\text{ layers): } \beta = (8N)^{-1/4};
        \quad \text{encoder-decoder: } \beta_e = 0.87 (N^4 M)^{-1/16},\ \beta_d = (12M)^{-1/4}

    Args:
      encoder_layers: number of encoder layers :math:`N` (0 if none).
      decoder_layers: number of decoder layers :math:`M` (0 if none).
      part: ``"encoder"`` or ``"decoder"``; required for encoder-decoder models.

    Returns:
      :math:`\beta` as a float.

    Raises:
      TypeError: if a layer count is not an int (``12.0`` included) or ``part`` is not a str.
      ValueError: for a negative layer count, both counts zero, or a missing or unknown
        ``part`` for an encoder-decoder.

    Examples:
      >>> import jinit
      >>> jinit.deepnorm_beta(decoder_layers=2)  # (8 * 2) ** -0.25
      0.5

    References:
      Wang et al., "DeepNet: Scaling Transformers to 1,000 Layers", 2022. arXiv:2203.00555.
    """
    return _deepnorm_constants(encoder_layers, decoder_layers, part)[1]


def deepnorm_normal(
    encoder_layers: int = 0,
    decoder_layers: int = 0,
    *,
    part: Part | None = None,
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    r"""DeepNorm's init: Xavier normal with gain :math:`\beta`.

    .. math::
        W \sim \mathcal{N}\!\left(0, \beta^2 \frac{2}{\mathrm{fan\_in} + \mathrm{fan\_out}}\right)
        = \texttt{variance\_scaling}(\beta^2, \text{"fan\_avg"}, \text{"normal"})

    DeepNet applies it to the feed-forward weights and the attention value and output
    projections; query and key projections keep gain 1 (untruncated Xavier normal,
    ``variance_scaling(1.0, "fan_avg", "normal")``).

    Args:
      encoder_layers: number of encoder layers :math:`N` (0 if none).
      decoder_layers: number of decoder layers :math:`M` (0 if none).
      part: ``"encoder"`` or ``"decoder"``; required for encoder-decoder models.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes to ignore (stacked layers).
      dtype: the default dtype of the weights.

    Returns:
      ``jinit.variance_scaling(beta**2, "fan_avg", "normal", ...)``.

    Raises:
      TypeError: if a layer count is not an int (``12.0`` included) or ``part`` is not a str.
      ValueError: for a negative layer count, both counts zero, or a missing or unknown
        ``part`` for an encoder-decoder.

    Examples:
      >>> import jax, jinit
      >>> init = jinit.deepnorm_normal(decoder_layers=2)  # beta = 0.5
      >>> w = init(jax.random.key(0), (512, 512))
      >>> bool(abs(float(w.var()) / (0.25 / 512) - 1) < 0.02)
      True

    References:
      Wang et al., "DeepNet: Scaling Transformers to 1,000 Layers", 2022. arXiv:2203.00555.
    """
    beta = deepnorm_beta(encoder_layers, decoder_layers, part=part)
    return variance_scaling(beta**2, "fan_avg", "normal", in_axis, out_axis, batch_axis, dtype)


# --------------------------------------------------------------------------------------
# Fixup
# --------------------------------------------------------------------------------------


def fixup_scale(num_branches: int, branch_depth: int) -> float:
    r"""Fixup's rescaling of a residual branch's layers: :math:`L^{-1/(2m-2)}`.

    Args:
      num_branches: number of residual branches :math:`L` in the network.
      branch_depth: number of layers :math:`m \ge 2` in each branch.

    Returns:
      The factor as a float (``num_branches ** (-1 / (2 * branch_depth - 2))``).

    Raises:
      TypeError: if ``num_branches`` or ``branch_depth`` is not an int.
      ValueError: if ``num_branches`` < 1 or ``branch_depth`` < 2.

    Examples:
      >>> import jinit
      >>> jinit.fixup_scale(16, 2)  # 16 ** -0.5
      0.25

    References:
      Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without
      Normalization", ICLR 2019. arXiv:1901.09321.
    """
    num_branches = _check_count("num_branches", num_branches)
    branch_depth = _check_count("branch_depth", branch_depth, minimum=2)
    return num_branches ** (-1.0 / (2 * branch_depth - 2))


def fixup_branch(
    num_branches: int,
    branch_depth: int,
    *,
    mode: str = "fan_in",
    distribution: str = "normal",
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    r"""Fixup's init for the first :math:`m-1` layers of each residual branch.

    He initialization scaled by :math:`L^{-1/(2m-2)}`:

    .. math::
        \mathrm{Var}(W) = \frac{2}{n} \, L^{-2/(2m-2)}, \qquad n = \mathrm{fan\_in}
        \text{ (or fan\_out with ``mode="fan_out"``)}

    The rest of Fixup: the last layer of each branch and the classification layer start
    at zero (``jinit.zeros``); biases start at zero and the added scalar multipliers at one.

    Args:
      num_branches: number of residual branches :math:`L`.
      branch_depth: number of layers :math:`m \ge 2` per branch.
      mode: fan used by the He init (``"fan_in"`` as in He et al.; the Fixup authors'
        ResNet code uses ``"fan_out"``).
      distribution: ``"normal"`` (He et al., untruncated), ``"truncated_normal"`` or
        ``"uniform"``.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes to ignore (stacked layers).
      dtype: the default dtype of the weights.

    Returns:
      ``jinit.variance_scaling(2 * fixup_scale(L, m) ** 2, mode, distribution, ...)``.

    Raises:
      TypeError: if ``num_branches`` or ``branch_depth`` is not an int.
      ValueError: if ``num_branches`` < 1, ``branch_depth`` < 2, or ``mode`` /
        ``distribution`` is unknown.

    Examples:
      >>> import jax, jinit
      >>> init = jinit.fixup_branch(num_branches=16, branch_depth=2)  # var 2/fan_in / 16
      >>> w = init(jax.random.key(0), (3, 3, 64, 64))
      >>> bool(abs(float(w.var()) / (2 / 576 / 16) - 1) < 0.03)
      True

    References:
      Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without
      Normalization", ICLR 2019. arXiv:1901.09321.
    """
    s = fixup_scale(num_branches, branch_depth)
    mode_: Any = check_choice("mode", mode, MODES)
    dist: Any = check_choice("distribution", distribution, DISTRIBUTIONS)
    return variance_scaling(2.0 * s * s, mode_, dist, in_axis, out_axis, batch_axis, dtype)


# --------------------------------------------------------------------------------------
# muP
# --------------------------------------------------------------------------------------


def mup_hidden(
    scale: float = 1.0,
    *,
    distribution: str = "normal",
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    r"""μP init for input and hidden weights: variance :math:`\mathrm{scale}/\mathrm{fan\_in}`.

    .. math::
        \mathrm{Var}(W) = \frac{\sigma^2}{\mathrm{fan\_in}}

    In μP (Maximal Update Parametrization) the input and hidden weights keep the usual
    :math:`1/\mathrm{fan\_in}` variance; what changes with width is the readout
    (:func:`mup_readout`) and the per-layer learning rates (not an init matter).

    Args:
      scale: the variance multiplier :math:`\sigma^2` (a tunable base constant).
      distribution: ``"normal"``, ``"truncated_normal"`` or ``"uniform"``.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes to ignore (stacked layers).
      dtype: the default dtype of the weights.

    Returns:
      ``jinit.variance_scaling(scale, "fan_in", distribution, ...)``.

    Raises:
      TypeError: if ``scale`` is not a real number.
      ValueError: for a negative or NaN ``scale`` or an unknown ``distribution``.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.mup_hidden()(jax.random.key(0), (1024, 256))
      >>> bool(abs(float(w.var()) * 1024 - 1) < 0.02)
      True

    References:
      Yang et al., "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
      Hyperparameter Transfer", 2022. arXiv:2203.03466 (Table 3).
    """
    dist: Any = check_choice("distribution", distribution, DISTRIBUTIONS)
    return variance_scaling(scale, "fan_in", dist, in_axis, out_axis, batch_axis, dtype)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _MupReadout(Initializer):
    scale: float
    in_axis: int | tuple[int, ...]
    out_axis: int | tuple[int, ...]
    batch_axis: int | tuple[int, ...]
    dtype: np.dtype | None

    name: ClassVar[str] = "mup_readout"

    def _init(self, key, shape: Shape, dtype: np.dtype, out_sharding) -> jax.Array:
        fan_in, _ = compute_fans(shape, self.in_axis, self.out_axis, self.batch_axis)
        stddev = math.sqrt(self.scale) / max(fan_in, 1.0)
        return normal(stddev)(key, shape, dtype, out_sharding)


def mup_readout(
    scale: float = 1.0,
    *,
    zero: bool = False,
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    r"""μP init for the readout layer: zero, or variance :math:`\sigma^2/\mathrm{fan\_in}^2`.

    .. math::
        W \sim \mathcal{N}\!\left(0, \frac{\sigma^2}{\mathrm{fan\_in}^2}\right)
        \quad \text{or} \quad W = 0

    Variance :math:`1/\mathrm{fan\_in}^2` (instead of SP's :math:`1/\mathrm{fan\_in}`) makes
    the logits :math:`O(1/\sqrt{\mathrm{width}})` at init so that their updates, not their
    initial values, dominate as width grows; Yang et al. recommend zero as a simple choice.

    Args:
      scale: the variance multiplier :math:`\sigma^2`.
      zero: return ``jinit.zeros`` instead.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes to ignore (stacked layers).
      dtype: the default dtype of the weights.

    Returns:
      An initializer (``jinit.zeros`` when ``zero=True``).

    Raises:
      TypeError: if ``scale`` is not a real number or ``zero`` not a bool.
      ValueError: for a negative or NaN ``scale``.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.mup_readout()(jax.random.key(0), (512, 1024))
      >>> bool(abs(float(w.var()) * 512**2 - 1) < 0.02)
      True
      >>> bool((jinit.mup_readout(zero=True)(jax.random.key(0), (512, 10)) == 0).all())
      True

    References:
      Yang et al., "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
      Hyperparameter Transfer", 2022. arXiv:2203.03466 (Table 3 and Section D.2).
    """
    scale = check_real("scale", scale, nonnegative=True)
    if check_bool("zero", zero):
        return zeros if dtype is None else constant(0.0, dtype)
    return _MupReadout(
        scale,
        check_axes("in_axis", in_axis),
        check_axes("out_axis", out_axis),
        check_axes("batch_axis", batch_axis),
        check_dtype_arg("dtype", dtype),
    )
