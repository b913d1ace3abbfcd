"""Glorot & Bengio (2010): activations and gradients of a deep tanh net at init."""

from __future__ import annotations

import time
from typing import Any

from jinit.repro import _figures
from jinit.repro._common import (
    _all_close,
    _close,
    _random_labels,
    _runs,
    _study_config,
)
from jinit.repro._result import Reproduction, finding, fmt
from jinit.train.loop import TrainConfig
from jinit.train.model import MLPConfig
from jinit.train.study import compare

# --- Glorot & Bengio (2010) ------------------------------------------------------------------

GB_INITS: dict[str, Any] = {
    "standard U(±1/sqrt(n))": "torch.linear_default",
    "normalized (Glorot)": "glorot_uniform",
}
GB_PUBLISHED = {
    "standard U(±1/sqrt(n))": [0.46, 0.25, 0.14, 0.081, 0.046],
    "normalized (Glorot)": [0.63, 0.49, 0.41, 0.36, 0.32],
}
GB_UNITS = [0.01, 0.01, 0.01, 0.001, 0.001]
GB_BACKPROP = {"standard U(±1/sqrt(n))": 0.08, "normalized (Glorot)": 0.41}
GB_REF = "Glorot & Bengio (2010), Sec. 4.2, Figs. 6-7; numbers as tabulated in jinit issue 11"


def glorot_bengio(quick: bool = False, progress: bool = False) -> Reproduction:
    """5 tanh layers of 1000: activation and back-propagated gradient std per layer at init."""
    start = time.perf_counter()
    width, n, seeds = (100, 100, 1) if quick else (1000, 1000, 3)
    data = _random_labels(n, width, 10, seed=0)
    study = compare(
        GB_INITS,
        data,
        model=MLPConfig(hidden=(width,) * 5, activation="tanh"),
        train=TrainConfig(steps=1),
        seeds=seeds,
        progress=progress,
    )
    findings = []
    stds, ratios = {}, {}
    for run in study.runs:
        label = run["init"]
        stds[label] = run["activation_std_at_init"]
        g = run["backprop_grad_std_at_init"]
        ratios[label] = g[0] / g[-1] if g[0] is not None and g[-1] else None
        findings.append(
            finding(
                f"{label}: activation std, layers 1-5",
                f"{fmt(GB_PUBLISHED[label])} ({GB_REF})",
                fmt(stds[label]),
                _all_close(stds[label], GB_PUBLISHED[label], GB_UNITS),
                "every layer within 5% or half a unit of the published last digit",
            )
        )
    std_label, glorot_label = list(GB_INITS)
    findings.append(
        finding(
            "back-propagated gradient std, layer 1 / layer 5 (w.r.t. pre-activations)",
            f"{GB_BACKPROP[std_label]} standard / {GB_BACKPROP[glorot_label]} Glorot ({GB_REF})",
            f"{fmt(ratios[std_label])} / {fmt(ratios[glorot_label])}",
            _close(ratios[std_label], GB_BACKPROP[std_label], 0.01)
            and _close(ratios[glorot_label], GB_BACKPROP[glorot_label], 0.01),
            "each ratio within 5% or 0.005 of the published value",
        )
    )
    activations, grads = dict(study.activations), dict(study.backprop_grads)
    backprop = {run["init"]: run["backprop_grad_std_at_init"] for run in study.runs}
    return Reproduction(
        experiment="glorot-bengio",
        title="Glorot & Bengio (2010): activations and gradients in a 5-layer tanh net at init",
        config=_study_config(study),
        runs=_runs(study),
        findings=findings,
        seconds=time.perf_counter() - start,
        figures={
            "activation_histograms.png": lambda: _figures.histogram_grid(
                activations,
                title="Glorot & Bengio Fig. 6: tanh activations at init",
                quantity="activation value",
            ),
            "backprop_histograms.png": lambda: _figures.histogram_grid(
                grads,
                title="Glorot & Bengio Fig. 7: back-propagated gradients at init",
                quantity="d(loss)/d(pre-activation)",
            ),
            "std_per_layer.png": lambda: _figures.std_vs_layer(
                {f"{k}: activations": v for k, v in stds.items()}
                | {
                    f"{k}: d loss/d pre-act (x{n})": [g * n for g in v] for k, v in backprop.items()
                },
                title="Glorot & Bengio: std per layer at init",
                ylabel="std",
            ),
        },
        notes=[
            f"- network: {width} inputs, 5 tanh layers of {width}, biases 0, a 10-way softmax "
            f"on random labels (the paper: Shapeset-3x2); batch of {n} N(0, 1) inputs; "
            f"{seeds} seed(s), means over seeds",
            "- inits: 'standard' `U(±1/sqrt(fan_in))` (`torch.linear_default`), 'normalized' "
            "`glorot_uniform`",
            "- back-propagated gradient: std over the batch and units of d(loss)/d(pre-activation)"
            " of each hidden layer",
        ],
    )
