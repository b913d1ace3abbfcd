"""Shared pytest fixtures."""

import jax
import pytest


@pytest.fixture
def strict_promotion():
    """Runs a test with jax's strict dtype promotion, to catch silent upcasts."""
    with jax.numpy_dtype_promotion("strict"):
        yield
