"""Former home of the model tools and presets, kept so old imports keep working.

New code imports from the top level (``jinit.lsuv``, ``jinit.gpt2_residual_normal``) or from
:mod:`jinit.tools`; this module only re-exports those names.
"""

from jinit._presets import deepnorm_alpha as deepnorm_alpha
from jinit._presets import deepnorm_beta as deepnorm_beta
from jinit._presets import deepnorm_normal as deepnorm_normal
from jinit._presets import fixup_branch as fixup_branch
from jinit._presets import fixup_scale as fixup_scale
from jinit._presets import gpt2_residual_normal as gpt2_residual_normal
from jinit._presets import mup_hidden as mup_hidden
from jinit._presets import mup_readout as mup_readout
from jinit.tools import Diagnosis as Diagnosis
from jinit.tools import LayerStats as LayerStats
from jinit.tools import LSUVLayer as LSUVLayer
from jinit.tools import LSUVReport as LSUVReport
from jinit.tools import TransferReport as TransferReport
from jinit.tools import diagnose as diagnose
from jinit.tools import from_checkpoint as from_checkpoint
from jinit.tools import lsuv as lsuv
from jinit.tools import lsuv_linen as lsuv_linen
from jinit.tools import transfer as transfer

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
