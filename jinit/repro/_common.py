"""Helpers shared by the experiments."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jinit.train.datasets import Dataset
from jinit.train.study import Study

LN2 = math.log(2.0)


def _gaussian(scale: float) -> dict[str, Any]:
    """``randn(fan_in, fan_out) * sqrt(scale / fan_in)``: an untruncated variance-scaling init."""
    return {"name": "variance_scaling", "scale": scale, "mode": "fan_in", "distribution": "normal"}


def _close(measured: float | None, published: float, digits_unit: float) -> bool:
    """Within 5% of the published value or half a unit of its last printed digit."""
    if measured is None:
        return False
    return abs(measured - published) <= max(0.05 * abs(published), digits_unit / 2)


def _all_close(measured: list, published: list, units: list) -> bool:
    return len(measured) == len(published) and all(
        _close(m, p, u) for m, p, u in zip(measured, published, units, strict=True)
    )


def _runs(study: Study, setting: str | None = None) -> list[dict[str, Any]]:
    out = []
    for run in study.runs:
        entry = dict(run)
        if setting is not None:
            entry = {"setting": setting, **entry}
        out.append(entry)
    return out


def _study_config(study: Study) -> dict[str, Any]:
    keep = (
        "dataset n_train n_test n_features n_classes hidden activation bias_init loss use_bias "
        "inits seeds steps optimizer learning_rate learning_rates select batch_size "
        "target_loss target_fraction backend jax_version"
    ).split()
    return {k: study.config[k] for k in keep if k in study.config}


def _random_labels(n: int, d: int, n_classes: int, seed: int) -> Dataset:
    """``x ~ N(0, 1)^(n, d)`` with random labels: the statistics at init need no task."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, n_classes, n)
    return Dataset.from_arrays(x, y, x_test=x[:8], y_test=y[:8], name=f"N(0,1) {n}x{d}")
