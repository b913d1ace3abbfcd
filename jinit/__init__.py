"""jinit: weight initializers for JAX and Flax.

Every initializer follows the ``jax.nn.initializers`` protocol
``init(key, shape, dtype=None, out_sharding=None) -> jax.Array`` and, where jax has the
same initializer, returns the same values for the same key.

Examples:
  >>> import jax, jinit
  >>> w = jinit.he_normal()(jax.random.key(0), (3, 3, 16, 32))
  >>> w.shape, w.dtype
  ((3, 3, 16, 32), dtype('float32'))
"""

from jinit import keras as keras
from jinit import torch as torch
from jinit._core import Initializer as Initializer
from jinit._core import compute_fans as compute_fans
from jinit._gain import calculate_gain as calculate_gain
from jinit._initializers import constant as constant
from jinit._initializers import delta_orthogonal as delta_orthogonal
from jinit._initializers import glorot_normal as glorot_normal
from jinit._initializers import glorot_uniform as glorot_uniform
from jinit._initializers import he_normal as he_normal
from jinit._initializers import he_uniform as he_uniform
from jinit._initializers import kaiming_normal as kaiming_normal
from jinit._initializers import kaiming_uniform as kaiming_uniform
from jinit._initializers import lecun_normal as lecun_normal
from jinit._initializers import lecun_uniform as lecun_uniform
from jinit._initializers import normal as normal
from jinit._initializers import ones as ones
from jinit._initializers import orthogonal as orthogonal
from jinit._initializers import truncated_normal as truncated_normal
from jinit._initializers import uniform as uniform
from jinit._initializers import variance_scaling as variance_scaling
from jinit._initializers import xavier_normal as xavier_normal
from jinit._initializers import xavier_uniform as xavier_uniform
from jinit._initializers import zeros as zeros
from jinit._presets import deepnorm_alpha as deepnorm_alpha
from jinit._presets import deepnorm_beta as deepnorm_beta
from jinit._presets import deepnorm_normal as deepnorm_normal
from jinit._presets import fixup_branch as fixup_branch
from jinit._presets import fixup_scale as fixup_scale
from jinit._presets import gpt2_residual_normal as gpt2_residual_normal
from jinit._presets import mup_hidden as mup_hidden
from jinit._presets import mup_readout as mup_readout
from jinit._registry import get as get
from jinit._structured import dirac as dirac
from jinit._structured import identity as identity
from jinit._structured import sparse as sparse
from jinit._structured import uniform_unit_scaling as uniform_unit_scaling
from jinit.tools import Diagnosis as Diagnosis
from jinit.tools import LayerStats as LayerStats
from jinit.tools import LSUVLayer as LSUVLayer
from jinit.tools import LSUVReport as LSUVReport
from jinit.tools import ReinitReport as ReinitReport
from jinit.tools import TransferReport as TransferReport
from jinit.tools import diagnose as diagnose
from jinit.tools import fast_init as fast_init
from jinit.tools import from_checkpoint as from_checkpoint
from jinit.tools import lsuv as lsuv
from jinit.tools import lsuv_linen as lsuv_linen
from jinit.tools import reinit as reinit
from jinit.tools import transfer as transfer

__version__ = "0.1.0"


def __getattr__(name: str):
    """``jinit.train`` and ``jinit.repro`` load on first use (they pull in optax and the
    trainer, which the catalog does not need)."""
    if name in ("train", "repro"):
        import importlib

        return importlib.import_module(f"jinit.{name}")
    raise AttributeError(f"module 'jinit' has no attribute {name!r}")


# `torch` and `keras` are submodules (jinit.torch, jinit.keras); they stay out of __all__ so
# that `from jinit import *` does not shadow the real torch and keras packages.
__all__ = [
    "Initializer",
    "calculate_gain",
    "compute_fans",
    "constant",
    "delta_orthogonal",
    "dirac",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "sparse",
    "truncated_normal",
    "uniform",
    "uniform_unit_scaling",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
    # presets from the literature, and the model tools (jinit.tools)
    "Diagnosis",
    "LSUVLayer",
    "LSUVReport",
    "LayerStats",
    "ReinitReport",
    "TransferReport",
    "deepnorm_alpha",
    "deepnorm_beta",
    "deepnorm_normal",
    "diagnose",
    "fast_init",
    "fixup_branch",
    "fixup_scale",
    "from_checkpoint",
    "gpt2_residual_normal",
    "lsuv",
    "lsuv_linen",
    "reinit",
    "mup_hidden",
    "mup_readout",
    "transfer",
]
