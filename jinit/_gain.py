"""Recommended gains for nonlinearities (PyTorch's table, plus gelu/silu/elu)."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from jinit._core import check_real

_UNIT_GAIN = (
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
NONLINEARITIES: tuple[str, ...] = (
    *_UNIT_GAIN,
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "elu",
)


@functools.lru_cache(maxsize=64)
def second_moment_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""``E[f(z)^2]^{-1/2}`` for ``z ~ N(0, 1)``: the gain that keeps the second moment.

    This is the rule behind He et al. (2015): a layer ``y = W f(x)`` with
    ``Var(W) = gain^2 / fan_in`` keeps ``E[y^2]`` when ``x ~ N(0, 1)``. It gives exactly
    PyTorch's sqrt(2) for relu and sqrt(2 / (1 + a^2)) for leaky_relu; jinit uses it for
    the activations PyTorch has no entry for. Computed by the trapezoid rule on
    [-12, 12] (error below 1e-9).
    """
    z = np.linspace(-12.0, 12.0, 240_001)
    erf: Any = np.frompyfunc(math.erf, 1, 1)
    if nonlinearity == "gelu":  # exact GELU: z * Phi(z)
        f = z * 0.5 * (1.0 + erf(z / math.sqrt(2.0)).astype(float))
    elif nonlinearity in ("silu", "swish"):
        f = z / (1.0 + np.exp(-z))
    elif nonlinearity == "elu":
        alpha = 1.0 if param is None else param
        f = np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))
    elif nonlinearity == "relu":
        f = np.maximum(z, 0.0)
    else:  # pragma: no cover - internal use only
        raise ValueError(nonlinearity)
    density = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    second_moment = np.trapezoid(f**2 * density, z)
    return float(1.0 / math.sqrt(second_moment))


def _param(param: Any) -> float:
    """``param`` as a float; ValueError for anything else, as torch's calculate_gain."""
    try:
        return check_real("param", param)
    except TypeError as e:
        raise ValueError(str(e)) from None


def calculate_gain(nonlinearity: str, param: Any = None) -> float:
    r"""Returns the recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    ======================  =================================================
    nonlinearity            gain
    ======================  =================================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    :math:`\sqrt{2}`
    leaky_relu              :math:`\sqrt{2 / (1 + \mathrm{slope}^2)}`, slope = ``param`` or 0.01
    selu                    3/4
    gelu, silu (swish), elu :math:`E[f(z)^2]^{-1/2}`, z ~ N(0, 1) (jinit; torch has none)
    ======================  =================================================

    The last row applies the second-moment argument of He et al. (2015), which yields
    exactly the relu and leaky_relu rows above: gelu 1.5335, silu 1.6765, elu 1.2452
    (``param`` is elu's alpha, default 1).

    Args:
      nonlinearity: the activation's name.
      param: negative slope for ``leaky_relu``, alpha for ``elu``.

    Returns:
      The gain, a float.

    Raises:
      ValueError: for an unknown nonlinearity or a non-numeric ``param`` (as PyTorch).

    Examples:
      >>> import jinit
      >>> round(jinit.calculate_gain("relu"), 6), jinit.calculate_gain("tanh")
      (1.414214, 1.6666666666666667)
      >>> round(jinit.calculate_gain("leaky_relu", 0.2), 6)
      1.38675

    References:
      He et al. 2015 (arXiv:1502.01852); PyTorch ``torch.nn.init.calculate_gain``.
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        options = ", ".join(repr(n) for n in NONLINEARITIES)
        raise ValueError(f"`nonlinearity` must be one of {options}; got {nonlinearity!r}.")
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _param(param)
        return math.sqrt(2.0 / (1 + slope * slope))
    alpha = None if param is None else _param(param)
    return second_moment_gain(nonlinearity, alpha)
