"""CS231n's weight-initialization demo: 10 layers of 500 at init."""

from __future__ import annotations

import time
from typing import Any

from jinit.repro import _figures
from jinit.repro._common import (
    _gaussian,
    _random_labels,
    _runs,
    _study_config,
)
from jinit.repro._result import Reproduction, finding, fmt
from jinit.train.loop import TrainConfig
from jinit.train.model import MLPConfig
from jinit.train.study import compare

# --- CS231n (Karpathy, lecture 5/6 "weight initialization") -------------------------------

CS231N_TANH: dict[str, Any] = {
    "tanh, W x 0.01": {"name": "normal", "stddev": 0.01},
    "tanh, W x 1": {"name": "normal", "stddev": 1.0},
    "tanh, Xavier 1/sqrt(n)": _gaussian(1.0),
}
CS231N_RELU: dict[str, Any] = {
    "relu, Xavier 1/sqrt(n)": _gaussian(1.0),
    "relu, He sqrt(2/n)": _gaussian(2.0),
}
CS231N_REF = "CS231n (Karpathy et al.), lecture 'Training neural networks I', weight init"


def cs231n(quick: bool = False, progress: bool = False) -> Reproduction:
    """10 layers of 500, 1000 N(0, 1) inputs, no biases: per-layer statistics at init."""
    start = time.perf_counter()
    width, n, seeds = (500, 64, 1) if quick else (500, 1000, 3)
    data = _random_labels(n, width, 10, seed=0)
    model: dict[str, Any] = {"hidden": (width,) * 10, "use_bias": False}
    studies = {}
    for activation, inits in (("tanh", CS231N_TANH), ("relu", CS231N_RELU)):
        studies[activation] = compare(
            inits,
            data,
            model=MLPConfig(activation=activation, **model),
            train=TrainConfig(steps=1),
            seeds=seeds,
            progress=progress,
        )
    runs = {run["init"]: run for s in studies.values() for run in s.runs}
    stds = {label: run["activation_std_at_init"] for label, run in runs.items()}
    small = stds["tanh, W x 0.01"][-1]
    he = stds["relu, He sqrt(2/n)"]
    big = stds["tanh, W x 1"]
    xavier_relu = stds["relu, Xavier 1/sqrt(n)"]
    findings = [
        finding(
            "tanh, W x 0.01: activations collapse to zero",
            f"layer-10 std 2.95e-7 ({CS231N_REF})",
            f"layer-10 std {small:.3e} (layer 1: {stds['tanh, W x 0.01'][0]:.3g})",
            small is not None and abs(small - 2.95e-7) <= 0.1 * 2.95e-7,
            "layer-10 std within 10% of 2.95e-7",
        ),
        finding(
            "tanh, W x 1: units saturate at ±1",
            f"'almost all neurons completely saturated' ({CS231N_REF})",
            f"std per layer {fmt(min(big))}-{fmt(max(big))}",
            min(big) > 0.95,
            "every layer's std > 0.95 (values near ±1)",
        ),
        finding(
            "ReLU, He sqrt(2/n): scale kept through 10 layers",
            f"std ≈ 0.8 in every layer ({CS231N_REF})",
            f"std per layer {fmt(min(he))}-{fmt(max(he))}",
            all(abs(v - 0.8) <= 0.2 * 0.8 for v in he),
            "every layer's std within 20% of 0.8 (the depth-10 product of random layers "
            "spreads ~10% over seeds)",
        ),
        finding(
            "ReLU, Xavier 1/sqrt(n): the scale halves (in variance) per layer",
            f"'activations collapse' ({CS231N_REF}); He et al. (2015): ratio 2^-(L-1)/2",
            f"layer 10 / layer 1 std {xavier_relu[-1] / xavier_relu[0]:.3g} "
            f"(predicted {2**-4.5:.3g})",
            abs(xavier_relu[-1] / xavier_relu[0] - 2**-4.5) <= 0.2 * 2**-4.5,
            "ratio within 20% of 2^-4.5",
        ),
    ]
    activations = {
        label: layers for s in studies.values() for label, layers in s.activations.items()
    }
    all_runs = _runs(studies["tanh"], "tanh") + _runs(studies["relu"], "relu")
    return Reproduction(
        experiment="cs231n",
        title="CS231n: signal propagation through 10 layers of 500 at initialization",
        config={k: _study_config(s) for k, s in studies.items()},
        runs=all_runs,
        findings=findings,
        seconds=time.perf_counter() - start,
        figures={
            "activation_histograms.png": lambda: _figures.histogram_grid(
                activations,
                title="CS231n: per-layer activations at init (10 x 500, no bias)",
                quantity="activation value",
                drop_zeros=True,
            ),
            "std_per_layer.png": lambda: _figures.std_vs_layer(
                stds, title="CS231n: activation std per layer", ylabel="activation std"
            ),
        },
        notes=[
            f"- input: {n} x {width} N(0, 1); 10 layers of {width} units, no biases "
            "(`H = f(X @ W)`), a 10-way softmax on random labels for the gradients; "
            f"{seeds} seed(s), means over seeds",
            "- inits: `randn * 0.01`, `randn * 1`, `randn / sqrt(fan_in)`, "
            "`randn * sqrt(2 / fan_in)` (untruncated normals)",
        ],
    )
