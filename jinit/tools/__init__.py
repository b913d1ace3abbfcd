"""Model tools: work on whole Flax models rather than single arrays.

- :func:`lsuv` / :func:`lsuv_linen`: layer-sequential unit-variance init (Mishkin & Matas 2016).
- :func:`from_checkpoint` / :func:`transfer`: start from stored arrays (safetensors incl.
  sharded Hugging Face checkpoints, orbax, npz), PyTorch layouts included.
- :func:`diagnose`: per-layer activation and gradient statistics at init (incl. the
  gradient with respect to each layer's output), with every skipped layer and why.
- :func:`fast_init`: ``jax.jit`` of a whole model's init with one copy of the random-number
  code per distinct (sampler, shape, dtype) instead of one per parameter.
- :func:`reinit`: re-initialize an existing model's parameters by patterns on their paths.

Every name here is also available at the top level (``jinit.lsuv`` is ``jinit.tools.lsuv``).
"""

from jinit.tools._diagnose import Diagnosis as Diagnosis
from jinit.tools._diagnose import LayerStats as LayerStats
from jinit.tools._diagnose import diagnose as diagnose
from jinit.tools._fast_init import fast_init as fast_init
from jinit.tools._lsuv import LSUVLayer as LSUVLayer
from jinit.tools._lsuv import LSUVReport as LSUVReport
from jinit.tools._lsuv import lsuv as lsuv
from jinit.tools._lsuv import lsuv_linen as lsuv_linen
from jinit.tools._reinit import ReinitReport as ReinitReport
from jinit.tools._reinit import reinit as reinit
from jinit.tools._transfer import TransferReport as TransferReport
from jinit.tools._transfer import from_checkpoint as from_checkpoint
from jinit.tools._transfer import transfer as transfer

__all__ = [
    "Diagnosis",
    "LSUVLayer",
    "LSUVReport",
    "LayerStats",
    "ReinitReport",
    "TransferReport",
    "diagnose",
    "fast_init",
    "from_checkpoint",
    "lsuv",
    "lsuv_linen",
    "reinit",
    "transfer",
]
