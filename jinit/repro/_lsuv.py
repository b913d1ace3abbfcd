"""Mishkin & Matas (2016): LSUV vs He vs Glorot."""

from __future__ import annotations

import time
from typing import Any

from jinit.repro import _figures
from jinit.repro._common import (
    _gaussian,
    _runs,
    _study_config,
)
from jinit.repro._result import Reproduction, finding, fmt
from jinit.train.datasets import load_dataset
from jinit.train.loop import TrainConfig
from jinit.train.model import MLPConfig
from jinit.train.study import compare

# --- LSUV (Mishkin & Matas 2016) -------------------------------------------------------------

LSUV_INITS: dict[str, Any] = {
    "LSUV": "lsuv",
    "He (MSRA)": _gaussian(2.0),
    "Glorot (Xavier)": "glorot_normal",
}
LSUV_REF = "Mishkin & Matas (2016), Sec. 3, Fig. 3 and Table 3"


def lsuv(quick: bool = False, progress: bool = False) -> Reproduction:
    """20-layer thin ReLU MLP: loss after 200 steps, LSUV < He < Glorot on every seed."""
    start = time.perf_counter()
    depth, width, steps, seeds = (6, 16, 30, 1) if quick else (20, 32, 200, 5)
    data = load_dataset("spirals")
    study = compare(
        LSUV_INITS,
        data,
        model=MLPConfig(hidden=(width,) * depth, activation="relu"),
        train=TrainConfig(steps=steps),
        seeds=seeds,
        progress=progress,
    )
    final = {label: study.curves[label][:, -1] for label in LSUV_INITS}
    order = list(LSUV_INITS)
    every_seed = all(
        final[order[0]][i] < final[order[1]][i] < final[order[2]][i] for i in range(seeds)
    )
    variances = [v for info in study.runs[0]["lsuv"] for v in info["variances"]]
    findings = [
        finding(
            "LSUV makes every layer's output variance 1",
            f"|Var - 1| < 0.1 for every layer after LSUV ({LSUV_REF}, Alg. 1)",
            f"variances {min(variances):.3f}-{max(variances):.3f}",
            all(abs(v - 1) < 0.1 for v in variances),
            "every layer's variance within 0.1 of 1 on every seed",
        ),
        finding(
            f"loss after {steps} steps: LSUV < He < Glorot",
            f"LSUV converges faster than MSRA (He) and Xavier in thin deep nets ({LSUV_REF})",
            "; ".join(f"{k} {fmt(list(map(float, v)))}" for k, v in final.items()),
            every_seed,
            "the order LSUV < He < Glorot holds for every seed",
        ),
    ]
    curves = dict(study.curves)
    return Reproduction(
        experiment="lsuv",
        title=f"Mishkin & Matas (2016): LSUV vs He vs Glorot in a thin {depth}-layer ReLU net",
        config=_study_config(study),
        runs=_runs(study),
        findings=findings,
        seconds=time.perf_counter() - start,
        figures={
            "loss_curves.png": lambda: _figures.cost_curves(
                curves, title=f"spirals, {depth} ReLU layers of {width}", ylabel="training loss"
            )
        },
        notes=[
            f"- data: `spirals` (500 points, standardized); {depth} ReLU layers of {width}, "
            "softmax; "
            f"{steps} steps of SGD with momentum 0.9, lr 0.01, full batch; {seeds} seeds",
            "- LSUV: orthogonal pre-init, then each layer (output layer included) rescaled to "
            "unit output variance on the training batch (`jinit.lsuv`, tol 0.1, at most 10 "
            "iterations), key from each seed",
        ],
    )
