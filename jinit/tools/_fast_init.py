"""Whole-model initialization with grouped random draws (placeholder; see issue 8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def fast_init(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Placeholder: behaves as ``jax.jit(fn)`` until the grouping rewriter lands."""
    return jax.jit(fn)
