"""The experiments: each builds its data and networks as the paper or course did.

Every function takes ``quick`` (a small, seconds-long version for tests and the notebook)
and ``progress`` and returns a :class:`~jinit.repro._result.Reproduction` whose findings
are computed from the measurements by the criterion each one states.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from jinit.repro import _figures
from jinit.repro._result import Reproduction, finding, fmt
from jinit.train.datasets import Dataset, load_dataset, make_circles
from jinit.train.loop import TrainConfig
from jinit.train.model import MLPConfig
from jinit.train.study import Study, compare

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


# --- the deep-learning course (Ng, "Improving deep neural networks", week 1) ---------------

COURSE_INITS: dict[str, Any] = {
    "zeros": "zeros",
    "random x10": {"name": "normal", "stddev": 10.0},
    "he": _gaussian(2.0),
}


def course(quick: bool = False, progress: bool = False) -> Reproduction:
    """Zeros / large random / He on the course's circles, [2, 10, 5, 1], 15000 GD steps."""
    start = time.perf_counter()
    x, y = make_circles(300, noise=0.05, seed=1)  # the course: np.random.seed(1)
    xt, yt = make_circles(100, noise=0.05, seed=2)  # np.random.seed(2)
    data = Dataset.from_arrays(
        x, y, x_test=xt, y_test=yt, name="make_circles(300, noise=0.05, factor=0.8)"
    )
    steps, seeds = (1500, 2) if quick else (15000, 10)
    study = compare(
        COURSE_INITS,
        data,
        model=MLPConfig(hidden=(10, 5), activation="relu", loss="sigmoid"),
        train=TrainConfig(steps=steps, optimizer="sgd", learning_rate=0.01),
        seeds=seeds,
        progress=progress,
    )
    at = min(14000, steps)  # the course prints the cost every 1000 iterations, last at 14000
    cost = {label: study.curves[label][:, at] for label in COURSE_INITS}
    med = {label: float(np.median(c)) for label, c in cost.items()}
    acc = {
        run["init"]: (run["train_accuracy"]["mean"], run["test_accuracy"]["mean"])
        for run in study.runs
    }
    zeros_dev = float(np.max(np.abs(study.curves["zeros"] - LN2)))
    initial_random = float(np.median(study.curves["random x10"][:, 0]))
    ref = "Ng, deep-learning specialization course 2 week 1 'Initialization'"
    findings = [
        finding(
            "zero init: cost stuck at ln 2 (symmetry)",
            f"0.6931 at every iteration, train/test accuracy 0.5/0.5 ({ref})",
            f"{study.curves['zeros'][0, at]:.4f}; max |cost - ln 2| = {zeros_dev:.1e}; "
            f"accuracy {fmt(acc['zeros'][0])}/{fmt(acc['zeros'][1])}",
            zeros_dev < 1e-4 and acc["zeros"][0] == 0.5,
            "every seed's cost within 1e-4 of ln 2 at every step, train accuracy 0.5",
        ),
        finding(
            "random x10: huge initial cost, slow descent",
            f"cost inf at iteration 0, ~0.38 at 14000; accuracy 0.83/0.86 ({ref})",
            f"initial {initial_random:.3g} (median), at {at}: {med['random x10']:.3f} (median; "
            f"seeds {np.min(cost['random x10']):.2f}-{np.max(cost['random x10']):.2f}); "
            f"accuracy {fmt(acc['random x10'][0])}/{fmt(acc['random x10'][1])}",
            initial_random > 10 and 0.2 <= med["random x10"] <= 0.6,
            "median initial cost > 10 (saturated sigmoid) and median cost at iteration 14000 "
            "in [0.2, 0.6]",
        ),
        finding(
            "He init: fast descent",
            f"~0.07 at 14000 (0.0736); accuracy 0.99/0.96 ({ref})",
            f"at {at}: {med['he']:.3f} (median; seeds {np.min(cost['he']):.3f}-"
            f"{np.max(cost['he']):.3f}); accuracy {fmt(acc['he'][0])}/{fmt(acc['he'][1])}",
            med["he"] < 0.15 and med["he"] < 0.5 * med["random x10"],
            "median cost at iteration 14000 < 0.15 and < half of random x10's",
        ),
    ]
    curves = dict(study.curves)
    every = max(1, steps // 500)
    return Reproduction(
        experiment="course",
        title="The course's initialization exercise: zeros vs random x10 vs He on circles",
        config={**_study_config(study), "cost_reported_at": at},
        runs=_runs(study),
        findings=findings,
        seconds=time.perf_counter() - start,
        figures={
            "cost_curves.png": lambda: _figures.cost_curves(
                curves,
                title="[2, 10, 5, 1] ReLU/sigmoid, batch GD lr 0.01 on make_circles(300)",
                ylabel="cost (binary cross-entropy)",
                every=every,
            )
        },
        notes=[
            "- data: scikit-learn's `make_circles(300, noise=0.05)` (factor 0.8, "
            "`np.random.seed(1)`; test: 100 points, seed 2), unstandardized, generated by "
            "`jinit.train.datasets.make_circles` (same arrays, no scikit-learn needed)",
            f"- model: [2, 10, 5, 1], ReLU, sigmoid output, binary cross-entropy; {steps} "
            f"full-batch gradient-descent steps, learning rate 0.01; {seeds} seeds (jax keys, "
            "so the weights are not the course's NumPy draws: medians over seeds)",
            "- inits: zeros; `randn * 10` (`normal(stddev=10)`); He `randn * sqrt(2/fan_in)`; "
            "biases zero",
            "- the course computes the cost from sigmoid outputs, so it prints inf at "
            "iteration 0; jinit's loss is computed from the logit and stays finite",
        ],
    )


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
    model = {"hidden": (width,) * 10, "use_bias": False}
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


# --- Saxe, McClelland & Ganguli (2014): deep linear networks -------------------------------

SAXE_INITS: dict[str, Any] = {"orthogonal": "orthogonal", "Gaussian 1/sqrt(n)": _gaussian(1.0)}
SAXE_DEPTHS = (2, 4, 8, 16)
SAXE_PUBLISHED = {"orthogonal": [12, 7, 13, 13], "Gaussian 1/sqrt(n)": [12, 19, 38, 119]}
SAXE_REF = "Saxe, McClelland & Ganguli (2014), Sec. 3-4, Fig. 6 (as tabulated in issue 11)"


def _teacher(n_features: int, n_examples: int, seed: int) -> Dataset:
    """Whitened inputs ``x ~ N(0, I)`` and a linear teacher ``y = x A``, ``A ~ N(0, 1/n)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_examples, n_features))
    a = rng.standard_normal((n_features, n_features)) / math.sqrt(n_features)
    y = x @ a
    return Dataset.from_arrays(x, y, x_test=x[:16], y_test=y[:16], name="linear teacher")


def saxe(quick: bool = False, progress: bool = False) -> Reproduction:
    """Deep linear nets: steps to 1% of the initial loss vs depth, best learning rate each."""
    start = time.perf_counter()
    if quick:
        depths, width, steps, seeds, rates = (2, 8), 16, 100, 1, np.geomspace(0.3, 10, 5)
    else:
        depths, width, steps, seeds, rates = SAXE_DEPTHS, 32, SAXE_STEPS, 3, SAXE_RATES
    data = _teacher(width, 8 * width, seed=0)
    studies = {}
    for depth in depths:
        studies[depth] = compare(
            SAXE_INITS,
            data,
            model=MLPConfig(
                hidden=(width,) * (depth - 1), activation="linear", loss="mse", use_bias=False
            ),
            train=TrainConfig(steps=steps, optimizer="sgd", target_fraction=0.01),
            seeds=seeds,
            learning_rates=[float(r) for r in rates],
            select="steps_to_target",
            progress=progress,
        )

    def mean_steps(run: dict[str, Any]) -> float | None:
        reached = run["steps_to_target"]
        return None if None in reached else float(np.mean(reached))

    measured = {
        label: [mean_steps(next(r for r in studies[d].runs if r["init"] == label)) for d in depths]
        for label in SAXE_INITS
    }
    # One learning rate shared by all depths (per init): the grid rate with the fewest
    # steps summed over depths, a run that never reaches the target counting as the budget.
    shared: dict[str, list[float | None]] = {}
    shared_rate: dict[str, float] = {}
    for label in SAXE_INITS:
        sweeps = [
            next(r for r in studies[d].runs if r["init"] == label)["lr_sweep"] for d in depths
        ]

        def at(i: int, sweeps: list = sweeps) -> list[float | None]:
            steps_i = [sw[i]["steps_to_target"] for sw in sweeps]
            return [None if None in s_ else float(np.mean(s_)) for s_ in steps_i]

        def cost(i: int) -> float:
            return sum(steps if v is None else v for v in at(i))

        best = min(range(len(rates)), key=cost)
        shared[label], shared_rate[label] = at(best), float(rates[best])
    orth, gauss = measured["orthogonal"], measured["Gaussian 1/sqrt(n)"]
    s_orth, s_gauss = shared["orthogonal"], shared["Gaussian 1/sqrt(n)"]
    published = {k: [v[SAXE_DEPTHS.index(d)] for d in depths] for k, v in SAXE_PUBLISHED.items()}

    def show(values: list[float | None]) -> str:
        return "/".join("never" if v is None else f"{v:.0f}" for v in values)

    depth_text = "/".join(map(str, depths))
    findings = [
        finding(
            "orthogonal: learning time independent of depth (one learning rate for all depths)",
            f"steps at depth {depth_text}: {show(published['orthogonal'])} ({SAXE_REF})",
            f"{show(s_orth)} at lr {shared_rate['orthogonal']:.3g}",
            None not in s_orth and s_orth[-1] <= 1.5 * s_orth[0],
            "every depth reaches 1% and the deepest takes <= 1.5x the steps of depth 2",
        ),
        finding(
            "scaled Gaussian: learning time grows with depth (one learning rate)",
            f"steps at depth {depth_text}: {show(published['Gaussian 1/sqrt(n)'])} ({SAXE_REF})",
            f"{show(s_gauss)} at lr {shared_rate['Gaussian 1/sqrt(n)']:.3g}",
            s_gauss[0] is not None and (s_gauss[-1] is None or s_gauss[-1] >= 4 * s_gauss[0]),
            "the deepest takes >= 4x the steps of depth 2 (or never reaches 1%)",
        ),
        finding(
            "best learning rate per depth: orthogonal beats Gaussian, by more as depth grows",
            f"orthogonal {show(published['orthogonal'])}, Gaussian "
            f"{show(published['Gaussian 1/sqrt(n)'])} ({SAXE_REF})",
            f"orthogonal {show(orth)}, Gaussian {show(gauss)}",
            None not in orth
            and (gauss[-1] is None or gauss[-1] >= 3 * orth[-1])
            and (gauss[-1] is None or gauss[-1] / orth[-1] > (gauss[0] or 0) / orth[0]),
            "orthogonal reaches 1% at every depth; at the deepest Gaussian takes >= 3x its "
            "steps (or never), a larger ratio than at depth 2",
        ),
    ]
    best_rates = {
        f"{run['init']}, depth {d}": run["learning_rate"]
        for d, s in studies.items()
        for run in s.runs
    }
    return Reproduction(
        experiment="saxe",
        title="Saxe et al. (2014): deep linear nets, orthogonal vs scaled Gaussian init",
        config={
            "depths": list(depths),
            "best_learning_rates": best_rates,
            "shared_learning_rates": shared_rate,
            **{f"depth {d}": _study_config(s) for d, s in studies.items()},
        },
        runs=[r for d, s in studies.items() for r in _runs(s, f"depth {d}")],
        findings=findings,
        seconds=time.perf_counter() - start,
        figures={
            "steps_vs_depth.png": lambda: _figures.steps_vs_depth(
                list(depths),
                {
                    **{f"{k}, best lr per depth": v for k, v in measured.items()},
                    **{f"{k}, one lr ({shared_rate[k]:.2g})": v for k, v in shared.items()},
                },
                {f"{k}, best lr per depth": v for k, v in published.items()},
                budget=steps,
                title="deep linear nets: steps to 1% of the initial loss",
            )
        },
        notes=[
            f"- data: {8 * width} whitened inputs `x ~ N(0, I_{width})`, linear teacher "
            f"`y = x A`, `A ~ N(0, 1/{width})`; mean squared error",
            f"- networks: depth {', '.join(map(str, depths))} weight layers of {width}, linear, "
            f"no biases; full-batch gradient descent, at most {steps} steps; each (init, depth) "
            f"trained at each of {len(rates)} learning rates ({rates[0]:.2g}..{rates[-1]:.2g}) "
            f"in one program; {seeds} seeds",
            "- two protocols: the best rate per (init, depth) (fewest mean steps), and one "
            "rate per init shared by all depths (fewest steps summed over depths, never = the "
            "budget)",
            "- target: each run's first step with loss <= 1% of its loss at step 0",
        ],
    )


SAXE_STEPS = 500
SAXE_RATES = np.geomspace(0.1, 30, 14)


def run_experiment(name: str, quick: bool, progress: bool) -> Reproduction:
    """Dispatches to the experiment called ``name``."""
    return EXPERIMENTS[name](quick=quick, progress=progress)


EXPERIMENTS: Mapping[str, Any] = {
    "course": course,
    "glorot-bengio": glorot_bengio,
    "he-deep-relu": he_deep_relu,
    "saxe": saxe,
    "lsuv": lsuv,
    "cs231n": cs231n,
}
