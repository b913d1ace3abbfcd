r"""The catalog: constants, simple distributions, the variance-scaling core, orthogonal.

Each public factory validates its arguments and returns a frozen :class:`Initializer`
value. Named schemes (glorot, he, lecun) are one-line specializations of
:func:`variance_scaling`; aliases are plain assignments.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _samplers
from jinit._core import Initializer, compute_fans
from jinit._orthogonal_methods import METHODS as ORTHOGONAL_METHODS
from jinit._orthogonal_methods import REAL_ONLY as _REAL_ONLY_METHODS
from jinit._validate import (
    AxisSpec,
    OutSharding,
    Shape,
    check_axes,
    check_broadcastable,
    check_choice,
    check_dtype_arg,
    check_fits,
    check_int,
    check_int_value_fits,
    check_real,
    check_real_or_array,
    dtype_max,
    factory,
    is_tracer,
    magnitude,
    normal_reach,
    normalize_axis,
)

_is_tracer = is_tracer  # the name jinit._structured and jinit.torch used

__all__ = [
    "constant",
    "delta_orthogonal",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
Distribution = Literal["truncated_normal", "normal", "uniform"]
DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "normal", "uniform")
FanRule = Literal["jax", "keras"]
FAN_RULES: tuple[str, ...] = ("jax", "keras")
OrthogonalMethod = Literal["auto", "qr", "householder", "cholesky_qr2"]

# Standard deviation of a standard normal truncated to (-2, 2).
TRUNCATED_NORMAL_STD = 0.87962566103423978
# Standard deviation of a circular complex normal (E|z|^2 = 1) whose modulus is truncated
# to 2: |z|^2 is Exp(1) truncated to [0, 4], so E|z|^2 = (1 - 5 e^-4) / (1 - e^-4).
# jax divides by sqrt(1 - 5 e^-4) = 0.95311164380491208 instead, which leaves the
# variance 1/(1 - e^-4) = 1.0187 times too large; jinit uses the exact value.
COMPLEX_TRUNCATED_NORMAL_STD = math.sqrt((1 - 5 * math.exp(-4)) / (1 - math.exp(-4)))


def _in_dtype(value: Any, dtype: np.dtype):
    """A hyperparameter rounded to the dtype the sampler computes in for ``dtype``.

    That is ``dtype`` itself (as ``jnp.array(value, dtype)`` in jax) except for 16-bit
    floats, which jinit samples in float32 and rounds once at the end (see
    :func:`jinit._samplers.compute_dtype`). Computed host-side unless traced.
    """
    dtype = _samplers.compute_dtype(dtype)
    if _is_tracer(value):
        return jnp.asarray(value, dtype)
    return np.asarray(value, dtype)


def _sqrt(x):
    return jnp.sqrt(x) if _is_tracer(x) else np.sqrt(x)


def _empty(shape: Shape, dtype: np.dtype, out_sharding: OutSharding) -> jax.Array:
    return _samplers.full(0, shape=shape, dtype=dtype, out_sharding=out_sharding)


def _require_rank(name: str, shape: Shape, ranks: Sequence[int] | int, what: str) -> None:
    ok = len(shape) >= ranks if isinstance(ranks, int) else len(shape) in ranks
    if not ok:
        raise ValueError(f"{name} needs {what}; got shape {shape} (rank {len(shape)}).")


# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Zeros(Initializer):
    supports_int: ClassVar[bool] = True
    name: ClassVar[str] = "zeros"

    def _init(self, key, shape, dtype, out_sharding):
        return _samplers.full(0, shape=shape, dtype=dtype, out_sharding=out_sharding)

    def __repr__(self) -> str:
        return "zeros"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Ones(Initializer):
    supports_int: ClassVar[bool] = True
    name: ClassVar[str] = "ones"

    def _init(self, key, shape, dtype, out_sharding):
        return _samplers.full(1, shape=shape, dtype=dtype, out_sharding=out_sharding)

    def __repr__(self) -> str:
        return "ones"


zeros: Initializer = _Zeros()
"""Returns an array of zeros; the key is ignored (``jax.nn.initializers.zeros``).

Examples:
  >>> import jax, jinit
  >>> jinit.zeros(jax.random.key(0), (2, 3)).sum()
  Array(0., dtype=float32)
"""

ones: Initializer = _Ones()
"""Returns an array of ones; the key is ignored (``jax.nn.initializers.ones``).

Examples:
  >>> import jax, jinit
  >>> jinit.ones(jax.random.key(0), (2, 3)).sum()
  Array(6., dtype=float32)
"""


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Constant(Initializer):
    value: Any
    dtype: Any = None
    supports_int: ClassVar[bool] = True
    name: ClassVar[str] = "constant"

    def _init(self, key, shape, dtype, out_sharding):
        value = self.value
        if np.ndim(value):
            if not _broadcastable(np.shape(value), shape):
                raise ValueError(
                    f"constant value of shape {np.shape(value)} cannot be broadcast to the "
                    f"requested shape {shape}."
                )
        if isinstance(value, jax.Array) and not is_tracer(value) and value.size:
            # A device array: two reductions instead of a host copy.
            low, high = float(jnp.min(value.real)), float(jnp.max(value.real))
            if jnp.issubdtype(dtype, jnp.integer):
                check_int_value_fits("value", np.array([low, high]), dtype)
            elif dtype != np.bool_:
                check_fits("value", value, dtype, reach=max(abs(low), abs(high)))
        elif not is_tracer(value):
            if jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_:
                check_int_value_fits("value", value, dtype)
            elif np.size(value):
                check_fits("value", value, dtype, reach=magnitude(value))
            if np.ndim(value) == 0:  # a Python int beyond int32 must not reach jit as is
                value = np.asarray(value).astype(dtype)
        return _samplers.full(value, shape=shape, dtype=dtype, out_sharding=out_sharding)


def _broadcastable(src: tuple[int, ...], dst: Shape) -> bool:
    if len(src) > len(dst):
        return False
    return all(s in (1, d) for s, d in zip(reversed(src), reversed(dst), strict=False))


@factory("jinit.constant")
def constant(value: Any, dtype: Any = None) -> Initializer:
    """Builds an initializer that fills arrays with ``value`` (``jax.nn.initializers.constant``).

    Args:
      value: a scalar, or an array broadcastable to the requested shape.
      dtype: the default dtype of the weights.

    Returns:
      An initializer; the key is ignored.

    Raises:
      TypeError: if ``value`` is not numeric.

    Examples:
      >>> import jax, jinit
      >>> jinit.constant(-7.0)(jax.random.key(0), (2, 2)).tolist()
      [[-7.0, -7.0], [-7.0, -7.0]]
    """
    if not is_tracer(value):
        arr: Any
        if isinstance(value, jax.Array):
            arr = value
        else:
            try:
                arr = np.asarray(value)
            except (TypeError, ValueError, OverflowError):
                arr = np.asarray(None)
        dt = np.dtype(arr.dtype) if arr.dtype != object else None
        if dt is None or not (np.issubdtype(dt, np.number) or dt == np.bool_ or dt.kind == "V"):
            if isinstance(value, int) and not isinstance(value, bool):  # beyond int64
                raise ValueError(f"`value`={value!r} is too large for any dtype.")
            raise TypeError(f"`value` must be numeric; got {value!r}.")
        if dt is not None and np.issubdtype(dt, np.inexact):
            if not bool((jnp if isinstance(arr, jax.Array) else np).isfinite(arr).all()):
                raise ValueError(f"`value` must be finite (no NaN or inf); got {value!r}.")
        if arr.ndim == 0 and not isinstance(arr, jax.Array):
            value = value if isinstance(value, (int, float, complex)) else arr.item()
    return _Constant(value, check_dtype_arg("dtype", dtype, allow_int=True))


# --------------------------------------------------------------------------------------
# Simple distributions
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Uniform(Initializer):
    scale: Any = 1e-2
    dtype: Any = None
    supports_complex: ClassVar[bool] = False
    name: ClassVar[str] = "uniform"

    def _init(self, key, shape, dtype, out_sharding):
        _check_array_arg("scale", self.scale, shape)
        check_fits("scale", self.scale, dtype, reach=_mag(self.scale))
        return _samplers.uniform(
            key,
            0.0,
            1.0,
            _in_dtype(self.scale, dtype),
            _in_dtype(0, dtype),
            shape=shape,
            dtype=dtype,
            out_sharding=out_sharding,
        )


@factory("jinit.uniform")
def uniform(scale: float = 1e-2, dtype: Any = None) -> Initializer:
    r"""Builds an initializer sampling :math:`U[0, \mathrm{scale})`, as jax.nn.initializers.uniform.

    Note the range is ``[0, scale)``, not symmetric around zero, exactly as in jax. For a
    symmetric range use ``jinit.torch.uniform(-a, a)`` or ``jinit.keras.random_uniform``.

    Args:
      scale: the upper bound of the range (a negative scale gives ``(scale, 0]``, as in
        jax), or an array broadcastable to the weight's shape.
      dtype: the default dtype of the weights.

    Returns:
      An initializer (real dtypes only).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.uniform(10.0)(jax.random.key(0), (1000,))
      >>> bool((w >= 0).all() and (w < 10).all())
      True
    """
    return _Uniform(check_real_or_array("scale", scale), check_dtype_arg("dtype", dtype))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Normal(Initializer):
    stddev: Any = 1e-2
    dtype: Any = None
    mean: Any = 0.0
    name: ClassVar[str] = "normal"

    def _init(self, key, shape, dtype, out_sharding):
        _check_array_arg("stddev", self.stddev, shape)
        reach = _mag(self.mean) + _mag(self.stddev) * normal_reach(dtype)
        check_fits("stddev", self.stddev, dtype, reach=reach, detail="normal draws reach ±6 stddev")
        return _samplers.normal(
            key,
            _in_dtype(self.stddev, dtype),
            _in_dtype(self.mean, dtype),
            shape=shape,
            dtype=dtype,
            out_sharding=out_sharding,
        )


@factory("jinit.normal")
def normal(stddev: float = 1e-2, dtype: Any = None, *, mean: float = 0.0) -> Initializer:
    r"""Builds an initializer sampling :math:`\mathcal{N}(\mathrm{mean}, \mathrm{stddev}^2)`.

    With the default ``mean=0`` this is ``jax.nn.initializers.normal``. Complex dtypes
    give a circular complex normal with :math:`E|z|^2 = \mathrm{stddev}^2`.

    Args:
      stddev: the standard deviation (a negative value flips the signs, as in jax), or an
        array broadcastable to the weight's shape.
      dtype: the default dtype of the weights.
      mean: the mean (a jinit extension; jax has none).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.normal(0.02)(jax.random.key(0), (256, 256))
      >>> bool(abs(float(w.std()) - 0.02) < 0.001)
      True
    """
    return _Normal(
        check_real_or_array("stddev", stddev),
        check_dtype_arg("dtype", dtype),
        check_real("mean", mean),
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _TruncatedNormal(Initializer):
    stddev: Any = 1e-2
    dtype: Any = None
    lower: Any = -2.0
    upper: Any = 2.0
    mean: Any = 0.0
    supports_complex: ClassVar[bool] = False
    name: ClassVar[str] = "truncated_normal"

    def _init(self, key, shape, dtype, out_sharding):
        for name in ("stddev", "lower", "upper"):
            _check_array_arg(name, getattr(self, name), shape)
        reach = _mag(self.mean) + _mag(self.stddev) * _bound_reach(self.lower, self.upper, dtype)
        check_fits("stddev", self.stddev, dtype, reach=reach)
        stddev, mean = _in_dtype(self.stddev, dtype), _in_dtype(self.mean, dtype)
        return _samplers.truncated_normal(
            key,
            self.lower,
            self.upper,
            stddev,
            mean,
            *_clip_bounds(self.lower, self.upper, stddev, mean, dtype),
            shape=shape,
            dtype=dtype,
            out_sharding=out_sharding,
        )


def _clip_bounds(lower, upper, factor, loc, dtype):
    """The value-space bounds ``loc + factor * (lower, upper)`` (ordered), computed as the
    sampler computes them, at which a draw is clamped after its cast to ``dtype``."""
    cdt = _samplers.compute_dtype(dtype)
    if all(isinstance(v, (float, np.ndarray)) and np.ndim(v) == 0 for v in (lower, upper)):
        host = (np.ndarray, np.generic)
        if isinstance(factor, host) and isinstance(loc, host):  # scalars, host-side
            lo, hi = loc + factor * cdt.type(lower), loc + factor * cdt.type(upper)
            return min(lo, hi), max(lo, hi)
    xp = jnp if any(is_tracer(v) for v in (lower, upper, factor, loc)) else np
    lo = xp.asarray(loc, cdt) + xp.asarray(factor, cdt) * xp.asarray(lower, cdt)
    hi = xp.asarray(loc, cdt) + xp.asarray(factor, cdt) * xp.asarray(upper, cdt)
    return xp.minimum(lo, hi), xp.maximum(lo, hi)


def _mag(value: Any) -> Any:
    return abs(value) if is_tracer(value) else magnitude(value)


def _bound_reach(lower: Any, upper: Any, dtype: np.dtype) -> Any:
    """The largest |z| a standard normal truncated to (lower, upper) can take."""
    if is_tracer(lower) or is_tracer(upper):
        return normal_reach(dtype)
    if isinstance(lower, float) and isinstance(upper, float):
        reach = normal_reach(dtype)
        return max(reach if math.isinf(b) else abs(b) for b in (lower, upper))
    both = np.abs(np.concatenate([np.ravel(lower), np.ravel(upper)]).astype(np.float64))
    return float(np.where(np.isinf(both), normal_reach(dtype), both).max())


def _check_array_arg(name: str, value: Any, shape: Shape) -> None:
    if not is_tracer(value) and np.ndim(value):
        check_broadcastable(name, value, shape)


def _check_bounds(lower_name: str, lower: Any, upper_name: str, upper: Any, *, arrays=False):
    check = check_real_or_array if arrays else check_real
    lower = check(lower_name, lower, allow_inf=True)
    upper = check(upper_name, upper, allow_inf=True)
    if not (is_tracer(lower) or is_tracer(upper)):
        try:
            ordered = bool(np.all(np.asarray(lower) < np.asarray(upper)))
        except ValueError:  # shapes that do not broadcast together
            raise ValueError(
                f"`{lower_name}` of shape {np.shape(lower)} and `{upper_name}` of shape "
                f"{np.shape(upper)} do not broadcast together."
            ) from None
        if not ordered:
            raise ValueError(
                f"`{lower_name}` must be less than `{upper_name}`; got {lower_name}={lower!r}, "
                f"{upper_name}={upper!r}."
            )
    return lower, upper


@factory("jinit.truncated_normal")
def truncated_normal(
    stddev: float = 1e-2,
    dtype: Any = None,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    mean: float = 0.0,
) -> Initializer:
    r"""Builds a truncated-normal initializer (``jax.nn.initializers.truncated_normal``).

    .. math::
        w = \mathrm{mean} + \mathrm{stddev} \cdot z, \quad
        z \sim \mathcal{N}(0, 1) \text{ conditioned on } \mathrm{lower} < z < \mathrm{upper}

    ``stddev`` is that of the *untruncated* normal: no variance correction is applied, as
    in jax (the standard deviation of the result is ``0.8796 * stddev`` for the default
    bounds). :func:`variance_scaling` applies the correction.

    Args:
      stddev: standard deviation of the untruncated distribution (or an array
        broadcastable to the weight's shape; negative flips the signs, as in jax).
      dtype: the default dtype of the weights.
      lower: lower bound, in units of ``stddev`` (an array broadcastable to the weight's
        shape too, as in jax; ``-inf`` allowed).
      upper: upper bound, in units of ``stddev``; must exceed ``lower`` elementwise.
      mean: the centre (a jinit extension).

    Returns:
      An initializer (real dtypes only).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.truncated_normal(1.0)(jax.random.key(0), (10000,))
      >>> bool((abs(w) < 2).all())
      True
    """
    lower, upper = _check_bounds("lower", lower, "upper", upper, arrays=True)
    return _TruncatedNormal(
        check_real_or_array("stddev", stddev),
        check_dtype_arg("dtype", dtype),
        lower,
        upper,
        check_real("mean", mean),
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _UniformRange(Initializer):
    """``U[minval, maxval)`` — the torch/keras uniform (jax's ``uniform`` is ``U[0, scale)``)."""

    minval: Any
    maxval: Any
    dtype: Any = None
    supports_complex: ClassVar[bool] = False
    name: ClassVar[str] = "uniform_range"

    def _init(self, key, shape, dtype, out_sharding):
        if not (is_tracer(self.minval) or is_tracer(self.maxval)):
            reach = max(abs(self.minval), abs(self.maxval))
            check_fits("maxval", self.maxval, dtype, reach=reach)
        one, zero = _in_dtype(1, dtype), _in_dtype(0, dtype)
        return _samplers.uniform(
            key, self.minval, self.maxval, one, zero, shape=shape, dtype=dtype,
            out_sharding=out_sharding,
        )  # fmt: skip


def uniform_range(minval: float, maxval: float, dtype: Any = None) -> Initializer:
    """Builds an initializer sampling ``U[minval, maxval)`` (used by jinit.torch/keras)."""
    minval, maxval = _check_bounds("minval", minval, "maxval", maxval)
    for name, value in (("minval", minval), ("maxval", maxval)):
        check_real(name, value)  # finite
    return _UniformRange(minval, maxval, check_dtype_arg("dtype", dtype))


# --------------------------------------------------------------------------------------
# Variance scaling
# --------------------------------------------------------------------------------------


def _keras_fans(shape: Shape) -> tuple[float, float]:
    """Keras 3 fans: 0-D -> (1, 1); 1-D -> (n, n); else receptive field = prod(shape[:-2])."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = math.prod(shape[:-2])
    return float(shape[-2] * receptive_field), float(shape[-1] * receptive_field)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _VarianceScaling(Initializer):
    scale: Any
    mode: str
    distribution: str
    in_axis: Any = -2
    out_axis: Any = -1
    batch_axis: Any = ()
    dtype: Any = None
    fan_rule: str = "jax"
    name: ClassVar[str] = "variance_scaling"

    def denominator(self, shape: Shape) -> float:
        """The ``n`` of ``variance = scale / n`` for a weight of this shape."""
        if self.fan_rule == "keras":
            fan_in, fan_out = _keras_fans(shape)
        else:
            fan_in, fan_out = compute_fans(shape, self.in_axis, self.out_axis, self.batch_axis)
        n = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "fan_avg": (fan_in + fan_out) / 2,
            "fan_geo_avg": (fan_in * fan_out) ** 0.5,
        }[self.mode]
        return max(1.0, n) if self.fan_rule == "keras" else n

    def _init(self, key, shape, dtype, out_sharding):
        denominator = self.denominator(shape)
        if math.prod(shape) == 0:
            return _empty(shape, dtype, out_sharding)
        is_complex = jnp.issubdtype(dtype, jnp.complexfloating)
        if not is_tracer(self.scale):
            self._check_fits(self.scale / denominator, denominator, dtype, is_complex)
        variance = _in_dtype(self.scale / denominator, dtype)
        common = dict(shape=shape, dtype=dtype, out_sharding=out_sharding)
        zero = _in_dtype(0, dtype)
        if self.distribution == "truncated_normal":
            if is_complex:
                stddev = _sqrt(variance) / _in_dtype(COMPLEX_TRUNCATED_NORMAL_STD, dtype)
                return _samplers.complex_truncated_normal(key, 2.0, stddev, **common)
            stddev = _sqrt(variance) / _in_dtype(TRUNCATED_NORMAL_STD, dtype)
            clip = _clip_bounds(-2.0, 2.0, stddev, zero, dtype)
            return _samplers.truncated_normal(key, -2.0, 2.0, stddev, zero, *clip, **common)
        if self.distribution == "normal":
            return _samplers.normal(key, _sqrt(variance), zero, **common)
        if is_complex:
            return _samplers.complex_uniform(key, _sqrt(variance), **common)
        factor = _sqrt(_in_dtype(3, dtype) * variance)
        return _samplers.uniform(key, -1.0, 1.0, factor, zero, **common)

    def _check_fits(self, variance: float, denominator: float, dtype, is_complex: bool) -> None:
        """The variance must be finite in the compute dtype and the draws in ``dtype``."""
        cdt = _samplers.compute_dtype(dtype)
        reach = {
            "truncated_normal": 2 / TRUNCATED_NORMAL_STD,
            "normal": normal_reach(dtype),
            "uniform": math.sqrt(3.0),
        }[self.distribution]
        if is_complex:
            reach = max(reach, math.sqrt(2.0), 2 / COMPLEX_TRUNCATED_NORMAL_STD)
        if variance <= dtype_max(cdt) and math.sqrt(variance) * reach <= dtype_max(dtype):
            return  # the common case: no message to build
        ratio = f"{self.scale:.4g} / {denominator:.4g}"
        check_fits("scale", self.scale, cdt, reach=variance, detail=ratio, what="the variance is")
        detail = f"variance {ratio} = {variance:.4g}"
        check_fits("scale", self.scale, dtype, reach=math.sqrt(variance) * reach, detail=detail)


@factory("jinit.variance_scaling")
def variance_scaling(
    scale: float,
    mode: Mode,
    distribution: Distribution,
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    r"""Builds an initializer whose variance adapts to the weight's fans (the core).

    .. math::
        \mathrm{Var}(w) = \frac{\mathrm{scale}}{n}, \qquad
        n = \begin{cases}
          \mathrm{fan\_in} & \text{mode="fan_in"} \\
          \mathrm{fan\_out} & \text{mode="fan_out"} \\
          (\mathrm{fan\_in} + \mathrm{fan\_out}) / 2 & \text{mode="fan_avg"} \\
          \sqrt{\mathrm{fan\_in} \cdot \mathrm{fan\_out}} & \text{mode="fan_geo_avg"}
        \end{cases}

    ``"truncated_normal"`` draws a normal truncated at two standard deviations and divides
    by the truncated standard deviation 0.8796 so the variance is exact; ``"normal"`` an
    untruncated normal; ``"uniform"`` :math:`U(-\sqrt{3\,\mathrm{Var}}, \sqrt{3\,\mathrm{Var}})`.
    Complex dtypes draw from a disk (uniform) or a circular normal; jinit's complex
    truncated normal has the exact variance, where jax's is 1.87% too large.

    Fans come from :func:`compute_fans` with ``in_axis``, ``out_axis`` and ``batch_axis``.

    Args:
      scale: the variance scale (non-negative and finite: jax's negative scales give NaN).
      mode: one of ``"fan_in"``, ``"fan_out"``, ``"fan_avg"``, ``"fan_geo_avg"``.
      distribution: one of ``"truncated_normal"``, ``"normal"``, ``"uniform"``.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes to ignore (stacked layers).
      dtype: the default dtype of the weights.

    Returns:
      An initializer, equal to ``jax.nn.initializers.variance_scaling`` value for value.

    Raises:
      ValueError: for an unknown ``mode``/``distribution`` or a negative/NaN ``scale``
        (when the factory is called); for a weight of rank < 2 with the default axes or
        an axis out of range (when the initializer is called).

    Examples:
      >>> import jax, jinit
      >>> init = jinit.variance_scaling(2.0, "fan_in", "normal")
      >>> w = init(jax.random.key(0), (512, 256))
      >>> bool(abs(float(w.var()) * 512 / 2.0 - 1) < 0.02)
      True

    References:
      Glorot & Bengio 2010; He et al. 2015 (arXiv:1502.01852); LeCun et al. 1998.
    """
    return _VarianceScaling(
        check_real("scale", scale, nonnegative=True),
        check_choice("mode", mode, MODES),
        check_choice("distribution", distribution, DISTRIBUTIONS),
        check_axes("in_axis", in_axis),
        check_axes("out_axis", out_axis),
        check_axes("batch_axis", batch_axis),
        check_dtype_arg("dtype", dtype),
    )


@factory("jinit.glorot_uniform")
def glorot_uniform(
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    """``variance_scaling(1.0, "fan_avg", "uniform")`` — Glorot & Bengio 2010.

    Examples:
      >>> import jinit
      >>> jinit.glorot_uniform() == jinit.xavier_uniform()
      True
    """
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


@factory("jinit.glorot_normal")
def glorot_normal(
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    """``variance_scaling(1.0, "fan_avg", "truncated_normal")`` — Glorot & Bengio 2010.

    Examples:
      >>> import jax, jinit
      >>> jinit.glorot_normal()(jax.random.key(0), (3, 3, 16, 32)).shape
      (3, 3, 16, 32)
    """
    return variance_scaling(
        1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype
    )


@factory("jinit.lecun_uniform")
def lecun_uniform(
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    """``variance_scaling(1.0, "fan_in", "uniform")`` — LeCun et al. 1998.

    Examples:
      >>> import jax, jinit
      >>> jinit.lecun_uniform()(jax.random.key(0), (4, 5)).shape
      (4, 5)
    """
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


@factory("jinit.lecun_normal")
def lecun_normal(
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    """``variance_scaling(1.0, "fan_in", "truncated_normal")`` — LeCun et al. 1998 (Flax's default).

    Examples:
      >>> import jax, jinit
      >>> jinit.lecun_normal()(jax.random.key(0), (4, 5)).shape
      (4, 5)
    """
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


@factory("jinit.he_uniform")
def he_uniform(
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    """``variance_scaling(2.0, "fan_in", "uniform")`` — He et al. 2015.

    Examples:
      >>> import jinit
      >>> jinit.he_uniform() == jinit.kaiming_uniform()
      True
    """
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


@factory("jinit.he_normal")
def he_normal(
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
    dtype: Any = None,
) -> Initializer:
    """``variance_scaling(2.0, "fan_in", "truncated_normal")`` — He et al. 2015.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.he_normal()(jax.random.key(0), (1024, 256))
      >>> bool(abs(float(w.var()) * 1024 / 2 - 1) < 0.03)
      True
    """
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


# --------------------------------------------------------------------------------------
# Orthogonal family
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Orthogonal(Initializer):
    scale: Any = 1.0
    column_axis: int = -1
    dtype: Any = None
    batch_axis: Any = ()
    method: str = "auto"
    name: ClassVar[str] = "orthogonal"

    def _init(self, key, shape, dtype, out_sharding):
        _require_rank("orthogonal", shape, 2, "a weight of rank >= 2")
        check_fits("scale", self.scale, dtype, reach=_mag(self.scale))
        column_axis = normalize_axis("column_axis", self.column_axis, len(shape), shape)
        batch = self.batch_axis if isinstance(self.batch_axis, tuple) else (self.batch_axis,)
        batch_axes = tuple(normalize_axis("batch_axis", a, len(shape), shape) for a in batch)
        if column_axis in batch_axes or len(set(batch_axes)) != len(batch_axes):
            raise ValueError(
                f"`batch_axis`={self.batch_axis!r} must not repeat an axis or include "
                f"`column_axis`={self.column_axis} (shape {shape})."
            )
        if self.method in _REAL_ONLY_METHODS and jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"orthogonal method={self.method!r} supports real dtypes only; got "
                f"{dtype.name}. Use method='auto' or 'qr' for unitary matrices."
            )
        return _samplers.orthogonal(
            key,
            self.scale,
            shape=shape,
            dtype=dtype,
            column_axis=column_axis,
            batch_axes=tuple(sorted(batch_axes)),
            method=self.method,
            out_sharding=out_sharding,
        )


@factory("jinit.orthogonal")
def orthogonal(
    scale: float = 1.0,
    column_axis: int = -1,
    dtype: Any = None,
    *,
    batch_axis: AxisSpec = (),
    method: OrthogonalMethod = "auto",
) -> Initializer:
    r"""Builds an initializer of (semi-)orthogonal matrices, uniformly (Haar) distributed.

    The weight is viewed as a matrix with ``shape[column_axis]`` columns and all other
    (non-batch) axes flattened into rows; the result has orthonormal columns (or rows,
    whichever is fewer), times ``scale``. With the defaults this equals
    ``jax.nn.initializers.orthogonal`` value for value (QR of a Gaussian matrix with the
    sign fix of Mezzadri 2007).

    Extensions over jax: ``batch_axis`` makes every slice along those axes an independent
    orthogonal matrix (stacked or scanned layers; jax flattens them into the rows);
    ``out_sharding`` is accepted (jax raises NotImplementedError) — the factorization is
    replicated work, then each device keeps its shard (under a bare ``jax.jit`` whose
    ``out_shardings`` split a stack axis, large householder stacks are factored where
    their slices live); float16/bfloat16 weights are
    computed in float32 and cast (jax's QR fails for them); ``method`` picks the sampling
    algorithm: ``"auto"`` (the default: ``"qr"`` for one matrix, so jax's values, and
    ``"householder"`` for a ``batch_axis`` stack of real matrices, the fastest measured
    there, with the same values on any mesh), ``"qr"``
    (jax's), ``"householder"`` (Stewart 1980, Householder reflectors of Gaussian vectors,
    matrix products only) or ``"cholesky_qr2"`` (fast for tall matrices, falls back to QR
    when Cholesky is unstable). All draw the same distribution; only ``"qr"`` (and
    ``"auto"`` for one matrix) reproduces jax's values.

    Args:
      scale: multiplier of the orthogonal matrix (negative flips the signs, as in jax).
      column_axis: the axis whose entries are the columns.
      dtype: the default dtype of the weights.
      batch_axis: axis or axes of independent matrices.
      method: ``"auto"`` (default), ``"qr"``, ``"householder"`` or ``"cholesky_qr2"``.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.orthogonal()(jax.random.key(0), (64, 32))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(32), atol=1e-5))
      True
      >>> stack = jinit.orthogonal(batch_axis=0)(jax.random.key(0), (4, 16, 16))
      >>> bool(jnp.allclose(stack[2] @ stack[2].T, jnp.eye(16), atol=1e-5))
      True

    References:
      Saxe et al. 2014 (arXiv:1312.6120); Mezzadri 2007 (arXiv:math-ph/0609050);
      Stewart 1980, SIAM J. Numer. Anal. 17(3).
    """
    return _Orthogonal(
        check_real("scale", scale),
        check_int("column_axis", column_axis),
        check_dtype_arg("dtype", dtype),
        check_axes("batch_axis", batch_axis),
        check_choice("method", method, ORTHOGONAL_METHODS),
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _DeltaOrthogonal(Initializer):
    scale: Any = 1.0
    column_axis: int = -1
    dtype: Any = None
    name: ClassVar[str] = "delta_orthogonal"

    def _init(self, key, shape, dtype, out_sharding):
        _require_rank("delta_orthogonal", shape, (3, 4, 5), "a 3-D, 4-D or 5-D conv kernel")
        if shape[-1] < shape[-2]:
            raise ValueError(
                "delta_orthogonal needs in_channels <= out_channels (shape[-2] <= shape[-1]); "
                f"got shape {shape}."
            )
        column_axis = normalize_axis("column_axis", self.column_axis, 2, shape[-2:])
        check_fits("scale", self.scale, dtype, reach=_mag(self.scale))
        if math.prod(shape) == 0:
            return _empty(shape, dtype, out_sharding)
        return _samplers.delta_orthogonal(
            key, self.scale, shape=shape, dtype=dtype, column_axis=column_axis,
            out_sharding=out_sharding,
        )  # fmt: skip


@factory("jinit.delta_orthogonal")
def delta_orthogonal(scale: float = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    r"""Builds a delta-orthogonal conv initializer (``jax.nn.initializers.delta_orthogonal``).

    For a kernel ``(*spatial, in, out)`` with ``in <= out``: an orthogonal ``(in, out)``
    matrix (times ``scale``) at the spatial index ``(k - 1) // 2`` of every spatial axis,
    zeros elsewhere, so that the convolution is norm-preserving at initialization.

    Args:
      scale: multiplier of the orthogonal block.
      column_axis: the axis of the ``(in, out)`` block holding the columns.
      dtype: the default dtype of the weights.

    Returns:
      An initializer for 3-D, 4-D and 5-D kernels.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.delta_orthogonal()(jax.random.key(0), (3, 3, 8, 16))
      >>> float(abs(w[0, 0]).sum()), w[1, 1].shape
      (0.0, (8, 16))

    References:
      Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs"
      (arXiv:1806.05393).
    """
    return _DeltaOrthogonal(
        check_real("scale", scale),
        check_int("column_axis", column_axis),
        check_dtype_arg("dtype", dtype),
    )
