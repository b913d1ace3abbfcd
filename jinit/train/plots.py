"""Figures of a study (matplotlib, Agg canvas; pyplot's global state is never touched)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jinit.train.metrics import curve_mean_std

if TYPE_CHECKING:
    from jinit.train.study import Study


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_loss_curves(study: Study) -> Figure:
    """Mean training loss per initializer with a ±1 sample-std band (log scale).

    Both are taken over the seeds that did not diverge, as ``loss_curve`` in ``results.json``.
    """
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    styles = ["-", "--", "-.", ":"]
    for i, (label, curves) in enumerate(study.curves.items()):
        color, style = _colors(len(study.curves))[i], styles[(i // 10 + i) % len(styles)]
        mean, std = curve_mean_std(curves)
        steps = np.arange(len(mean))
        ax.plot(steps, mean, color=color, ls=style, label=label, lw=1.6)
        low = np.maximum(mean - std, mean * 1e-3)
        ax.fill_between(steps, low, mean + std, color=color, alpha=0.2, lw=0)
    ax.axhline(study.config["target_loss"], color="0.4", ls=":", lw=1, label="target")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy)")
    c = study.config
    depth = len(c["hidden"])
    ax.set_title(
        f"{c['dataset']}: {depth} hidden {c['activation']} layers, {c['optimizer']} "
        f"lr={c['learning_rate']}, {len(c['seeds'])} seeds"
    )
    ax.legend(fontsize=8, ncols=2)
    ax.grid(alpha=0.3, which="both")
    return fig


def plot_activations(study: Study) -> Figure:
    """Per-layer histograms of hidden activations at init, one panel per initializer.

    In the manner of Glorot & Bengio (2010, Fig. 6) and He et al. (2015): a shared x-range
    across panels shows which initializers keep the signal's scale through depth. For
    ReLU-like activations the exact zeros are left out of the histograms. A last panel
    plots each initializer's activation std against depth (log scale).
    """
    labels = list(study.activations)
    n_panels = len(labels) + 1
    ncols = min(4, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = _figure(3.2 * ncols, 2.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)

    values = {
        label: [np.asarray(a, dtype=np.float64).ravel() for a in layers]
        for label, layers in study.activations.items()
    }
    drop_zeros = study.config["activation"] in ("relu", "leaky_relu", "gelu")
    pooled = np.concatenate([v for layers in values.values() for v in layers] or [np.zeros(1)])
    pooled = pooled[np.isfinite(pooled)]
    if drop_zeros:
        pooled = pooled[pooled != 0]
    lo, hi = np.percentile(pooled, [0.5, 99.5]) if pooled.size else (-1.0, 1.0)
    if drop_zeros:
        lo = min(lo, 0.0)
    bounded = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
    lo, hi = bounded.get(study.config["activation"], (lo, hi))
    if hi - lo <= 0:
        lo, hi = lo - 1.0, hi + 1.0
    bins = np.linspace(lo, hi, 41)

    depth = len(study.config["hidden"])
    import matplotlib

    shades = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, max(depth, 1)))
    for ax, label in zip(axes, labels, strict=False):
        for layer, (v, shade) in enumerate(zip(values[label], shades, strict=False)):
            v = v[np.isfinite(v)]
            if drop_zeros:
                v = v[v != 0]
            if v.size == 0:
                continue
            weights = np.full(v.shape, 1.0 / v.size)
            ax.hist(
                v,
                bins=bins,
                weights=weights,
                histtype="step",
                color=shade,
                label=f"layer {layer + 1}" if layer in (0, depth - 1) else None,
            )
        stds = next(r for r in study.runs if r["init"] == label)["activation_std_at_init"]
        if not any(np.any(v != 0) for v in values[label]):
            ax.text(0.5, 0.5, "all activations are 0", transform=ax.transAxes, ha="center")
        elif stds:
            first, last = stds[0], stds[-1]
            ax.text(
                0.98,
                0.95,
                f"std {first:.2g} -> {last:.2g}" if last is not None else "",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
            )
        ax.set_title(label, fontsize=10)
        ax.set_xlim(lo, hi)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("activation value" + (" (nonzero)" if drop_zeros else ""), fontsize=8)
    with_lines = [ax for ax in axes[: len(labels)] if ax.get_legend_handles_labels()[0]]
    if with_lines:
        with_lines[0].legend(fontsize=7, loc="center right")
    if labels:
        axes[0].set_ylabel("fraction of values", fontsize=8)

    ax = axes[len(labels)]
    for color, run in zip(_colors(len(study.runs)), study.runs, strict=True):
        stds = np.array([np.nan if s is None else s for s in run["activation_std_at_init"]])
        ax.plot(
            np.arange(1, depth + 1),
            np.where(stds > 0, stds, np.nan),
            "o-",
            ms=3,
            color=color,
            label=run["init"],
        )
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer", fontsize=8)
    ax.set_title("activation std at init", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    fig.suptitle(
        f"Hidden activations at initialization ({study.config['activation']}, "
        f"{study.config['dataset']}, first seed)",
        fontsize=11,
    )
    return fig
