"""Beyond the anchors: data-dependent, pretrained and depth-aware initialization.

- :func:`lsuv` / :func:`lsuv_linen`: layer-sequential unit-variance init (Mishkin & Matas 2016).
- :func:`from_checkpoint` / :func:`transfer`: start from stored arrays (safetensors, npz),
  PyTorch layouts included.
- Presets: GPT-2 residual projections, DeepNet/DeepNorm, Fixup, muP.
- :func:`diagnose`: per-layer activation statistics and gradient norms at init.
"""

from jinit.data.lsuv import LSUVLayer as LSUVLayer
from jinit.data.lsuv import LSUVReport as LSUVReport
from jinit.data.lsuv import lsuv as lsuv
from jinit.data.lsuv import lsuv_linen as lsuv_linen
from jinit.data.pretrained import TransferReport as TransferReport
from jinit.data.pretrained import from_checkpoint as from_checkpoint
from jinit.data.pretrained import transfer as transfer

__all__ = [
    "LSUVLayer",
    "LSUVReport",
    "TransferReport",
    "from_checkpoint",
    "lsuv",
    "lsuv_linen",
    "transfer",
]
