"""PyTorch's ``torch.nn.init`` semantics, on JAX kernel layout ``(*spatial, in, out)``.

A model ported from PyTorch starts from the same distribution when its Flax layers use
these. Fans are computed the way PyTorch computes them, translated to the JAX layout:
``fan_in = in * prod(spatial)``, ``fan_out = out * prod(spatial)``. PyTorch's functions
mutate a tensor in place; these return initializers with the jax protocol.

Code that keeps PyTorch's own layout ``(out, in, *kernel)`` passes ``layout="torch"``:
the fans are then read from that layout and the array comes back in it. Without it, a
torch-layout shape is read as a JAX one: ``(64, 3, 7, 7)`` would get fan_in = 7 * 64 * 3
instead of 3 * 7 * 7, silently.

Errors are those PyTorch raises where it raises (``ValueError`` for a wrong rank, an
unknown mode or nonlinearity, or a non-numeric slope).

Examples:
  >>> import jax, jinit.torch as tinit
  >>> w = tinit.linear_default()(jax.random.key(0), (64, 10))  # nn.Linear(64, 10).weight.T
  >>> b = tinit.bias_default(64)(jax.random.key(1), (10,))
  >>> bool(abs(w).max() <= 1 / 8 and abs(b).max() <= 1 / 8)
  True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import jax.numpy as jnp

from jinit import _initializers as _init
from jinit import _samplers
from jinit._core import Initializer, constrain
from jinit._gain import calculate_gain
from jinit._structured import _torch_sparse
from jinit._structured import dirac as _dirac
from jinit._validate import check_choice, check_fits, check_int, check_real, factory, is_tracer

__all__ = [
    "bias_default",
    "dirac",
    "embedding_default",
    "eye",
    "kaiming_normal",
    "kaiming_uniform",
    "linear_default",
    "normal",
    "orthogonal",
    "sparse",
    "trunc_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
]

TorchMode = Literal["fan_in", "fan_out"]
TORCH_MODES: tuple[str, ...] = ("fan_in", "fan_out")
Layout = Literal["jax", "torch"]
LAYOUTS: tuple[str, ...] = ("jax", "torch")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _TorchLayout(Initializer):
    """``base`` applied to PyTorch's layout ``(out, in, *kernel)``.

    The weight is drawn on the JAX layout ``(*kernel, in, out)`` (so the fans are
    PyTorch's) and transposed; rank < 2 shapes (biases) pass through unchanged.
    """

    base: Initializer
    name: ClassVar[str] = "torch_layout"

    @property
    def supports_complex(self) -> bool:  # type: ignore[override]
        return self.base.supports_complex

    def _init(self, key, shape, dtype, out_sharding):
        if len(shape) < 2:
            return self.base(key, shape, dtype, out_sharding)
        jax_shape = (*shape[2:], shape[1], shape[0])
        w = self.base(key, jax_shape, dtype)
        rank = len(shape)
        w = jnp.transpose(w, (rank - 1, rank - 2, *range(rank - 2)))
        return constrain(w, out_sharding)

    def __repr__(self) -> str:
        return f"torch_layout({self.base!r})"


def _laid_out(init: Initializer, layout: str) -> Initializer:
    layout = check_choice("layout", layout, LAYOUTS)
    return _TorchLayout(init) if layout == "torch" else init


def _torch_number(name: str, value: Any) -> float:
    """A real number, ValueError otherwise (PyTorch raises ValueError for a bad slope)."""
    try:
        return check_real(name, value)
    except TypeError as e:
        raise ValueError(str(e)) from None


@factory("jinit.torch.uniform")
def uniform(a: float = 0.0, b: float = 1.0, *, layout: Layout = "jax") -> Initializer:
    """``torch.nn.init.uniform_``: U[a, b).

    Examples:
      >>> import jax, jinit.torch as tinit
      >>> w = tinit.uniform(-1.0, 1.0)(jax.random.key(0), (1000,))
      >>> bool((w >= -1).all() and (w < 1).all())
      True
    """
    check_choice("layout", layout, LAYOUTS)  # elementwise: the same on either layout
    return _init.uniform_range(a, b)


@factory("jinit.torch.normal")
def normal(mean: float = 0.0, std: float = 1.0, *, layout: Layout = "jax") -> Initializer:
    """``torch.nn.init.normal_``: N(mean, std²).

    Examples:
      >>> import jinit.torch as tinit
      >>> tinit.normal(0.0, 0.02)
      normal(stddev=0.02)
    """
    check_choice("layout", layout, LAYOUTS)
    return _init.normal(check_real("std", std, nonnegative=True), mean=mean)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _TruncNormal(Initializer):
    mean: Any = 0.0
    std: Any = 1.0
    a: Any = -2.0
    b: Any = 2.0
    supports_complex: ClassVar[bool] = False
    name: ClassVar[str] = "torch.trunc_normal"

    def _init(self, key, shape, dtype, out_sharding):
        # Low-precision dtypes are computed in float32 and rounded once (as every jinit
        # sampler does): in bfloat16 a small-std truncated normal otherwise piles its mass
        # on the bounds (a known PyTorch pitfall). The draw is exact in the far tails.
        lower = (self.a - self.mean) / self.std
        upper = (self.b - self.mean) / self.std
        if not any(is_tracer(v) for v in (self.mean, self.std, self.a, self.b)):
            reach = _init._bound_reach(lower, upper, dtype) * self.std + abs(self.mean)
            check_fits("std", self.std, dtype, reach=min(reach, max(abs(self.a), abs(self.b))))
        cdt = _samplers.compute_dtype(dtype)
        return _samplers.tail_truncated_normal_scaled(
            key, lower, upper, _init._in_dtype(self.std, dtype), _init._in_dtype(self.mean, dtype),
            _init._in_dtype(self.a, cdt), _init._in_dtype(self.b, cdt),
            shape=shape, dtype=dtype, out_sharding=out_sharding,
        )  # fmt: skip


@factory("jinit.torch.trunc_normal")
def trunc_normal(
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    layout: Layout = "jax",
) -> Initializer:
    r"""``torch.nn.init.trunc_normal_``: N(mean, std²) truncated to the *absolute* range [a, b].

    Unlike ``jinit.truncated_normal`` the bounds are values, not multiples of ``std``, and
    no variance correction is applied (as in PyTorch). Low-precision dtypes are sampled in
    float32 and cast, and the result stays inside ``[a, b]`` after the cast. Far tails
    are sampled exactly (inverse CDF in log space): ``trunc_normal(0, 1, 10, 11)`` has the
    truncated distribution's mean 10.098, where the erf-based method PyTorch uses returns
    11.0 for every draw in float32.

    Examples:
      >>> import jax, jinit.torch as tinit
      >>> w = tinit.trunc_normal(std=0.02, a=-0.04, b=0.04)(jax.random.key(0), (1000,))
      >>> bool((abs(w) <= 0.04).all())
      True
    """
    check_choice("layout", layout, LAYOUTS)
    mean = check_real("mean", mean)
    std = check_real("std", std, positive=True)
    a, b = _init._check_bounds("a", a, "b", b)
    return _TruncNormal(mean, std, a, b)


@factory("jinit.torch.xavier_uniform")
def xavier_uniform(gain: float = 1.0, *, layout: Layout = "jax") -> Initializer:
    r"""``torch.nn.init.xavier_uniform_``: U(±gain·sqrt(6 / (fan_in + fan_out))).

    Examples:
      >>> import jinit, jinit.torch as tinit
      >>> tinit.xavier_uniform() == jinit.glorot_uniform()
      True
    """
    gain = check_real("gain", gain, nonnegative=True)
    return _laid_out(_init.variance_scaling(_square("gain", gain), "fan_avg", "uniform"), layout)


@factory("jinit.torch.xavier_normal")
def xavier_normal(gain: float = 1.0, *, layout: Layout = "jax") -> Initializer:
    r"""``torch.nn.init.xavier_normal_``: N(0, gain²·2 / (fan_in + fan_out)), untruncated.

    Examples:
      >>> import jinit.torch as tinit
      >>> tinit.xavier_normal(2.0)
      variance_scaling(scale=4.0, mode='fan_avg', distribution='normal')
    """
    gain = check_real("gain", gain, nonnegative=True)
    return _laid_out(_init.variance_scaling(_square("gain", gain), "fan_avg", "normal"), layout)


def _square(name: str, gain: float) -> float:
    """gain², refused (ValueError) when it overflows float64 (gain=1e200)."""
    square = gain * gain
    if math.isinf(square):
        raise ValueError(f"`{name}`={gain!r} is too large: its square overflows float64.")
    return square


def _kaiming_scale(a: float, nonlinearity: str) -> float:
    """gain², computed without a sqrt round trip; ``a`` is only leaky_relu's slope."""
    if nonlinearity == "leaky_relu":
        return 2.0 / (1 + a * a)
    if nonlinearity == "relu":
        return 2.0
    return calculate_gain(nonlinearity) ** 2


@factory("jinit.torch.kaiming_uniform")
def kaiming_uniform(
    a: float = 0.0,
    mode: TorchMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    layout: Layout = "jax",
) -> Initializer:
    r"""``torch.nn.init.kaiming_uniform_``: U(±gain·sqrt(3 / fan)).

    ``gain = calculate_gain(nonlinearity, a)``, ``a`` being leaky_relu's negative slope.

    Note PyTorch's defaults: ``nonlinearity="leaky_relu"`` with ``a=0`` is the relu gain.

    Examples:
      >>> import jinit, jinit.torch as tinit
      >>> tinit.kaiming_uniform(nonlinearity="relu") == jinit.he_uniform()
      True
    """
    a = _torch_number("a", a)
    mode = check_choice("mode", mode, TORCH_MODES)
    scale = _kaiming_scale(a, nonlinearity)
    return _laid_out(_init.variance_scaling(scale, mode, "uniform"), layout)


@factory("jinit.torch.kaiming_normal")
def kaiming_normal(
    a: float = 0.0,
    mode: TorchMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    layout: Layout = "jax",
) -> Initializer:
    r"""``torch.nn.init.kaiming_normal_``: N(0, gain² / fan), untruncated.

    Examples:
      >>> import jinit.torch as tinit
      >>> tinit.kaiming_normal(mode="fan_out", nonlinearity="relu")
      variance_scaling(scale=2.0, mode='fan_out', distribution='normal')
    """
    a = _torch_number("a", a)
    mode = check_choice("mode", mode, TORCH_MODES)
    scale = _kaiming_scale(a, nonlinearity)
    return _laid_out(_init.variance_scaling(scale, mode, "normal"), layout)


@factory("jinit.torch.orthogonal")
def orthogonal(gain: float = 1.0, *, layout: Layout = "jax") -> Initializer:
    """``torch.nn.init.orthogonal_``: QR with sign fix; orthonormal over the output axis.

    PyTorch flattens ``(out, in, *k)`` to ``(out, in·k)``; on the JAX layout that is the
    last axis against all others, which is ``jinit.orthogonal(scale=gain)``.

    Examples:
      >>> import jinit, jinit.torch as tinit
      >>> tinit.orthogonal(2.0) == jinit.orthogonal(2.0)
      True
    """
    return _laid_out(_init.orthogonal(check_real("gain", gain, nonnegative=True)), layout)


@factory("jinit.torch.sparse")
def sparse(sparsity: float, std: float = 0.01, *, layout: Layout = "jax") -> Initializer:
    """``torch.nn.init.sparse_`` on the JAX layout ``(in, out)``.

    PyTorch zeroes ``ceil(sparsity · out)`` entries in each column of its ``(out, in)``
    weight, i.e. per *input* unit; on the transposed JAX kernel that is per row. (For
    zeros counted per output unit, as in Martens 2010, use :func:`jinit.sparse`.) Like
    ``sparse_``, only 2-D weights are accepted (``ValueError`` otherwise);
    ``layout="torch"`` takes the ``(out, in)`` weight itself.

    Examples:
      >>> import jax, jinit.torch as tinit
      >>> w = tinit.sparse(0.5)(jax.random.key(0), (3, 10))  # nn.Linear(3, 10)
      >>> (w == 0).sum(axis=1).tolist()
      [5, 5, 5]
    """
    init = _torch_sparse(sparsity, check_real("std", std, nonnegative=True))
    return _laid_out(init, layout)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Eye(Initializer):
    name: ClassVar[str] = "torch.eye"

    def _init(self, key, shape, dtype, out_sharding):
        if len(shape) != 2:
            raise ValueError(f"torch.eye needs a 2-D weight; got shape {shape}.")
        return _samplers.identity(1.0, shape=shape, dtype=dtype, out_sharding=out_sharding)


@factory("jinit.torch.eye")
def eye(*, layout: Layout = "jax") -> Initializer:
    """``torch.nn.init.eye_``: the 2-D identity (``eye(in, out)`` on the JAX layout).

    Examples:
      >>> import jax, jinit.torch as tinit
      >>> tinit.eye()(jax.random.key(0), (2, 2)).tolist()
      [[1.0, 0.0], [0.0, 1.0]]
    """
    check_choice("layout", layout, LAYOUTS)  # eye(n, m) of the given shape either way
    return _Eye()


@factory("jinit.torch.dirac")
def dirac(groups: int = 1, *, layout: Layout = "jax") -> Initializer:
    """``torch.nn.init.dirac_``: identity-preserving conv kernel (centre ``k // 2``).

    Examples:
      >>> import jinit, jinit.torch as tinit
      >>> tinit.dirac(2) == jinit.dirac(groups=2)
      True
    """
    return _laid_out(_dirac(groups=groups), layout)


@factory("jinit.torch.linear_default")
def linear_default(*, layout: Layout = "jax") -> Initializer:
    r"""What ``torch.nn.Linear`` and ``torch.nn.Conv*d`` do to their weight.

    ``kaiming_uniform_(a=sqrt(5))``: gain² = 2 / (1 + 5) = 1/3, so the bound is
    ``sqrt(1/3) · sqrt(3 / fan_in) = 1 / sqrt(fan_in)``: U(±1/sqrt(fan_in)).

    Examples:
      >>> import jinit.torch as tinit
      >>> tinit.linear_default()
      variance_scaling(scale=0.333..., mode='fan_in', distribution='uniform')
    """
    return kaiming_uniform(a=math.sqrt(5.0), layout=layout)


@factory("jinit.torch.bias_default")
def bias_default(fan_in: int) -> Initializer:
    r"""What ``torch.nn.Linear``/``Conv*d`` do to their bias: U(±1/sqrt(fan_in)).

    ``fan_in`` is the weight's (``in_features``, or ``in_channels/groups · prod(kernel)``);
    a zero ``fan_in`` gives zeros, as in PyTorch.

    Examples:
      >>> import jax, jinit.torch as tinit
      >>> b = tinit.bias_default(16)(jax.random.key(0), (1000,))
      >>> bool(abs(b).max() <= 0.25)
      True
    """
    fan_in = check_int("fan_in", fan_in, minimum=0, maximum=2**53)
    if fan_in == 0:
        return _init.zeros
    bound = 1.0 / math.sqrt(fan_in)
    return _init.uniform_range(-bound, bound)


@factory("jinit.torch.embedding_default")
def embedding_default() -> Initializer:
    """What ``torch.nn.Embedding`` does to its weight: N(0, 1).

    Examples:
      >>> import jinit.torch as tinit
      >>> tinit.embedding_default()
      normal(stddev=1.0)
    """
    return _init.normal(1.0)
