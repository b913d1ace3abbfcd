"""Structured and research initializers: identity, dirac, sparse, uniform unit scaling."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal, cast

from jinit import _samplers
from jinit._core import Initializer, replicated
from jinit._initializers import _empty, _in_dtype, _mag, _require_rank, _sqrt
from jinit._validate import (
    check_choice,
    check_dtype_arg,
    check_fits,
    check_int,
    check_real,
    factory,
    normal_reach,
)

__all__ = ["dirac", "identity", "sparse", "uniform_unit_scaling"]


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Identity(Initializer):
    scale: Any = 1.0
    dtype: Any = None
    name: ClassVar[str] = "identity"

    def _init(self, key, shape, dtype, out_sharding):
        _require_rank("identity", shape, 2, "a weight of rank >= 2")
        check_fits("scale", self.scale, dtype, reach=_mag(self.scale))
        return _samplers.identity(self.scale, shape=shape, dtype=dtype, out_sharding=out_sharding)


@factory("jinit.identity")
def identity(scale: float = 1.0, dtype: Any = None) -> Initializer:
    r"""Builds an initializer of ``scale`` times the identity on the last two axes.

    Non-square shapes get ``eye(shape[-2], shape[-1])``; leading axes are broadcast
    (Haiku's ``Identity``). With ReLU recurrent nets this is the IRNN initialization.

    Args:
      scale: the diagonal value.
      dtype: the default dtype of the weights.

    Returns:
      An initializer; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> jinit.identity(0.5)(jax.random.key(0), (2, 3)).tolist()
      [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]

    References:
      Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of
      Rectified Linear Units" (arXiv:1504.00941).
    """
    return _Identity(check_real("scale", scale), check_dtype_arg("dtype", dtype))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Dirac(Initializer):
    scale: Any = 1.0
    groups: int = 1
    dtype: Any = None
    name: ClassVar[str] = "dirac"

    def _init(self, key, shape, dtype, out_sharding):
        _require_rank("dirac", shape, (3, 4, 5), "a 3-D, 4-D or 5-D conv kernel")
        if shape[-1] % self.groups:
            raise ValueError(
                f"dirac needs out_channels (shape[-1]={shape[-1]}) divisible by "
                f"`groups`={self.groups}; got shape {shape}."
            )
        check_fits("scale", self.scale, dtype, reach=_mag(self.scale))
        if math.prod(shape) == 0:
            return _empty(shape, dtype, out_sharding)
        return _samplers.dirac(
            self.scale, shape=shape, dtype=dtype, groups=self.groups, out_sharding=out_sharding
        )


@factory("jinit.dirac")
def dirac(scale: float = 1.0, groups: int = 1, dtype: Any = None) -> Initializer:
    r"""Builds a Dirac-delta conv initializer: the convolution passes channels through.

    For a kernel ``(*spatial, in, out)``, at the spatial centre ``k // 2`` (PyTorch's
    convention) ``w[..., d, g * out_per_group + d] = scale`` for each group ``g`` and
    ``d < min(in, out // groups)``; zeros elsewhere. Equivalent to ``torch.nn.init.dirac_``
    on the JAX kernel layout.

    Args:
      scale: the value on the pass-through taps.
      groups: number of groups (``out`` must be divisible by it).
      dtype: the default dtype of the weights.

    Returns:
      An initializer; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.dirac()(jax.random.key(0), (3, 3, 4, 4))
      >>> w[1, 1].tolist() == jax.numpy.eye(4).tolist(), float(w.sum())
      (True, 4.0)
    """
    return _Dirac(
        check_real("scale", scale),
        check_int("groups", groups, minimum=1),
        check_dtype_arg("dtype", dtype),
    )


SparseUnit = Literal["output", "input"]


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Sparse(Initializer):
    sparsity: Any = None
    nonzero: Any = None
    stddev: Any = 0.01
    dtype: Any = None
    unit: str = "output"
    exact_rank2: bool = False
    supports_complex: ClassVar[bool] = False
    name: ClassVar[str] = "sparse"

    def _init(self, key, shape, dtype, out_sharding):
        if self.exact_rank2 and len(shape) != 2:  # torch.nn.init.sparse_
            raise ValueError(
                f"torch.sparse needs a 2-D weight (as torch.nn.init.sparse_: 'Only tensors with "
                f"2 dimensions are supported'); got shape {shape}."
            )
        _require_rank("sparse", shape, 2, "a weight of rank >= 2")
        reach = _mag(self.stddev) * normal_reach(dtype)
        check_fits("stddev", self.stddev, dtype, reach=reach, detail="normal draws reach ±6 stddev")
        n_out = shape[-1]
        n_in = math.prod(shape[:-1])
        if math.prod(shape) == 0:
            return _empty(shape, dtype, out_sharding)
        # Each unit's weights lie along `axis` of the (n_in, n_out) matrix.
        count = n_in if self.unit == "output" else n_out
        axis = 0 if self.unit == "output" else 1
        if self.nonzero is not None:
            if self.nonzero > count:
                raise ValueError(
                    f"`nonzero`={self.nonzero} exceeds the {count} weights each {self.unit} "
                    f"unit has in a weight of shape {shape}."
                )
            num_zeros = count - self.nonzero
        else:
            num_zeros = math.ceil(self.sparsity * count)
        w = _samplers.sparse(
            key,
            _in_dtype(self.stddev, dtype),
            shape=(n_in, n_out),
            dtype=dtype,
            num_zeros=num_zeros,
            axis=axis,
            out_sharding=replicated(out_sharding),
        )
        return _samplers.full(w.reshape(shape), shape=shape, dtype=dtype, out_sharding=out_sharding)


@factory("jinit.sparse")
def sparse(
    sparsity: float | None = None,
    *,
    nonzero: int | None = None,
    stddev: float = 0.01,
    dtype: Any = None,
) -> Initializer:
    r"""Builds a sparse initializer: N(0, stddev²) weights with a fixed number of zeros per unit.

    The weight is viewed as ``(prod(shape[:-1]), shape[-1])`` = (fan_in, units). Give
    exactly one of:

    * ``sparsity``: for each output unit, ``ceil(sparsity * fan_in)`` of its incoming
      weights are zero (the fraction of ``torch.nn.init.sparse_``);
    * ``nonzero``: each output unit has exactly ``nonzero`` non-zero incoming weights
      (Martens 2010 uses 15).

    The zero positions are uniformly random and independent across units.
    ``jinit.torch.sparse`` reproduces PyTorch's exact semantics instead (zeros counted
    along the output axis, per input unit, which is what ``sparse_`` does on a
    ``(out, in)`` weight).

    Args:
      sparsity: fraction of zeros per unit, in [0, 1).
      nonzero: number of non-zeros per unit (positive int).
      stddev: standard deviation of the non-zero weights.
      dtype: the default dtype of the weights.

    Returns:
      An initializer (real dtypes).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.sparse(nonzero=15)(jax.random.key(0), (100, 8))
      >>> (w != 0).sum(axis=0).tolist()
      [15, 15, 15, 15, 15, 15, 15, 15]

    References:
      Martens 2010, "Deep learning via Hessian-free optimization" (ICML).
    """
    if (sparsity is None) == (nonzero is None):
        raise ValueError(
            f"give exactly one of `sparsity` or `nonzero`; got sparsity={sparsity!r}, "
            f"nonzero={nonzero!r}."
        )
    if sparsity is not None:
        sparsity = check_real("sparsity", sparsity)
        if not 0 <= sparsity < 1:
            raise ValueError(f"`sparsity` must be in [0, 1); got {sparsity!r}.")
    else:
        nonzero = check_int("nonzero", nonzero, minimum=1)
    return _Sparse(
        sparsity,
        nonzero,
        check_real("stddev", stddev, nonnegative=True),
        check_dtype_arg("dtype", dtype),
    )


def _torch_sparse(sparsity: float, stddev: float, unit: str = "input") -> Initializer:
    """PyTorch's ``sparse_``: 2-D only; zeros counted per input unit (``unit="input"`` on
    the JAX layout ``(in, out)``, ``"output"`` on the torch layout ``(out, in)``)."""
    base = sparse(sparsity, stddev=stddev)
    unit = check_choice("unit", unit, ("input", "output"))
    return dataclasses.replace(cast(Any, base), unit=unit, exact_rank2=True)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _UniformUnitScaling(Initializer):
    factor: Any = 1.0
    dtype: Any = None
    supports_complex: ClassVar[bool] = False
    name: ClassVar[str] = "uniform_unit_scaling"

    def _init(self, key, shape, dtype, out_sharding):
        if math.prod(shape) == 0:
            return _empty(shape, dtype, out_sharding)
        input_size = max(1, math.prod(shape[:-1]))
        check_fits(
            "factor", self.factor, dtype, reach=_mag(self.factor) * math.sqrt(3 / input_size)
        )
        limit = _in_dtype(self.factor, dtype) * _sqrt(_in_dtype(3.0 / input_size, dtype))
        return _samplers.uniform(
            key, -1.0, 1.0, limit, _in_dtype(0, dtype), shape=shape, dtype=dtype,
            out_sharding=out_sharding,
        )  # fmt: skip


@factory("jinit.uniform_unit_scaling")
def uniform_unit_scaling(factor: float = 1.0, dtype: Any = None) -> Initializer:
    r"""Builds TF1's ``uniform_unit_scaling_initializer``.

    .. math::
        w \sim U\left(-\mathrm{factor}\sqrt{3/n},\ \mathrm{factor}\sqrt{3/n}\right), \quad
        n = \max\left(1, \textstyle\prod \mathrm{shape}[:-1]\right)

    so that a linear layer keeps the scale of its input (Sussillo & Abbott 2014); the
    factor plays the role of a gain (e.g. 1.43 for ReLU in the TF1 docs).

    Args:
      factor: multiplicative factor (non-negative).
      dtype: the default dtype of the weights.

    Returns:
      An initializer (real dtypes).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.uniform_unit_scaling()(jax.random.key(0), (300, 10))
      >>> bool(abs(w).max() <= 0.1)
      True

    References:
      Sussillo & Abbott 2014, "Random Walk Initialization for Training Very Deep
      Feedforward Networks" (arXiv:1412.6558).
    """
    return _UniformUnitScaling(
        check_real("factor", factor, nonnegative=True), check_dtype_arg("dtype", dtype)
    )
