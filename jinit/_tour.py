"""``jinit tour``: every initializer, its measured std against its formula."""

from __future__ import annotations

import math

import jax
import numpy as np

from jinit import _initializers as core
from jinit import _structured
from jinit._registry import get, known_names

SHAPES = {"dense (512, 256)": (512, 256), "conv (3, 3, 64, 128)": (3, 3, 64, 128)}


def expected_std(init, shape: tuple[int, ...]) -> float | None:
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


def main(argv: list[str] | None = None) -> int:
    """Prints the tour table to stdout."""
    del argv
    headers = ["name", *[f"std {s} (formula)" for s in SHAPES]]
    table = [(name, *cells) for name, _, cells in rows()]
    widths = [max(len(str(r[i])) for r in [headers, *table]) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0
