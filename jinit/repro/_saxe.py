"""Saxe, McClelland & Ganguli (2014): deep linear networks."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jinit.repro import _figures
from jinit.repro._common import (
    _gaussian,
    _runs,
    _study_config,
)
from jinit.repro._result import Reproduction, finding
from jinit.train.datasets import Dataset
from jinit.train.loop import TrainConfig
from jinit.train.model import MLPConfig
from jinit.train.study import compare

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
    depths: tuple[int, ...]
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

    def never_inf(values: Sequence[float | None]) -> list[float]:
        """Steps to the target, a run that never reached it counting as infinitely many."""
        return [math.inf if v is None else float(v) for v in values]

    so, sg, o, g = (never_inf(v) for v in (s_orth, s_gauss, orth, gauss))

    def show(values: Sequence[float | None]) -> str:
        return "/".join("never" if v is None else f"{v:.0f}" for v in values)

    depth_text = "/".join(map(str, depths))
    findings = [
        finding(
            "orthogonal: learning time independent of depth (one learning rate for all depths)",
            f"steps at depth {depth_text}: {show(published['orthogonal'])} ({SAXE_REF})",
            f"{show(s_orth)} at lr {shared_rate['orthogonal']:.3g}",
            all(map(math.isfinite, so)) and so[-1] <= 1.5 * so[0],
            "every depth reaches 1% and the deepest takes <= 1.5x the steps of depth 2",
        ),
        finding(
            "scaled Gaussian: learning time grows with depth (one learning rate)",
            f"steps at depth {depth_text}: {show(published['Gaussian 1/sqrt(n)'])} ({SAXE_REF})",
            f"{show(s_gauss)} at lr {shared_rate['Gaussian 1/sqrt(n)']:.3g}",
            math.isfinite(sg[0]) and sg[-1] >= 4 * sg[0],
            "the deepest takes >= 4x the steps of depth 2 (or never reaches 1%)",
        ),
        finding(
            "best learning rate per depth: orthogonal beats Gaussian, by more as depth grows",
            f"orthogonal {show(published['orthogonal'])}, Gaussian "
            f"{show(published['Gaussian 1/sqrt(n)'])} ({SAXE_REF})",
            f"orthogonal {show(orth)}, Gaussian {show(gauss)}",
            all(map(math.isfinite, o))
            and g[-1] >= 3 * o[-1]
            and g[-1] / o[-1] > (gauss[0] or 0.0) / o[0],
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
