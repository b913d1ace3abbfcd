"""``jinit repro NAME``: run a paper's experiment and write its report."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence

from jinit.repro import NAMES

EPILOG = """\
experiments:
  course         zeros / randn*10 / He on the course's make_circles(300), [2, 10, 5, 1]
  glorot-bengio  Glorot & Bengio 2010: 5 tanh layers of 1000, activations and gradients
  he-deep-relu   He et al. 2015: 22- and 30-layer ReLU nets, He vs Xavier
  saxe           Saxe et al. 2014: deep linear nets, steps to 1% loss vs depth
  lsuv           Mishkin & Matas 2016: LSUV vs He vs Glorot, 20 layers
  cs231n         CS231n: 10 layers of 500, tanh and ReLU, per-layer statistics
  all            every experiment (a summary report.md in --out)

examples:
  jinit repro glorot-bengio --out runs/gb
  jinit repro all --quick
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``jinit repro`` argument parser."""
    p = argparse.ArgumentParser(
        prog="jinit repro",
        description=textwrap.fill(
            "Reproduce a classic initialization experiment as the paper (or course) set it "
            "up, print the published-vs-measured table and write results.json, report.md "
            "and figures (figures need matplotlib). Each runs in at most a few minutes on "
            "2 CPU cores; --quick runs a small version in seconds."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=(*NAMES, "all"), help="the experiment (see below)")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="output directory (default runs/repro/NAME)"
    )
    p.add_argument(
        "--quick", action="store_true", help="small version (seconds); findings may not hold"
    )
    p.add_argument("--progress", action="store_true", help="show training progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``jinit repro`` with ``argv`` (the arguments after the word ``repro``).

    Returns:
        0 when every finding holds, 1 otherwise (bad arguments exit with status 2).
    """
    from jinit import repro
    from jinit.repro import _result
    from jinit.repro._result import have_matplotlib, summary_table

    args = build_parser().parse_args(argv)
    out = args.out or f"runs/repro/{args.name}"
    if not have_matplotlib():
        _result._warn_no_matplotlib()  # before any work starts
    result = repro.run(args.name, out, quick=args.quick, progress=args.progress)
    results = result if isinstance(result, list) else [result]
    print(summary_table(results))
    held = sum(f["holds"] for r in results for f in r.findings)
    total = sum(len(r.findings) for r in results)
    print(f"\n{held}/{total} findings hold; wrote {out}")
    return 0 if held == total else 1
