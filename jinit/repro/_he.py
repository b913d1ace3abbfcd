"""He et al. (2015): deep ReLU nets with He vs Xavier init."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jinit.repro import _figures
from jinit.repro._common import (
    LN2,
    _gaussian,
    _runs,
    _study_config,
)
from jinit.repro._result import Reproduction, finding, fmt
from jinit.train.datasets import load_dataset
from jinit.train.loop import TrainConfig
from jinit.train.model import MLPConfig
from jinit.train.study import compare

# --- He et al. (2015): deep ReLU nets ------------------------------------------------------

HE_INITS: dict[str, Any] = {"He sqrt(2/n)": _gaussian(2.0), "Xavier sqrt(1/n)": _gaussian(1.0)}
HE_REF = "He et al. (2015), Sec. 2.2-2.3, Figs. 2-3"


def he_deep_relu(quick: bool = False, progress: bool = False) -> Reproduction:
    """22- and 30-layer ReLU MLPs: He keeps the scale and trains; Xavier shrinks and stalls."""
    start = time.perf_counter()
    depths, width, steps, seeds = ((10,), 16, 30, 1) if quick else ((22, 30), 64, 300, 3)
    target = LN2 / 2  # half the chance-level loss
    data = load_dataset("spirals")
    studies = {}
    for depth in depths:
        studies[depth] = compare(
            HE_INITS,
            data,
            model=MLPConfig(hidden=(width,) * depth, activation="relu"),
            train=TrainConfig(steps=steps, learning_rate=0.005, target_loss=target),
            seeds=seeds,
            progress=progress,
        )
    he_label, xavier_label = list(HE_INITS)
    findings = []
    deepest = studies[max(depths)]
    runs = {run["init"]: run for run in deepest.runs}
    depth = max(depths)
    he_std, xa_std = (runs[k]["activation_std_at_init"] for k in (he_label, xavier_label))
    predicted = 2 ** (-(depth - 1) / 2)
    he_ratio, xa_ratio = he_std[-1] / he_std[0], xa_std[-1] / xa_std[0]
    findings.append(
        finding(
            f"{depth} layers at init: std last/first hidden layer",
            f"He: 1 (n Var[w] / 2 = 1); Xavier: 2^-(L-1)/2 = {predicted:.2g} ({HE_REF}, eq. 10)",
            f"He {he_ratio:.3g}; Xavier {xa_ratio:.3g}",
            0.5 <= he_ratio <= 2.0 and predicted / 3 <= xa_ratio <= predicted * 3,
            "He's ratio in [0.5, 2]; Xavier's within a factor 3 of the prediction",
        )
    )

    he_final = [float(v) for v in deepest.curves[he_label][:, -1]]
    xa_final = [float(v) for v in deepest.curves[xavier_label][:, -1]]
    findings.append(
        finding(
            f"{depth} layers: Xavier stalls, He converges",
            f"30 layers: Xavier 'completely stalls', He converges ({HE_REF}, Fig. 3)",
            f"training loss after {steps} steps: He {fmt(he_final)}; Xavier {fmt(xa_final)} "
            f"(chance: ln 2 = {LN2:.3f})",
            max(he_final) < 0.15 and min(xa_final) > 0.5,
            "every seed: He's final loss < 0.15, Xavier's > 0.5 (near chance)",
        )
    )
    if 22 in studies:
        r22 = {run["init"]: run for run in studies[22].runs}

        def mean_steps(run: dict[str, Any]) -> float:
            return float(np.mean([steps if s is None else s for s in run["steps_to_target"]]))

        he_steps, xa_steps = mean_steps(r22[he_label]), mean_steps(r22[xavier_label])
        findings.append(
            finding(
                "22 layers: He starts reducing the loss earlier",
                f"22 layers: both converge, He starts reducing the error earlier ({HE_REF}, "
                "Fig. 2)",
                f"steps to loss {target:.3f} (ln 2 / 2): He {he_steps:.0f}; Xavier "
                f"{xa_steps:.0f}"
                + (
                    " (never within the budget)"
                    if r22[xavier_label]["steps_to_target"].count(None)
                    else ""
                ),
                he_steps < xa_steps,
                "He's mean steps to ln 2 / 2 < Xavier's (never = the budget)",
            )
        )
    curves = {
        f"{label}, {d} layers": c for d, s in studies.items() for label, c in s.curves.items()
    }
    stds = {
        f"{run['init']}, {d} layers": run["activation_std_at_init"]
        for d, s in studies.items()
        for run in s.runs
    }
    return Reproduction(
        experiment="he-deep-relu",
        title="He et al. (2015): deep ReLU nets train with He init and stall with Xavier",
        config={f"depth {d}": _study_config(s) for d, s in studies.items()},
        runs=[r for d, s in studies.items() for r in _runs(s, f"depth {d}")],
        findings=findings,
        seconds=time.perf_counter() - start,
        figures={
            "loss_curves.png": lambda: _figures.cost_curves(
                curves, title=f"spirals, ReLU MLPs of width {width}", ylabel="training loss"
            ),
            "std_per_layer.png": lambda: _figures.std_vs_layer(
                stds, title="activation std per layer at init", ylabel="activation std"
            ),
        },
        notes=[
            f"- data: `spirals` (500 points, standardized); MLPs of {width} ReLU units, depth "
            f"{' and '.join(map(str, depths))}, softmax; {steps} steps of SGD with momentum "
            f"0.9, lr 0.005, full batch; {seeds} seed(s) (the paper: ImageNet conv nets)",
            "- inits: He `randn * sqrt(2 / fan_in)`, Xavier `randn * sqrt(1 / fan_in)` "
            "(the paper's comparison), biases zero",
        ],
    )
