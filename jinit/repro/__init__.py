"""Reproductions of classic initialization experiments (placeholder; see issue 11)."""
