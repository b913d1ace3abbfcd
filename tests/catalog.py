"""One registry of initializers that drives the parametrized core tests.

Each entry names an initializer, builds it with jinit and (where jax has the same
initializer) with jax.nn.initializers, and gives the closed-form moments of its
distribution for a weight shape, so one table drives parity, statistics, determinism,
dtype and bad-input tests.

Two tiers (see tests/conftest.py): the per-entry tests that compile a program of their own
for every entry (jit and vmap of the entry, jax's reference values, 16-bit and complex
dtypes) take their cases from ``tiered(...)``, which runs the entries in ``FAST`` (one per
family and per sampler, checked by tests/test_protocol.py) in the fast tier and the rest of
the catalog in the slow tier only. The cheap per-entry tests (moments against the closed form,
eval_shape, empty shapes, complex refusals) and the fuzzing of every public factory run on
every entry in both tiers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import pytest
import scipy.stats

import jinit

J = jax.nn.initializers
TN_STD = 0.87962566103423978  # std of N(0, 1) truncated to (-2, 2)


@dataclasses.dataclass(frozen=True)
class Entry:
    id: str
    make: Callable[[], Callable]
    jax_make: Callable[[], Callable] | None = None
    # (mean, variance) of one element for a weight of the given shape; None = not random.
    moments: Callable[[tuple[int, ...]], tuple[float, float]] | None = None
    # |w| <= bound(shape), checked on every sample.
    bound: Callable[[tuple[int, ...]], float] | None = None
    shapes: tuple[tuple[int, ...], ...] = ((16, 8), (3, 3, 4, 8))
    complex_ok: bool = True
    random: bool = True

    def __str__(self) -> str:
        return self.id


def _fans(shape, **kw):
    return jinit.compute_fans(shape, **kw)


def _vs(scale, mode, **kw):
    def var(shape):
        fi, fo = _fans(shape, **kw)
        n = {
            "fan_in": fi,
            "fan_out": fo,
            "fan_avg": (fi + fo) / 2,
            "fan_geo_avg": math.sqrt(fi * fo),
        }
        return 0.0, scale / n[mode]

    return var


def _vs_uniform_bound(scale, mode, **kw):
    return lambda shape: math.sqrt(3 * _vs(scale, mode, **kw)(shape)[1]) * (1 + 1e-6)


def _vs_tn_bound(scale, mode, **kw):
    return lambda shape: 2 * math.sqrt(_vs(scale, mode, **kw)(shape)[1]) / TN_STD * (1 + 1e-6)


def _orth_var(scale):
    def var(shape):
        cols = shape[-1]
        rows = math.prod(shape) // cols
        return 0.0, scale**2 / max(rows, cols)

    return var


def _tn_moments(stddev, lower, upper, mean=0.0):
    dist = scipy.stats.truncnorm(lower, upper, loc=mean, scale=stddev)
    return lambda shape: (float(dist.mean()), float(dist.var()))


CONSTANTS = [
    Entry("zeros", lambda: jinit.zeros, lambda: J.zeros, random=False),
    Entry("ones", lambda: jinit.ones, lambda: J.ones, random=False),
    Entry("constant", lambda: jinit.constant(-7.5), lambda: J.constant(-7.5), random=False),
]

SIMPLE = [
    Entry(
        "uniform",
        lambda: jinit.uniform(0.5),
        lambda: J.uniform(0.5),
        moments=lambda s: (0.25, 0.25**2 / 3),
        bound=lambda s: 0.5,
        complex_ok=False,
    ),
    Entry(
        "normal", lambda: jinit.normal(0.3), lambda: J.normal(0.3), moments=lambda s: (0.0, 0.09)
    ),
    Entry(
        "truncated_normal",
        lambda: jinit.truncated_normal(0.3),
        lambda: J.truncated_normal(0.3),
        moments=_tn_moments(0.3, -2, 2),
        bound=lambda s: 0.6,
        complex_ok=False,
    ),
    Entry(
        "truncated_normal_asym",
        lambda: jinit.truncated_normal(2.0, lower=-1.0, upper=3.0),
        lambda: J.truncated_normal(2.0, lower=-1.0, upper=3.0),
        moments=_tn_moments(2.0, -1, 3),
        bound=lambda s: 6.0,
        complex_ok=False,
    ),
]

VARIANCE_SCALING = [
    Entry(
        f"variance_scaling_{mode}_{dist}",
        (lambda m=mode, d=dist: jinit.variance_scaling(1.5, m, d)),
        (lambda m=mode, d=dist: J.variance_scaling(1.5, m, d)),
        moments=_vs(1.5, mode),
        bound=(
            _vs_uniform_bound(1.5, mode)
            if dist == "uniform"
            else _vs_tn_bound(1.5, mode)
            if dist == "truncated_normal"
            else None
        ),
    )
    for mode in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
    for dist in ("truncated_normal", "normal", "uniform")
] + [
    Entry(
        "variance_scaling_axes",
        lambda: jinit.variance_scaling(2.0, "fan_avg", "normal", in_axis=(0, 1), out_axis=-1),
        lambda: J.variance_scaling(2.0, "fan_avg", "normal", in_axis=(0, 1), out_axis=-1),
        moments=_vs(2.0, "fan_avg", in_axis=(0, 1), out_axis=-1),
        shapes=((5, 7, 3), (4, 6, 2, 16)),
    ),
    Entry(
        "variance_scaling_batch",
        lambda: jinit.variance_scaling(1.0, "fan_in", "uniform", batch_axis=0),
        lambda: J.variance_scaling(1.0, "fan_in", "uniform", batch_axis=0),
        moments=_vs(1.0, "fan_in", batch_axis=0),
        shapes=((4, 16, 8), (2, 3, 3, 4, 8)),
    ),
]

PRESETS = [
    Entry(name, getattr(jinit, name), getattr(J, name), moments=_vs(scale, mode))
    for name, scale, mode in [
        ("glorot_uniform", 1.0, "fan_avg"),
        ("glorot_normal", 1.0, "fan_avg"),
        ("xavier_uniform", 1.0, "fan_avg"),
        ("xavier_normal", 1.0, "fan_avg"),
        ("lecun_uniform", 1.0, "fan_in"),
        ("lecun_normal", 1.0, "fan_in"),
        ("he_uniform", 2.0, "fan_in"),
        ("he_normal", 2.0, "fan_in"),
        ("kaiming_uniform", 2.0, "fan_in"),
        ("kaiming_normal", 2.0, "fan_in"),
    ]
]

ORTHOGONAL = [
    Entry("orthogonal", jinit.orthogonal, J.orthogonal, moments=_orth_var(1.0)),
    Entry(
        "orthogonal_scaled_col0",
        lambda: jinit.orthogonal(2.0, column_axis=0),
        lambda: J.orthogonal(2.0, column_axis=0),
        moments=lambda s: (0.0, 4.0 / max(s[0], math.prod(s) // s[0])),
        shapes=((16, 8), (8, 3, 3, 4)),
    ),
    Entry(
        "delta_orthogonal",
        jinit.delta_orthogonal,
        J.delta_orthogonal,
        shapes=((3, 4, 8), (3, 3, 4, 8), (3, 3, 3, 4, 4)),
    ),
]

# Extensions: no jax counterpart.
EXTENSIONS = [
    Entry(
        "orthogonal_batch",
        lambda: jinit.orthogonal(batch_axis=0),
        moments=lambda s: (0.0, 1.0 / max(math.prod(s[1:-1]), s[-1])),
        shapes=((4, 16, 8), (2, 3, 3, 8)),
    ),
    Entry("identity", lambda: jinit.identity(2.0), random=False, shapes=((4, 4), (3, 5, 6))),
    Entry("dirac", lambda: jinit.dirac(groups=2), random=False, shapes=((3, 4, 8), (3, 3, 4, 8))),
    Entry(
        "sparse",
        lambda: jinit.sparse(0.25, stddev=0.5),
        moments=lambda s: (
            0.0,
            0.25 * (1 - math.ceil(0.25 * math.prod(s[:-1])) / math.prod(s[:-1])),
        ),
        complex_ok=False,
    ),
    Entry(
        "sparse_nonzero",
        lambda: jinit.sparse(nonzero=3, stddev=1.0),
        moments=lambda s: (0.0, 3 / math.prod(s[:-1])),
        complex_ok=False,
    ),
    Entry(
        "uniform_unit_scaling",
        lambda: jinit.uniform_unit_scaling(1.5),
        moments=lambda s: (0.0, 1.5**2 / max(1, math.prod(s[:-1]))),
        bound=lambda s: 1.5 * math.sqrt(3 / max(1, math.prod(s[:-1]))) * (1 + 1e-6),
        complex_ok=False,
    ),
]


def _torch_fan_in(shape):
    return _fans(shape)[0]


TORCH = [
    Entry(
        "torch.uniform",
        lambda: jinit.torch.uniform(-0.5, 1.5),
        moments=lambda s: (0.5, 4 / 12),
        bound=lambda s: 1.5,
        complex_ok=False,
    ),
    Entry("torch.normal", lambda: jinit.torch.normal(1.0, 0.5), moments=lambda s: (1.0, 0.25)),
    Entry(
        "torch.trunc_normal",
        lambda: jinit.torch.trunc_normal(0.1, 0.5, -0.5, 1.0),
        moments=_tn_moments(0.5, (-0.5 - 0.1) / 0.5, (1.0 - 0.1) / 0.5, mean=0.1),
        bound=lambda s: 1.0,
        complex_ok=False,
    ),
    Entry(
        "torch.xavier_uniform", lambda: jinit.torch.xavier_uniform(2.0), moments=_vs(4.0, "fan_avg")
    ),
    Entry(
        "torch.xavier_normal", lambda: jinit.torch.xavier_normal(0.5), moments=_vs(0.25, "fan_avg")
    ),
    Entry("torch.kaiming_uniform", jinit.torch.kaiming_uniform, moments=_vs(2.0, "fan_in")),
    Entry(
        "torch.kaiming_normal_fan_out",
        lambda: jinit.torch.kaiming_normal(0.2, mode="fan_out"),
        moments=_vs(2 / 1.04, "fan_out"),
    ),
    Entry(
        "torch.linear_default",
        jinit.torch.linear_default,
        moments=lambda s: (0.0, 1 / (3 * _torch_fan_in(s))),
        bound=lambda s: 1 / math.sqrt(_torch_fan_in(s)) * (1 + 1e-6),
    ),
    Entry(
        "torch.bias_default",
        lambda: jinit.torch.bias_default(25),
        moments=lambda s: (0.0, 1 / 75),
        bound=lambda s: 0.2,
        complex_ok=False,
        shapes=((8,), (64,)),
    ),
]

KERAS = [
    Entry("keras.random_normal", jinit.keras.random_normal, moments=lambda s: (0.0, 0.05**2)),
    Entry(
        "keras.random_uniform",
        jinit.keras.random_uniform,
        moments=lambda s: (0.0, 0.1**2 / 12),
        bound=lambda s: 0.05,
        complex_ok=False,
    ),
    Entry(
        "keras.truncated_normal",
        jinit.keras.truncated_normal,
        moments=_tn_moments(0.05, -2, 2),
        bound=lambda s: 0.1,
        complex_ok=False,
    ),
    Entry("keras.glorot_uniform", jinit.keras.glorot_uniform, moments=_vs(1.0, "fan_avg")),
    Entry("keras.he_normal", jinit.keras.he_normal, moments=_vs(2.0, "fan_in")),
    Entry(
        "keras.variance_scaling_untruncated",
        lambda: jinit.keras.variance_scaling(3.0, "fan_out", "untruncated_normal"),
        moments=_vs(3.0, "fan_out"),
    ),
]

JAX_PARITY = CONSTANTS + SIMPLE + VARIANCE_SCALING + PRESETS + ORTHOGONAL
ALL = JAX_PARITY + EXTENSIONS + TORCH + KERAS
RANDOM = [e for e in ALL if e.random]
WITH_MOMENTS = [e for e in ALL if e.moments is not None]

# One entry per family above and per sampler of jinit._samplers (both checked by
# tests/test_protocol.py): the fast tier's cases for the expensive per-entry tests. The
# exact-tail truncated normal (torch.trunc_normal) compiles for ~3 s per shape and dtype; the
# fast tier checks it in tests/test_statistics.py (far tails against scipy, bounds in four
# dtypes) instead.
FAST = frozenset(
    {
        "constant",
        "uniform",
        "normal",
        "truncated_normal_asym",
        "variance_scaling_fan_avg_truncated_normal",  # + the complex truncated normal
        "variance_scaling_fan_in_normal",
        "variance_scaling_batch",  # + the complex uniform
        "variance_scaling_axes",
        "glorot_uniform",
        "orthogonal_scaled_col0",
        "delta_orthogonal",
        "orthogonal_batch",
        "identity",
        "dirac",
        "sparse",
        "torch.kaiming_normal_fan_out",
        "torch.bias_default",
        "keras.variance_scaling_untruncated",
    }
)
FAMILIES = {
    "constants": CONSTANTS,
    "simple": SIMPLE,
    "variance_scaling": VARIANCE_SCALING,
    "presets": PRESETS,
    "orthogonal": ORTHOGONAL,
    "extensions": EXTENSIONS,
    "torch": TORCH,
    "keras": KERAS,
}


def tiered(entries: list[Entry]) -> list:
    """pytest cases for ``entries``: those outside ``FAST`` are marked slow."""
    return [
        pytest.param(e, id=e.id, marks=() if e.id in FAST else pytest.mark.slow) for e in entries
    ]
