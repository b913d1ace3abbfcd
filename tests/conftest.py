"""Shared pytest fixtures, and the two test tiers.

``make test-fast`` (``pytest -m "not slow"``) is the inner loop: the catalog and the model
tools. ``make test`` and CI run everything. Besides tests marked ``@pytest.mark.slow`` in
their files, the hook below marks as slow, by file, the tests that execute notebooks, start
8-device subprocesses, run the benchmark smoke test, the README or a clean install, and train
networks (the trainer and its CLI, doctests of ``jinit/train`` included).
"""

import contextlib
import logging
import pathlib

import jax
import pytest

SLOW_FILES = frozenset(
    {
        "test_bench.py",  # benchmark smoke
        "test_data_notebook.py",  # notebooks
        "test_install.py",
        "test_orthogonal_methods.py",  # sampler internals: blocked Householder, Cholesky-QR2
        "test_threefry.py",  # bit-exact Threefry against jax.random, version gating
        "test_notebook_quickstart.py",
        "test_notebooks_train.py",
        "test_readme.py",  # README blocks in a subprocess with 8 CPU devices
        "test_sharding.py",  # 8-device subprocess
        "test_train.py",  # the trainer
        "test_train_cli.py",
        "test_train_findings.py",
    }
)
SLOW_TESTS = frozenset(
    {"test_sharded_values_equal_and_each_device_makes_only_its_shard"}  # 8-device subprocess
)


def _is_slow(item: pytest.Item) -> bool:
    path = pathlib.Path(str(item.path))
    if path.name in SLOW_FILES or item.name.split("[")[0] in SLOW_TESTS:
        return True
    return path.suffix == ".py" and "train" in path.parts and "jinit" in path.parts  # doctests


def pytest_collection_modifyitems(config, items):
    """Marks the slow tier (see the module docstring)."""
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


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


# Scripts run in subprocesses (8 simulated devices); --doctest-modules must not import them,
# since importing one sets XLA_FLAGS in this process and in everything it starts.
collect_ignore = ["sharded_worker.py", "checkpoint_worker.py", "fast_init_sharded_worker.py"]
