"""Keras 3 initializer semantics, on the same (JAX/Keras) kernel layout.

Keras computes fans like jax for rank >= 2, but accepts 0-D (fans 1, 1) and 1-D (n, n)
shapes and divides by ``max(1, fan)``; ``distribution="normal"`` means a truncated
normal, ``"untruncated_normal"`` a plain one. Keras' default for Dense and Conv kernels
is :func:`glorot_uniform` (Flax's is lecun_normal).

Examples:
  >>> import jax, jinit.keras as kinit
  >>> kinit.he_normal()(jax.random.key(0), (7,)).shape  # 1-D works, as in Keras
  (7,)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, cast

from jinit import _initializers as _init
from jinit import _samplers
from jinit._core import Initializer
from jinit._initializers import _mag
from jinit._validate import check_choice, check_fits, check_real, factory

__all__ = [
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
]

KerasMode = Literal["fan_in", "fan_out", "fan_avg"]
KERAS_MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
KerasDistribution = Literal["truncated_normal", "untruncated_normal", "normal", "uniform"]
KERAS_DISTRIBUTIONS: tuple[str, ...] = (
    "truncated_normal",
    "untruncated_normal",
    "normal",
    "uniform",
)
_TO_JINIT: dict[str, Any] = {
    "truncated_normal": "truncated_normal",
    "normal": "truncated_normal",
    "untruncated_normal": "normal",
    "uniform": "uniform",
}


@factory("jinit.keras.random_normal")
def random_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """``keras.initializers.RandomNormal``: N(mean, stddev²).

    Examples:
      >>> import jinit.keras as kinit
      >>> kinit.random_normal()
      normal(stddev=0.05)
    """
    return _init.normal(stddev, mean=mean)


@factory("jinit.keras.random_uniform")
def random_uniform(minval: float = -0.05, maxval: float = 0.05) -> Initializer:
    """``keras.initializers.RandomUniform``: U[minval, maxval).

    Examples:
      >>> import jax, jinit.keras as kinit
      >>> w = kinit.random_uniform()(jax.random.key(0), (1000,))
      >>> bool(abs(w).max() <= 0.05)
      True
    """
    return _init.uniform_range(minval, maxval)


@factory("jinit.keras.truncated_normal")
def truncated_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """``keras.initializers.TruncatedNormal``: N(mean, stddev²) cut at ±2 stddev, no correction.

    Examples:
      >>> import jax, jinit.keras as kinit
      >>> w = kinit.truncated_normal()(jax.random.key(0), (1000,))
      >>> bool(abs(w).max() < 0.1)
      True
    """
    return _init.truncated_normal(stddev, mean=mean)


@factory("jinit.keras.variance_scaling")
def variance_scaling(
    scale: float = 1.0,
    mode: KerasMode = "fan_in",
    distribution: KerasDistribution = "truncated_normal",
) -> Initializer:
    r"""``keras.initializers.VarianceScaling``: Var = scale / max(1, n).

    ``n`` is fan_in, fan_out or their mean with Keras' fans; ``"truncated_normal"`` (and
    its Keras alias ``"normal"``) divides by the truncated std 0.8796 as jax does.

    Examples:
      >>> import jinit.keras as kinit
      >>> kinit.variance_scaling(2.0, distribution="untruncated_normal").distribution
      'normal'
    """
    scale = check_real("scale", scale, positive=True)
    mode = check_choice("mode", mode, KERAS_MODES)
    distribution = check_choice("distribution", distribution, KERAS_DISTRIBUTIONS)
    base = _init.variance_scaling(scale, mode, _TO_JINIT[distribution])
    return dataclasses.replace(cast(Any, base), fan_rule="keras")


@factory("jinit.keras.glorot_uniform")
def glorot_uniform() -> Initializer:
    """``keras.initializers.GlorotUniform`` (Keras' default kernel initializer).

    Examples:
      >>> import jinit.keras as kinit
      >>> init = kinit.glorot_uniform()
      >>> (init.scale, init.mode, init.distribution)
      (1.0, 'fan_avg', 'uniform')
    """
    return variance_scaling(1.0, "fan_avg", "uniform")


@factory("jinit.keras.glorot_normal")
def glorot_normal() -> Initializer:
    """``keras.initializers.GlorotNormal``: truncated normal, Var = 1 / fan_avg.

    Examples:
      >>> import jinit.keras as kinit
      >>> init = kinit.glorot_normal()
      >>> (init.scale, init.mode, init.distribution)
      (1.0, 'fan_avg', 'truncated_normal')
    """
    return variance_scaling(1.0, "fan_avg", "truncated_normal")


@factory("jinit.keras.he_uniform")
def he_uniform() -> Initializer:
    """``keras.initializers.HeUniform``: Var = 2 / fan_in, uniform.

    Examples:
      >>> import jinit.keras as kinit
      >>> init = kinit.he_uniform()
      >>> (init.scale, init.mode, init.distribution)
      (2.0, 'fan_in', 'uniform')
    """
    return variance_scaling(2.0, "fan_in", "uniform")


@factory("jinit.keras.he_normal")
def he_normal() -> Initializer:
    """``keras.initializers.HeNormal``: truncated normal, Var = 2 / fan_in.

    Examples:
      >>> import jinit.keras as kinit
      >>> init = kinit.he_normal()
      >>> (init.scale, init.mode, init.distribution)
      (2.0, 'fan_in', 'truncated_normal')
    """
    return variance_scaling(2.0, "fan_in", "truncated_normal")


@factory("jinit.keras.lecun_uniform")
def lecun_uniform() -> Initializer:
    """``keras.initializers.LecunUniform``: Var = 1 / fan_in, uniform.

    Examples:
      >>> import jinit.keras as kinit
      >>> init = kinit.lecun_uniform()
      >>> (init.scale, init.mode, init.distribution)
      (1.0, 'fan_in', 'uniform')
    """
    return variance_scaling(1.0, "fan_in", "uniform")


@factory("jinit.keras.lecun_normal")
def lecun_normal() -> Initializer:
    """``keras.initializers.LecunNormal``: truncated normal, Var = 1 / fan_in.

    Examples:
      >>> import jinit.keras as kinit
      >>> init = kinit.lecun_normal()
      >>> (init.scale, init.mode, init.distribution)
      (1.0, 'fan_in', 'truncated_normal')
    """
    return variance_scaling(1.0, "fan_in", "truncated_normal")


@factory("jinit.keras.orthogonal")
def orthogonal(gain: float = 1.0) -> Initializer:
    """``keras.initializers.Orthogonal``: ``(prod(shape[:-1]), shape[-1])`` orthogonal, times gain.

    Examples:
      >>> import jinit, jinit.keras as kinit
      >>> kinit.orthogonal() == jinit.orthogonal()
      True
    """
    return _init.orthogonal(check_real("gain", gain, nonnegative=True))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _KerasIdentity(Initializer):
    gain: Any = 1.0
    name: ClassVar[str] = "keras.identity"

    def _init(self, key, shape, dtype, out_sharding):
        if len(shape) != 2:
            raise ValueError(f"keras.identity needs a 2-D weight; got shape {shape}.")
        check_fits("gain", self.gain, dtype, reach=_mag(self.gain))
        return _samplers.identity(self.gain, shape=shape, dtype=dtype, out_sharding=out_sharding)


@factory("jinit.keras.identity")
def identity(gain: float = 1.0) -> Initializer:
    """``keras.initializers.Identity``: ``gain * eye`` for 2-D weights.

    Examples:
      >>> import jax, jinit.keras as kinit
      >>> kinit.identity(2.0)(jax.random.key(0), (2, 2)).tolist()
      [[2.0, 0.0], [0.0, 2.0]]
    """
    return _KerasIdentity(check_real("gain", gain))
