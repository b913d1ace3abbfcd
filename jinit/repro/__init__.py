"""Reproductions of the classic initialization experiments, published numbers side by side.

``jinit.repro.run(NAME)`` (and ``jinit repro NAME`` in a shell) runs one experiment as the
paper or course set it up and returns a :class:`Reproduction`: the measured runs (in the
``jinit compare`` schema), and findings ``{"name", "reference", "measured", "holds",
"criterion"}`` whose ``holds`` is computed from the measurement. ``out=DIR`` writes
``results.json``, ``report.md`` and the figures (when matplotlib is installed).

Experiments (:data:`NAMES`):

- ``course``: the deep-learning course's exercise: zeros / ``randn * 10`` / He on
  ``make_circles(300, noise=0.05)``, network [2, 10, 5, 1], 15000 gradient-descent steps.
- ``glorot-bengio``: Glorot & Bengio (2010): activation and back-propagated gradient std
  per layer of a 5 x 1000 tanh net, standard vs normalized init.
- ``he-deep-relu``: He et al. (2015): 22/30-layer ReLU nets, He vs Xavier.
- ``saxe``: Saxe et al. (2014): deep linear nets, steps to 1% of the initial loss against
  depth, orthogonal vs scaled Gaussian (learning rate tuned per init and depth).
- ``lsuv``: Mishkin & Matas (2016): LSUV vs He vs Glorot in a thin 20-layer net.
- ``cs231n``: CS231n's 10 x 500 signal-propagation demo (tanh and ReLU).

Examples:
    >>> from jinit import repro
    >>> repro.NAMES
    ('course', 'glorot-bengio', 'he-deep-relu', 'saxe', 'lsuv', 'cs231n')

References:
    Glorot & Bengio, *Understanding the difficulty of training deep feedforward neural
    networks*, AISTATS 2010. He, Zhang, Ren & Sun, *Delving deep into rectifiers*, ICCV
    2015. Saxe, McClelland & Ganguli, *Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks*, ICLR 2014. Mishkin & Matas, *All you need is
    a good init*, ICLR 2016. CS231n, *Training neural networks I* (weight initialization).
    Ng, *Improving deep neural networks*, week 1 "Initialization" assignment.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from jinit.repro._result import Reproduction as Reproduction

NAMES: tuple[str, ...] = ("course", "glorot-bengio", "he-deep-relu", "saxe", "lsuv", "cs231n")
"""The experiments :func:`run` knows (``"all"`` runs every one)."""

__all__ = ["NAMES", "Reproduction", "run"]


def run(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    progress: bool = False,
) -> Reproduction | list[Reproduction]:
    """Runs the experiment ``name`` (one of :data:`NAMES`, or ``"all"``).

    Args:
        name: an experiment name, or ``"all"`` for every experiment in order.
        out: a directory for ``results.json``, ``report.md`` and the figures; with
            ``"all"``, one sub-directory per experiment plus a summary ``report.md`` and
            ``results.json``. None writes nothing.
        quick: a small version (seconds each) for tests and notebooks; its numbers are not
            the papers' settings, so its findings may not hold.
        progress: show a progress bar while training.

    Returns:
        A :class:`Reproduction` (a list of them for ``"all"``).

    Raises:
        ValueError: for an unknown name (listing the known ones).
        TypeError: if ``name`` is not a string or ``quick`` not a bool.

    Examples:
        >>> result = run("saxe", quick=True)
        >>> sorted(result.to_dict())
        ['config', 'experiment', 'findings', 'runs', 'seconds', 'title']
        >>> all(isinstance(f["holds"], bool) for f in result.findings)
        True
    """
    from jinit._core import check_choice
    from jinit._validate import check_bool
    from jinit.repro._experiments import EXPERIMENTS

    check_choice("name", name, (*NAMES, "all"))
    check_bool("quick", quick)
    check_bool("progress", progress)
    if name != "all":
        result = EXPERIMENTS[name](quick=quick, progress=progress)
        if out is not None:
            result.save(out)
        return result
    results = []
    for each in NAMES:
        print(f"jinit repro: {each} ...", file=sys.stderr)
        start = time.perf_counter()
        result = EXPERIMENTS[each](quick=quick, progress=progress)
        if out is not None:
            result.save(Path(out) / each)
        print(
            f"jinit repro: {each} done in {time.perf_counter() - start:.0f} s; "
            f"{sum(f['holds'] for f in result.findings)}/{len(result.findings)} findings hold",
            file=sys.stderr,
        )
        results.append(result)
    if out is not None:
        from jinit.repro._result import write_summary

        write_summary(results, Path(out))
    return results
