"""The outcome of one reproduction: results.json, report.md and figures."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def finding(name: str, reference: str, measured: str, holds: bool, criterion: str) -> dict:
    """One published-vs-measured row; ``holds`` is computed by the caller from the numbers."""
    return {
        "name": name,
        "reference": reference,
        "measured": measured,
        "holds": bool(holds),
        "criterion": criterion,
    }


def cell(text: Any) -> str:
    """Text safe inside a Markdown table cell (pipes escaped)."""
    return str(text).replace("|", "\\|")


def fmt(values: Any, digits: int = 3) -> str:
    """Numbers as short text: ``0.461 0.25 ...`` (``n/a`` for None)."""
    if isinstance(values, (list, tuple)):
        return " ".join(fmt(v, digits) for v in values)
    if values is None:
        return "n/a"
    if isinstance(values, int):
        return str(values)
    value = float(values)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.3g}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits + 1}g}"


@dataclasses.dataclass(eq=False)
class Reproduction:
    """One experiment's outcome (see :func:`jinit.repro.run`).

    Attributes:
        experiment: the experiment's name, e.g. ``"glorot-bengio"``.
        title: a one-line description with the paper.
        config: the settings (JSON-ready).
        runs: per initializer (and configuration), the ``jinit compare`` run schema.
        findings: ``{"name", "reference", "measured", "holds", "criterion"}`` rows.
        seconds: wall time of the experiment.
        figures: ``{file name: function returning a matplotlib Figure}``, drawn by
            :meth:`save` when matplotlib is installed.
        notes: extra Markdown lines for the report (setup details).
    """

    experiment: str
    title: str
    config: dict[str, Any]
    runs: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    seconds: float
    figures: dict[str, Callable[[], Any]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def holds(self) -> bool:
        """Whether every finding holds."""
        return all(f["holds"] for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``results.json``."""
        return {
            "experiment": self.experiment,
            "title": self.title,
            "config": self.config,
            "runs": self.runs,
            "findings": self.findings,
            "seconds": self.seconds,
        }

    def table(self) -> str:
        """The published-vs-measured table in Markdown."""
        lines = [
            "| finding | published | measured | holds |",
            "|---|---|---|---|",
        ]
        for f in self.findings:
            mark = "yes" if f["holds"] else "**no**"
            row = (f["name"], f["reference"], f["measured"], mark)
            lines.append("| " + " | ".join(cell(c) for c in row) + " |")
        return "\n".join(lines)

    def report(self, figure_names: list[str] | None = None) -> str:
        """The content of ``report.md``: setup, table, one sentence per finding, figures."""
        lines = [f"# {self.title}", "", *self.notes, "", self.table(), "", "## Findings", ""]
        for f in self.findings:
            verdict = "holds" if f["holds"] else "does NOT hold"
            lines.append(
                f"- **{f['name']}** {verdict}: published {f['reference']}; measured "
                f"{f['measured']} (criterion: {f['criterion']})."
            )
        lines += ["", f"Ran in {self.seconds:.1f} s.", ""]
        for name in figure_names or []:
            lines += [f"![{name}]({name})", ""]
        return "\n".join(lines)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes results.json, report.md and (with matplotlib) the figures to ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"results.json": out / "results.json", "report.md": out / "report.md"}
        paths["results.json"].write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False))
        drawn = []
        if self.figures and have_matplotlib():
            for name, draw in self.figures.items():
                fig = draw()
                fig.savefig(out / name, dpi=110)
                paths[name] = out / name
                drawn.append(name)
        elif self.figures:
            _warn_no_matplotlib()
        paths["report.md"].write_text(self.report(drawn))
        return paths


_WARNED = False


def _warn_no_matplotlib() -> None:
    """One line on stderr, once per process: figures are skipped without matplotlib."""
    global _WARNED
    if not _WARNED:
        _WARNED = True
        print(
            "jinit repro: matplotlib is not installed; skipping the figures "
            "(pip install matplotlib).",
            file=sys.stderr,
        )


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (figures are optional)."""
    return importlib.util.find_spec("matplotlib") is not None


def summary_table(results: list[Reproduction]) -> str:
    """One Markdown table of every experiment's findings."""
    lines = [
        "| experiment | finding | published | measured | holds |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for f in r.findings:
            mark = "yes" if f["holds"] else "**no**"
            row = (r.experiment, f["name"], f["reference"], f["measured"], mark)
            lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines)


def write_summary(results: list[Reproduction], out: Path) -> dict[str, Path]:
    """``out/results.json`` (every experiment) and ``out/report.md`` (one table, links)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results.json": out / "results.json", "report.md": out / "report.md"}
    paths["results.json"].write_text(
        json.dumps({"experiments": [r.to_dict() for r in results]}, indent=1, allow_nan=False)
    )
    total = sum(len(r.findings) for r in results)
    held = sum(f["holds"] for r in results for f in r.findings)
    lines = [
        "# jinit repro all",
        "",
        f"{held}/{total} findings hold; {sum(r.seconds for r in results):.0f} s in all.",
        "",
        summary_table(results),
        "",
        *[f"- [{r.experiment}]({r.experiment}/report.md): {r.title}" for r in results],
        "",
    ]
    paths["report.md"].write_text("\n".join(lines))
    return paths
