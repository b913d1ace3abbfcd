"""Shared pytest fixtures."""

import contextlib
import logging

import jax
import pytest


@pytest.fixture
def strict_promotion():
    """Runs a test with jax's strict dtype promotion, to catch silent upcasts."""
    with jax.numpy_dtype_promotion("strict"):
        yield


@contextlib.contextmanager
def count_compiles():
    """Counts XLA compilations inside the block: ``with count_compiles() as n: ...; n[0]``."""
    count = [0]

    class _Handler(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Compiling "):
                count[0] += 1

    handler, logger = _Handler(), logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles():
            yield count
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
