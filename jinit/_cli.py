"""The ``jinit`` command: ``compare`` (the convergence study) and ``tour``."""

from __future__ import annotations

import sys

USAGE = """\
usage: jinit <command> [options]

commands:
  compare   train a Flax MLP under several initializers and report convergence
            (the default study runs in under a minute on 2 CPU cores)
  tour      every initializer's measured std against its formula
  repro     reproduce a paper's initialization experiment (published vs measured)

Run `jinit <command> --help` for a command's options.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jinit`` console script and ``python -m jinit``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command == "compare":
        from jinit.train.cli import main as run
    elif command == "bench":
        print(
            "jinit: the benchmarks live in the repository, outside the package; from a clone run"
            " `make bench` or `python benchmarks/run.py --help`.",
            file=sys.stderr,
        )
        return 2
    elif command == "tour":
        from jinit._tour import main as run
    elif command == "repro":  # issue 11
        from jinit.repro._cli import main as run
    else:
        print(f"jinit: unknown command {command!r}; choose compare or tour.\n", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    return run(rest)
