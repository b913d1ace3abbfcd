"""Argument checks of jinit.train: ``TypeError`` for a wrong kind, ``ValueError`` for a bad value.

Integers may be Python or NumPy integers (``numbers.Integral``, not ``bool``); real numbers
anything ``numbers.Real`` (not ``bool``). Checked values come back as Python ``int`` or
``float``, so they can be static jit arguments and JSON values.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, overload

from jinit._core import check_choice


def _kind(value: Any) -> str:
    return f"{value!r} of type {type(value).__name__}"


def is_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``bool`` excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@overload
def check_int(name: str, value: Any, minimum: int, *, or_none: Literal[False] = False) -> int: ...


@overload
def check_int(name: str, value: Any, minimum: int, *, or_none: Literal[True]) -> int | None: ...


def check_int(name: str, value: Any, minimum: int, *, or_none: bool = False) -> int | None:
    """``int(value)`` for an integer ``>= minimum`` (or ``None`` when ``or_none``).

    Examples:
        >>> import numpy as np
        >>> check_int("steps", np.int64(3), 1)
        3
        >>> check_int("steps", 2.0, 1)
        Traceback (most recent call last):
        TypeError: `steps` must be an int; got 2.0 of type float.
    """
    none = " or None" if or_none else ""
    if value is None and or_none:
        return None
    if not is_int(value):
        raise TypeError(f"`{name}` must be an int{none}; got {_kind(value)}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}{none}; got {value!r}.")
    return int(value)


def check_real(name: str, value: Any, *, positive: bool) -> float:
    """``float(value)`` for a finite real number ``> 0`` (``positive``) or ``>= 0``.

    Examples:
        >>> check_real("target_loss", 0, positive=False)
        0.0
        >>> check_real("learning_rate", "0.1", positive=True)
        Traceback (most recent call last):
        TypeError: `learning_rate` must be a real number; got '0.1' of type str.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {_kind(value)}.")
    number = float(value)
    if not (math.isfinite(number) and (number > 0 if positive else number >= 0)):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"`{name}` must be a finite number {bound}; got {value!r}.")
    return number


def check_str(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed`` (``TypeError`` if it is not a string)."""
    return check_choice(name, value, allowed)
