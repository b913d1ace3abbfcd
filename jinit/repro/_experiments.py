"""The experiments: each builds its data and networks as the paper or course did.

Every function takes ``quick`` (a small, seconds-long version for tests and the notebook)
and ``progress`` and returns a :class:`~jinit.repro._result.Reproduction` whose findings
are computed from the measurements by the criterion each one states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jinit.repro._course import course
from jinit.repro._cs231n import cs231n
from jinit.repro._glorot_bengio import glorot_bengio
from jinit.repro._he import he_deep_relu
from jinit.repro._lsuv import lsuv
from jinit.repro._result import Reproduction
from jinit.repro._saxe import saxe

EXPERIMENTS: Mapping[str, Callable[..., Reproduction]] = {
    "course": course,
    "glorot-bengio": glorot_bengio,
    "he-deep-relu": he_deep_relu,
    "saxe": saxe,
    "lsuv": lsuv,
    "cs231n": cs231n,
}
"""``{name: experiment(quick=..., progress=...)}`` in :data:`jinit.repro.NAMES` order."""
