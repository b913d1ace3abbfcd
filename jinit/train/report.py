"""Tables and files for a study's summary (:class:`~jinit.train.schema.StudyLike`).

This module reads a study only through :mod:`jinit.train.schema`; it never imports the
trainer, so ``study -> report -> plots`` is a one-way chain.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from jinit._table import format_table as _format_table
from jinit.train.schema import ResultsLike, RunRecord, Stat, StudyLike

COLUMNS = (
    "init",
    "loss@0",
    "final loss",
    "steps to target",
    "test acc",
    "act std first->last",
    "grad norm first/last",
    "diverged",
)


def _runs(study: ResultsLike) -> list[RunRecord]:
    return [cast(RunRecord, run) for run in study.runs]


def _pm(stat: Stat, digits: int = 3) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _steps(steps: Sequence[int | None]) -> str:
    reached = [s for s in steps if s is not None]
    if not reached:
        return f"never (0/{len(steps)})"
    return f"{sum(reached) / len(reached):.0f} ({len(reached)}/{len(steps)})"


def _ratio_pair(values: Sequence[float | None], sep: str) -> str:
    if not values or values[0] is None or values[-1] is None:
        return "n/a"
    return f"{values[0]:.2g}{sep}{values[-1]:.2g}"


def table_rows(study: ResultsLike) -> list[list[str]]:
    """One row of strings per initializer, in the order of :data:`COLUMNS`."""
    rows = []
    for run in _runs(study):
        rows.append(
            [
                run["init"],
                "n/a"
                if run["initial_loss"]["mean"] is None
                else f"{run['initial_loss']['mean']:.3f}",
                _pm(run["final_train_loss"]),
                _steps(run["steps_to_target"]),
                _pm(run["test_accuracy"]),
                _ratio_pair(run["activation_std_at_init"], " -> "),
                _ratio_pair(run["grad_norm_at_init"], " / "),
                "yes" if run["diverged"] else "no",
            ]
        )
    return rows


def format_table(study: ResultsLike) -> str:
    """A fixed-width text table for terminals (jinit's shared :mod:`jinit._table` format)."""
    return _format_table(COLUMNS, table_rows(study))


def markdown_table(study: ResultsLike) -> str:
    """The same table in GitHub Markdown."""
    rows = table_rows(study)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


_LOSS_HEADS = {
    "softmax": "softmax cross-entropy",
    "sigmoid": "one sigmoid output, binary cross-entropy",
    "mse": "mean squared error",
}


def target_text(config: Mapping[str, Any]) -> str:
    """The target of *steps to target*: ``0.05`` or ``0.5 x its initial loss``."""
    fraction = config.get("target_fraction")
    if fraction is not None:
        return f"{fraction:g} x its initial loss"
    return f"{config['target_loss']}"


def rate_text(config: Mapping[str, Any]) -> str:
    """``learning rate 0.05``, or the swept rates and how each init's rate was chosen."""
    rates = config.get("learning_rates")
    if not rates:
        return f"learning rate {config['learning_rate']}"
    select = config.get("select", "final_loss")
    how = "lowest final training loss" if select == "final_loss" else "fewest steps to target"
    return (
        f"learning rates {', '.join(f'{r:g}' for r in rates)} swept "
        f"(each init keeps the rate with the {how})"
    )


def sweep_table(study: ResultsLike) -> str:
    """Markdown table of the sweep: final training loss per init and rate, chosen in bold."""
    rates = study.config.get("learning_rates")
    if not rates:
        return ""
    lines = [
        "| init | " + " | ".join(f"lr {r:g}" for r in rates) + " | selected |",
        "|" + " --- |" * (len(rates) + 2),
    ]
    for run in study.runs:
        chosen = run.get("learning_rate")
        cells = []
        for entry in run.get("lr_sweep", []):
            loss = entry["final_train_loss"]
            cell = "diverged" if entry["diverged"] else ("n/a" if loss is None else f"{loss:.3g}")
            cells.append(f"**{cell}**" if entry["learning_rate"] == chosen else cell)
        chosen_text = "n/a" if chosen is None else f"{chosen:g}"
        lines.append(f"| {run['init']} | " + " | ".join(cells) + f" | {chosen_text} |")
    return "\n".join(lines)


def findings(study: ResultsLike) -> list[str]:
    """Plain-language observations computed from the numbers."""
    notes = []
    target = target_text(study.config)
    reached = {
        run["init"]: [s for s in run["steps_to_target"] if s is not None] for run in _runs(study)
    }
    # Most seeds reaching the target first, then fewest steps on average over those seeds:
    # one lucky seed out of three does not make an initializer the fastest.
    ranked = [(-len(s), sum(s) / len(s), init) for init, s in reached.items() if s]
    if ranked:
        minus_count, steps, init = min(ranked, key=lambda r: r[:2])
        notes.append(
            f"Fastest to training loss {target}: **{init}** ({-minus_count}/"
            f"{len(study.config['seeds'])} seeds reached it, in {steps:.0f} steps on average)."
        )
    for run in _runs(study):
        first, last = run["loss_curve"][0], run["loss_curve"][-1]
        if run["diverged"]:
            n_div, n = sum(run["diverged_per_seed"]), len(run["diverged_per_seed"])
            notes.append(
                f"**{run['init']}** diverged (non-finite loss) for {n_div}/{n} seeds"
                + ("." if n_div == n else "; its numbers are over the other seeds.")
            )
        elif first is not None and last is not None and last > 0.95 * first:
            notes.append(
                f"**{run['init']}** did not learn: the loss stayed near its initial value "
                f"({first:.3f} -> {last:.3f})."
            )
        stds = run["activation_std_at_init"]
        if len(stds) > 1 and stds[0] and stds[-1] is not None:
            ratio = stds[-1] / stds[0]
            if ratio < 0.1 or ratio > 10:
                verb = "shrinks" if ratio < 1 else "grows"
                notes.append(
                    f"With **{run['init']}** the activation scale {verb} with depth at "
                    f"initialization (last/first hidden layer std = {ratio:.2g})."
                )
    return notes


FIGURES = ("loss_curves.png", "activations.png")
"""The figures ``write_outputs`` draws when matplotlib is installed."""


def markdown_report(study: StudyLike, figures: Sequence[str] = FIGURES) -> str:
    """The content of ``report.md`` (linking the figures named in ``figures``)."""
    c = study.config
    widths = c["hidden"]
    if not widths:
        hidden = "no hidden layers"
    elif len(set(widths)) == 1:
        hidden = f"{len(widths)} hidden layers of {widths[0]}"
    else:
        hidden = "hidden widths " + ", ".join(str(w) for w in widths)
    batch = "full batch" if c["batch_size"] is None else f"batch {c['batch_size']}"
    loss = c.get("loss", "softmax")
    lines = [
        "# Initializer comparison",
        "",
        f"- data: `{c['dataset']}` ({c['n_train']} train / {c['n_test']} test, "
        f"{c['n_features']} features, {c['n_classes']} classes)",
        f"- model: MLP, {hidden}, `{c['activation']}`, bias init `{c['bias_init']}`, "
        f"loss `{loss}` ({_LOSS_HEADS.get(loss, loss)})",
        f"- training: {c['steps']} steps of `{c['optimizer']}`, {rate_text(c)}, {batch}; "
        f"seeds {c['seeds']}",
        f"- {len(study.runs) * len(c['seeds']) * len(c.get('learning_rates') or [0])} "
        "networks trained by one compiled program in "
        f"{study.seconds:.1f} s on `{c['backend']}` (jax {c['jax_version']})",
        "",
        "Mean ± sample std over seeds (those that did not diverge). *steps to target*: first "
        f"step with training loss <= {target_text(c)}, averaged over the seeds that reached "
        "it (count in parentheses). "
        "*act std*: std of the first and last hidden layer's outputs at initialization; "
        "*grad norm*: Frobenius norm of d(loss)/d(kernel) of the first and last layer at "
        "initialization.",
        "",
        markdown_table(study),
        "",
    ]
    if c.get("learning_rates"):
        lines += [
            "## Learning-rate sweep",
            "",
            "Final training loss (mean over seeds) of each init at each rate; the selected "
            "rate's cell is in bold. The table above shows each init at its selected rate.",
            "",
            sweep_table(study),
            "",
        ]
    lines += [
        "## Findings",
        "",
        *[f"- {note}" for note in findings(study)],
        "",
    ]
    titles = {"loss_curves.png": "Loss curves", "activations.png": "Activations at initialization"}
    for name in figures:
        lines += [f"## {titles.get(name, name)}", "", f"![{titles.get(name, name)}]({name})", ""]
    if not figures:
        lines += ["(No figures: matplotlib is not installed, or drawing failed.)", ""]
    return "\n".join(lines)


def plotting_available() -> bool:
    """Whether matplotlib can be imported (the figures are optional)."""
    return importlib.util.find_spec("matplotlib") is not None


def write_outputs(
    study: StudyLike,
    out_dir: str | Path,
    *,
    results: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Writes ``results.json`` and ``report.md``, then the figures if matplotlib is there.

    The two text files are written first, so a figure that fails to draw (or a missing
    matplotlib) never loses the numbers; such a failure is reported through ``log`` (default:
    a line on stderr) and the figure is left out of ``report.md``.

    Args:
        study: the study (see :class:`~jinit.train.schema.StudyLike`).
        out_dir: the output folder, created if needed.
        results: the content of ``results.json``; default ``{"config", "runs"}`` of ``study``.
        log: where to report a figure that could not be drawn.

    Returns:
        ``{file name: path}`` of the written files.
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if results is None:
        to_dict = getattr(study, "to_dict", None)
        results = to_dict() if callable(to_dict) else {"config": study.config, "runs": study.runs}
    paths = {name: out / name for name in ("results.json", "report.md")}
    paths["results.json"].write_text(json.dumps(results, indent=1, allow_nan=False))
    drawn: list[str] = []
    paths["report.md"].write_text(markdown_report(study, drawn))  # rewritten with the figures
    draw: dict[str, Callable[[StudyLike], Any]] = {}
    dpi = 150
    if plotting_available():
        try:
            from jinit.train import plots
        except Exception as err:  # a broken matplotlib install: keep the numbers
            log(f"jinit: cannot import matplotlib ({type(err).__name__}: {err}); no figures.")
        else:
            draw = {
                "loss_curves.png": plots.plot_loss_curves,
                "activations.png": plots.plot_activations,
            }
            dpi = plots.DPI
    for name, plot in draw.items():
        try:
            plot(study).savefig(out / name, dpi=dpi)
        except Exception as err:  # a figure is a bonus: never lose the run over it
            log(f"jinit: could not draw {name} ({type(err).__name__}: {err}); skipped.")
            continue
        drawn.append(name)
        paths[name] = out / name
    paths["report.md"].write_text(markdown_report(study, drawn))
    return paths
