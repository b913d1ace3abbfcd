"""Figures of a study (matplotlib, Agg canvas; pyplot's global state is never touched).

matplotlib is optional: :func:`jinit.train.report.write_outputs` only imports this module
when it is installed. The figures read a study through :class:`~jinit.train.schema.StudyLike`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jinit.train.schema import RunRecord, StudyLike

DPI = 150
"""Resolution of the saved PNGs."""

_RELU_LIKE = ("relu", "leaky_relu", "gelu")
_FLOAT = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+")


def short_label(label: str, digits: int = 3) -> str:
    """``label`` with every decimal number rounded to ``digits`` significant digits.

    Examples:
        >>> short_label("orthogonal(scale=1.4142135623730951)")
        'orthogonal(scale=1.41)'
        >>> short_label("he_normal")
        'he_normal'
    """
    return _FLOAT.sub(lambda m: f"{float(m.group()):.{digits}g}", label)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colors(n: int) -> list[Any]:
    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _title(study: StudyLike) -> str:
    c = study.config
    rates = c.get("learning_rates")
    if rates:
        lr = "lr in {" + ", ".join(f"{r:.3g}" for r in rates) + "} (best per init)"
    else:
        lr = f"lr={c['learning_rate']:.3g}"
    extra = ""
    if c.get("loss", "softmax") != "softmax":
        extra += f", {c['loss']} loss"
    if c.get("target_fraction") is not None:
        extra += f", target {c['target_fraction']:.3g} x initial loss"
    sep = ",\n" if extra or rates else ", "  # a second line when the title grows
    return (
        f"{c['dataset']}, {len(c['hidden'])} hidden {c['activation']} layers{extra}{sep}"
        f"{c['optimizer']} {lr}, {len(c['seeds'])} seeds"
    )


def plot_loss_curves(study: StudyLike) -> Figure:
    """Training loss per initializer on a log axis: the mean over seeds and their range.

    The line is ``loss_curve`` of ``results.json`` (mean over the seeds that did not
    diverge); the band spans the lowest to the highest seed at each step, so it stays on
    the log axis however far apart the seeds are.
    """
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    styles = ["-", "--", "-.", ":"]
    runs = {run["init"]: cast(RunRecord, run) for run in study.runs}
    colors = _colors(len(study.curves))
    for i, (label, curves) in enumerate(study.curves.items()):
        color, style = colors[i], styles[(i // 10 + i) % len(styles)]
        curves = np.asarray(curves, dtype=np.float64)
        finite = np.isfinite(curves).all(axis=1)
        kept = curves[finite] if finite.any() else curves
        run = runs.get(label)
        mean = (
            np.array([np.nan if v is None else v for v in run["loss_curve"]])
            if run is not None
            else kept.mean(axis=0)
        )
        steps = np.arange(len(mean))
        name = short_label(label)
        if run is not None and run.get("learning_rate") is not None and "lr_sweep" in run:
            name += f" (lr {run['learning_rate']:.3g})"
        if not finite.all():
            name += f" ({int((~finite).sum())}/{len(finite)} diverged)"
        ax.plot(steps, mean, color=color, ls=style, label=name, lw=1.6)
        if len(kept) > 1:
            with np.errstate(invalid="ignore"):
                ax.fill_between(
                    steps, kept.min(axis=0), kept.max(axis=0), color=color, alpha=0.18, lw=0
                )
    if study.config.get("target_fraction") is None:  # else each seed has its own target
        ax.axhline(study.config["target_loss"], color="0.4", ls=":", lw=1, label="target loss")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    kind = "squared error" if study.config.get("loss") == "mse" else "cross-entropy"
    ax.set_ylabel(f"training loss ({kind}, log scale)")
    ax.set_title(_title(study), fontsize=10)
    ax.legend(fontsize=8, ncols=2, title="line: mean over seeds; band: min-max", title_fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def _normalized(layer: np.ndarray, drop_zeros: bool) -> tuple[np.ndarray, float]:
    """Finite values of one layer divided by the layer's std (zeros dropped if asked)."""
    v = np.asarray(layer, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    std = float(v.std()) if v.size else 0.0
    if drop_zeros:
        v = v[v != 0]
    return (v / std if std > 0 else v[:0]), std


def plot_activations(study: StudyLike) -> Figure:
    """Hidden activations at initialization, one panel per initializer, and their scale.

    Each panel overlays every hidden layer's histogram (colour = depth) with x in units of
    that layer's own standard deviation, so panels are comparable whatever the scale: the
    shape shows whether the distribution keeps its form through depth. The scale itself is
    in the last panel: each layer's std against depth on a log axis (the layer-by-layer
    view of Glorot & Bengio 2010, Fig. 6, and He et al. 2015). For ReLU-like activations
    the exact zeros (half the values) are left out of the histograms.
    """
    activations = study.activations
    labels = list(activations)
    n_panels = len(labels) + 1
    ncols = min(4, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = _figure(3.4 * ncols, 2.9 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)

    act = study.config["activation"]
    drop_zeros = act in _RELU_LIKE
    lo, hi = (0.0, 5.0) if drop_zeros else (-4.0, 4.0)
    bins = np.linspace(lo, hi, 31)
    depth = len(study.config["hidden"])
    cmap = matplotlib.colormaps["viridis"]
    norm = matplotlib.colors.Normalize(vmin=1, vmax=max(depth, 2))
    runs = {run["init"]: cast(RunRecord, run) for run in study.runs}

    for ax, label in zip(axes, labels, strict=False):
        layers: Sequence[np.ndarray] = activations[label]
        stds = []
        for layer, values in enumerate(layers, start=1):
            v, std = _normalized(values, drop_zeros)
            stds.append(std)
            if v.size:
                ax.hist(
                    v,
                    bins=bins,
                    weights=np.full(v.shape, 1.0 / v.size),
                    histtype="step",
                    color=cmap(norm(layer)),
                    lw=1.1,
                )
        if not any(s > 0 for s in stds):
            ax.text(
                0.5,
                0.5,
                "all activations are 0\n(std 0: nothing to show)",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=8,
            )
        else:
            run = runs.get(label)
            first = stds[0] if stds else 0.0
            last = stds[-1] if stds else 0.0
            if run is not None and run["activation_std_at_init"]:
                first = run["activation_std_at_init"][0] or 0.0
                last = run["activation_std_at_init"][-1] or 0.0
            ax.text(
                0.97,
                0.95,
                f"std layer 1: {first:.2g}\nstd layer {depth}: {last:.2g}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
            )
        ax.set_title(short_label(label), fontsize=9)
        ax.set_xlim(lo, hi)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(
            "activation / layer std" + (" (zeros left out)" if drop_zeros else ""), fontsize=7
        )
        ax.set_ylabel("fraction of values", fontsize=7)
    if labels and depth:
        mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        bar = fig.colorbar(mappable, ax=list(axes[: len(labels)]), shrink=0.8, pad=0.01)
        bar.set_label("hidden layer (depth)", fontsize=8)
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        bar.ax.tick_params(labelsize=7)

    ax = axes[len(labels)]
    not_shown = []
    for color, record in zip(_colors(len(study.runs)), study.runs, strict=True):
        run = cast(RunRecord, record)
        stds_ = np.array([np.nan if s is None else s for s in run["activation_std_at_init"]])
        if not np.any(stds_ > 0):
            not_shown.append(short_label(run["init"]))
            continue
        ax.plot(
            np.arange(1, len(stds_) + 1),
            np.where(stds_ > 0, stds_, np.nan),
            "o-",
            ms=3,
            color=color,
            label=short_label(run["init"]),
        )
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("activation std (log scale)", fontsize=8)
    title = "scale through depth (mean over seeds)"
    if not_shown:
        title += "\nstd 0, not shown: " + ", ".join(not_shown)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    fig.suptitle(
        f"Hidden activations at initialization ({act}, {study.config['dataset']}, first seed)",
        fontsize=11,
    )
    return fig
