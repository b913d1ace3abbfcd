"""``jinit tour``: every initializer, its measured std against its formula."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jinit import _initializers as core
from jinit import _structured
from jinit._registry import get, known_names
from jinit._table import format_table

SHAPES = {"dense (512, 256)": (512, 256), "conv (3, 3, 64, 128)": (3, 3, 64, 128)}


def expected_std(init: Any, shape: tuple[int, ...]) -> float | None:
    """The closed-form std of one element, where the scheme has a simple one."""
    if isinstance(init, core._VarianceScaling):
        return math.sqrt(init.scale / init.denominator(shape))
    if isinstance(init, core._Normal):
        return init.stddev
    if isinstance(init, core._Uniform):
        return init.scale / math.sqrt(12)
    if isinstance(init, core._UniformRange):
        return (init.maxval - init.minval) / math.sqrt(12)
    if isinstance(init, core._TruncatedNormal) and (init.lower, init.upper) == (-2.0, 2.0):
        return init.stddev * core.TRUNCATED_NORMAL_STD
    if isinstance(init, core._Orthogonal) and init.batch_axis == ():
        cols = shape[init.column_axis]
        return init.scale / math.sqrt(max(cols, math.prod(shape) // cols))
    if isinstance(init, _structured._UniformUnitScaling):
        return init.factor / math.sqrt(max(1, math.prod(shape[:-1])))
    if isinstance(init, (core._Zeros, core._Ones)):
        return 0.0
    return None


def rows(seed: int = 0, names: list[str] | None = None) -> list[tuple[str, str, list[str]]]:
    """(name, repr, cells) for every initializer (or those in ``names``) that builds with
    its defaults."""
    key = jax.random.key(seed)
    out = []
    for name in known_names() if names is None else names:
        try:
            init = get(name)
        except (TypeError, ValueError):  # needs arguments (constant, sparse, bias_default)
            continue
        if init is None:
            continue
        cells = []
        for shape in SHAPES.values():
            try:
                std = float(np.asarray(init(key, shape)).std())
            except ValueError:
                cells.append("n/a")
                continue
            expected = expected_std(init, shape)
            cells.append(f"{std:.5f}" + ("" if expected is None else f" ({expected:.5f})"))
        out.append((name, repr(init), cells))
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``jinit tour`` argument parser."""
    p = argparse.ArgumentParser(
        prog="jinit tour",
        description=(
            "Draw every initializer that builds with its defaults on a dense (512, 256) and a "
            "conv (3, 3, 64, 128) shape, and print the measured std next to the formula's."
        ),
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the draws (default 0)")
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="names accepted by jinit.get (default: every registered name)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the tour table to stdout (``argv``: the arguments after ``tour``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    known = set(known_names())
    for name in args.names:
        try:
            get(name)
        except (TypeError, ValueError) as err:
            if name not in known:
                parser.error(f"argument NAME: {err}")
    headers = ["name", *[f"std {s} (formula)" for s in SHAPES]]
    table = [[name, *cells] for name, _, cells in rows(args.seed, args.names or None)]
    print(format_table(headers, table))
    return 0
