"""One plain-text table format, shared by every report jinit prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_table"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned, fixed-width text table: a header line, a dashed rule, one line per row.

    Columns are separated by two spaces; trailing spaces are stripped. Cells are printed
    with ``str``, except floats (4 significant digits, ``f"{x:.4g}"``) and ``None`` (``-``).

    Args:
      headers: the column names.
      rows: one sequence of cells per row, each as long as ``headers``.

    Returns:
      The table, lines joined with ``"\\n"`` (no trailing newline).

    Raises:
      ValueError: if a row's length differs from the number of headers.

    Examples:
      >>> from jinit._table import format_table
      >>> print(format_table(["layer", "std"], [["fc", 0.123456], ["out", None]]))
      layer  std
      -----  ------
      fc     0.1235
      out    -
    """
    cells = [[str(h) for h in headers]]
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(
                f"format_table: row {i} has {len(row)} cells but there are {len(headers)} "
                f"headers; got row {list(row)!r}."
            )
        cells.append([_cell(v) for v in row])
    widths = [max(len(r[c]) for r in cells) for c in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
