"""The reproductions' figures (matplotlib, Agg canvas; imported only when drawing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def cost_curves(
    curves: Mapping[str, np.ndarray],
    *,
    title: str,
    ylabel: str = "training cost",
    xlabel: str = "iteration",
    every: int = 1,
) -> Any:
    """Median training cost per init over seeds (band: min..max), log y-axis.

    ``curves``: ``{label: (seeds, steps + 1)}``.
    """
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    for color, (label, c) in zip(_colors(len(curves)), curves.items(), strict=True):
        c = np.asarray(c, dtype=np.float64)[:, ::every]
        steps = np.arange(c.shape[1]) * every
        with np.errstate(invalid="ignore"):
            median = np.nanmedian(c, axis=0)
        ax.plot(steps, median, color=color, lw=1.6, label=f"{label} (median of {len(c)} seeds)")
        ax.fill_between(steps, np.nanmin(c, axis=0), np.nanmax(c, axis=0), color=color, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def histogram_grid(
    values: Mapping[str, Sequence[np.ndarray]],
    *,
    title: str,
    quantity: str,
    drop_zeros: bool = False,
) -> Any:
    """Per-layer histograms: one row per layer, one column per init (CS231n's figure).

    Every panel has its own x-range (symmetric, the 99.5th percentile of ``|value|``) and
    prints its std, so a collapsed init (std 1e-7) is as readable as a healthy one; the
    column headers name the inits. ``drop_zeros`` leaves out exact zeros (dead ReLUs).
    """
    labels = list(values)
    n_layers = max(len(v) for v in values.values())
    fig = _figure(2.3 * len(labels) + 0.6, 1.15 * n_layers + 0.8)
    axes = fig.subplots(n_layers, len(labels), squeeze=False)
    for j, label in enumerate(labels):
        for i in range(n_layers):
            ax = axes[i, j]
            layers = values[label]
            if i >= len(layers):
                ax.set_visible(False)
                continue
            v = np.asarray(layers[i], dtype=np.float64).ravel()
            std = float(v.std())
            shown = v[v != 0] if drop_zeros else v
            lim = float(np.percentile(np.abs(shown), 99.5)) if shown.size else 0.0
            lim = lim if lim > 0 else 1.0
            low = 0.0 if drop_zeros and shown.size and shown.min() >= 0 else -lim
            ax.hist(shown, bins=60, range=(low, lim), color=_colors(len(labels))[j], alpha=0.85)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
            ax.xaxis.get_offset_text().set_fontsize(6)
            ax.text(0.02, 0.95, f"std {std:.2g}", transform=ax.transAxes, fontsize=7, va="top")
            if i == 0:
                ax.set_title(label, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"layer {i + 1}", fontsize=8)
    zeros = "; exact zeros (inactive ReLUs) left out" if drop_zeros else ""
    fig.suptitle(
        f"{title}\n{quantity}; x-range per panel (99.5th pct of |value|){zeros}", fontsize=9
    )
    return fig


def std_vs_layer(stds: Mapping[str, Sequence[float]], *, title: str, ylabel: str) -> Any:
    """Per-layer std per init on a log axis."""
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    n_layers = max((len(s) for s in stds.values()), default=0)
    for color, (label, s) in zip(_colors(len(stds)), stds.items(), strict=True):
        y = np.asarray([np.nan if v is None else v for v in s], dtype=np.float64)
        ax.plot(np.arange(1, len(y) + 1), y, "o-", color=color, label=label)
    ax.set_xticks(range(1, n_layers + 1, max(1, n_layers // 10)))
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def steps_vs_depth(
    depths: Sequence[int],
    steps: Mapping[str, Sequence[float | None]],
    published: Mapping[str, Sequence[float]] | None,
    *,
    budget: int,
    title: str,
) -> Any:
    """Steps to the target against depth (Saxe et al.); never-reached drawn at the budget."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    for color, (label, s) in zip(_colors(len(steps)), steps.items(), strict=True):
        y = np.array([budget if v is None else v for v in s], dtype=np.float64)
        ax.plot(depths, y, "o-", color=color, label=f"{label} (measured)")
        if published and label in published:
            ax.plot(depths, published[label], "x--", color=color, label=f"{label} (published)")
    ax.axhline(budget, color="0.5", ls=":", lw=1, label=f"budget ({budget} steps)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(depths), [str(d) for d in depths])
    ax.set_xlabel("depth (weight layers)")
    ax.set_ylabel("steps to the target (best learning rate)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig
