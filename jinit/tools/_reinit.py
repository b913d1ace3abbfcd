"""Re-initialize an existing model's parameters by path patterns (placeholder; see issue 8)."""

from __future__ import annotations

from typing import Any


def reinit(target: Any, rules: Any, key: Any) -> Any:
    """Placeholder until the implementation lands."""
    raise NotImplementedError("jinit.reinit is not implemented yet")
