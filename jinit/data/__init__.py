"""Beyond the anchors: data-dependent, pretrained and depth-aware initialization.

- :func:`lsuv` / :func:`lsuv_linen`: layer-sequential unit-variance init (Mishkin & Matas 2016).
- :func:`from_checkpoint` / :func:`transfer`: start from stored arrays (safetensors, npz),
  PyTorch layouts included.
- Presets: GPT-2 residual projections, DeepNet/DeepNorm, Fixup, muP.
- :func:`diagnose`: per-layer activation statistics and gradient norms at init.
"""

from jinit.data.diagnose import Diagnosis as Diagnosis
from jinit.data.diagnose import LayerStats as LayerStats
from jinit.data.diagnose import diagnose as diagnose
from jinit.data.lsuv import LSUVLayer as LSUVLayer
from jinit.data.lsuv import LSUVReport as LSUVReport
from jinit.data.lsuv import lsuv as lsuv
from jinit.data.lsuv import lsuv_linen as lsuv_linen
from jinit.data.presets import deepnorm_alpha as deepnorm_alpha
from jinit.data.presets import deepnorm_beta as deepnorm_beta
from jinit.data.presets import deepnorm_normal as deepnorm_normal
from jinit.data.presets import fixup_branch as fixup_branch
from jinit.data.presets import fixup_scale as fixup_scale
from jinit.data.presets import gpt2_residual_normal as gpt2_residual_normal
from jinit.data.presets import mup_hidden as mup_hidden
from jinit.data.presets import mup_readout as mup_readout
from jinit.data.pretrained import TransferReport as TransferReport
from jinit.data.pretrained import from_checkpoint as from_checkpoint
from jinit.data.pretrained import transfer as transfer

__all__ = [
    "Diagnosis",
    "LSUVLayer",
    "LSUVReport",
    "LayerStats",
    "TransferReport",
    "deepnorm_alpha",
    "deepnorm_beta",
    "deepnorm_normal",
    "diagnose",
    "fixup_branch",
    "fixup_scale",
    "from_checkpoint",
    "gpt2_residual_normal",
    "lsuv",
    "lsuv_linen",
    "mup_hidden",
    "mup_readout",
    "transfer",
]
