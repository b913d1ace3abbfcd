"""Tables and files for a :class:`~jinit.train.study.Study`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinit._table import format_table as _format_table

if TYPE_CHECKING:
    from jinit.train.study import Study

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


def _pm(stat: dict[str, Any], digits: int = 3) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _steps(steps: list[int | None]) -> str:
    reached = [s for s in steps if s is not None]
    if not reached:
        return f"never (0/{len(steps)})"
    return f"{sum(reached) / len(reached):.0f} ({len(reached)}/{len(steps)})"


def _ratio_pair(values: list[float | None], sep: str) -> str:
    if not values or values[0] is None or values[-1] is None:
        return "n/a"
    return f"{values[0]:.2g}{sep}{values[-1]:.2g}"


def table_rows(study: Study) -> list[list[str]]:
    """One row of strings per initializer, in the order of :data:`COLUMNS`."""
    rows = []
    for run in study.runs:
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


def format_table(study: Study) -> str:
    """A fixed-width text table for terminals (jinit's shared :mod:`jinit._table` format)."""
    return _format_table(COLUMNS, table_rows(study))


def markdown_table(study: Study) -> str:
    """The same table in GitHub Markdown."""
    rows = table_rows(study)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def findings(study: Study) -> list[str]:
    """Plain-language observations computed from the numbers."""
    notes = []
    target = study.config["target_loss"]
    reached = {
        run["init"]: [s for s in run["steps_to_target"] if s is not None] for run in study.runs
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
    for run in study.runs:
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


def markdown_report(study: Study) -> str:
    """The content of ``report.md``."""
    c = study.config
    widths = c["hidden"]
    if not widths:
        hidden = "no hidden layers"
    elif len(set(widths)) == 1:
        hidden = f"{len(widths)} hidden layers of {widths[0]}"
    else:
        hidden = "hidden widths " + ", ".join(str(w) for w in widths)
    batch = "full batch" if c["batch_size"] is None else f"batch {c['batch_size']}"
    lines = [
        "# Initializer comparison",
        "",
        f"- data: `{c['dataset']}` ({c['n_train']} train / {c['n_test']} test, "
        f"{c['n_features']} features, {c['n_classes']} classes)",
        f"- model: MLP, {hidden}, `{c['activation']}`, bias init `{c['bias_init']}`",
        f"- training: {c['steps']} steps of `{c['optimizer']}`, learning rate "
        f"{c['learning_rate']}, {batch}; seeds {c['seeds']}",
        f"- {len(study.runs) * len(c['seeds'])} networks trained by one compiled program in "
        f"{study.seconds:.1f} s on `{c['backend']}` (jax {c['jax_version']})",
        "",
        "Mean ± sample std over seeds (those that did not diverge). *steps to target*: first "
        f"step with training loss <= {c['target_loss']}, averaged over the seeds that reached "
        "it (count in parentheses). "
        "*act std*: std of the first and last hidden layer's outputs at initialization; "
        "*grad norm*: Frobenius norm of d(loss)/d(kernel) of the first and last layer at "
        "initialization.",
        "",
        markdown_table(study),
        "",
        "## Findings",
        "",
        *[f"- {note}" for note in findings(study)],
        "",
        "## Loss curves",
        "",
        "![loss curves](loss_curves.png)",
        "",
        "## Activations at initialization",
        "",
        "![activation histograms](activations.png)",
        "",
    ]
    return "\n".join(lines)


def write_outputs(study: Study, out_dir: str | Path) -> dict[str, Path]:
    """Writes ``results.json``, ``report.md``, ``loss_curves.png``, ``activations.png``.

    Returns:
        ``{file name: path}`` of the written files.
    """
    from jinit.train.plots import plot_activations, plot_loss_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out / name
        for name in ("results.json", "report.md", "loss_curves.png", "activations.png")
    }
    paths["results.json"].write_text(json.dumps(study.to_dict(), indent=1, allow_nan=False))
    paths["report.md"].write_text(markdown_report(study))
    plot_loss_curves(study).savefig(paths["loss_curves.png"], dpi=90)
    plot_activations(study).savefig(paths["activations.png"], dpi=90)
    return paths
