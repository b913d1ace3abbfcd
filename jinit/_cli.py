"""The ``jinit`` command: ``compare`` (the convergence study), ``repro`` and ``tour``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

USAGE = """\
usage: jinit <command> [options]

commands:
  compare   train a Flax MLP under several initializers and report convergence
            (the default study runs in under a minute on 2 CPU cores)
  repro     reproduce a paper's initialization experiment (published vs measured)
  tour      every initializer's measured std against its formula

Run `jinit <command> --help` for a command's options.
"""

BENCH = (
    "jinit: the benchmarks live in the repository, outside the package; from a clone run"
    " `make bench` or `python benchmarks/run.py --help`."
)


def _command(name: str) -> Callable[[Sequence[str]], int] | None:
    if name == "compare":
        from jinit.train.cli import main as compare

        return compare
    if name == "repro":
        from jinit.repro._cli import main as repro

        return repro
    if name == "tour":
        from jinit._tour import main as tour

        return tour
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jinit`` console script and ``python -m jinit``.

    User mistakes end with a message and exit status 2, never a traceback; Ctrl-C ends
    with status 130 and a closed pipe (``jinit tour | head``) quietly.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command == "bench":
        wants_help = any(a in ("-h", "--help") for a in rest)
        print(BENCH, file=sys.stdout if wants_help else sys.stderr)
        return 0 if wants_help else 2
    run = _command(command)
    if run is None:
        print(
            f"jinit: unknown command {command!r}; choose compare, repro or tour.\n", file=sys.stderr
        )
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return run(rest)
    except KeyboardInterrupt:
        print("\njinit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining
        # about the unflushed stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
