"""Shared pytest fixtures, the two test tiers, parallel runs and the compilation cache.

Tiers. ``make test-fast`` (``pytest -m "not slow"``) is the inner loop: the catalog and the
model tools. ``make test`` and CI run everything. The slow tier is

* the tests that execute notebooks, start 8-device subprocesses, run the benchmark smoke test,
  the README, a clean install or the sampler internals, and that train networks (the trainer
  and its CLI, doctests of ``jinit/train`` included): marked below by file (``SLOW_FILES``), by
  test (``SLOW_TESTS``: a name, or a name with its parameters) and by path;
* the rest of the catalog sweeps: the per-entry tests that compile a program for every entry
  run on ``tests/catalog.py``'s ``FAST`` entries (one per family and sampler, checked by
  ``tests/test_protocol.py``) in the fast tier and on every entry in the slow one; likewise the
  fuzzed jax parity, the "every call jax accepts" sweep and the orthogonal method grid (their
  ``pytest.param`` marks in the test files);
* tests marked ``@pytest.mark.slow`` in their files.

Every public initializer is still called in the fast tier: the moments, eval_shape, empty-shape
and complex-refusal tests run on the whole catalog, and tests/test_fuzz.py fuzzes every public
factory.

Parallel runs. The Makefile runs pytest with pytest-xdist (``-n auto --dist loadfile``): each
file's tests run on one worker, so a module-scoped fixture (a README run, an 8-device
subprocess, a trained study) is built once, not once per worker. (``--dist loadgroup`` with
``xdist_group`` marks would be finer, but pytest-xdist 3.8 does not group under pytest 9.2:
pytest-xdist issue #1386.) Nothing else is shared between tests: outputs go to ``tmp_path``,
notebooks write to ``tempfile`` folders, and the compile counts are per process.

Compilation cache. The test processes keep jax's compiled programs in ``.pytest_cache/jax``
(git-ignored; ``make clean`` removes it): the workers of one run share it, and a second run of
the fast tier compiles almost nothing. ``JINIT_TEST_JAX_CACHE=0`` turns it off.
"""

import contextlib
import logging
import os
import pathlib

import jax
import pytest

SLOW_FILES = frozenset(
    {
        "test_bench.py",  # benchmark smoke
        "test_bench_models.py",  # benchmark smoke (whole-model table, reinit part)
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
    {  # 8-device subprocesses
        "test_sharded_values_equal_and_each_device_makes_only_its_shard",
        "test_orbax_restores_into_the_target_sharding_on_8_devices",
    }
)


def _is_slow(item: pytest.Item) -> bool:
    path = pathlib.Path(str(item.path))
    if path.name in SLOW_FILES or {item.name, item.name.split("[")[0]} & SLOW_TESTS:
        return True
    return path.suffix == ".py" and "train" in path.parts and "jinit" in path.parts  # doctests


def _persistent_compilation_cache(config) -> None:
    """Most of the suite's time is XLA compiling small programs: keep the compiled programs
    in a git-ignored folder of the checkout, shared by the xdist workers and by later runs.
    A cached program is the same executable (jax's cache key holds the program, the compile
    options, XLA_FLAGS, the platform and jaxlib's version; the folder is per jax version and
    per machine, since the key does not hold the host CPU's features); jax still logs
    "Compiling", so ``count_compiles`` counts the same. A worker reading an entry another
    one is still writing gets a warning and compiles. ``JINIT_TEST_JAX_CACHE=0`` turns it
    off, another value moves it."""
    import platform

    import jaxlib

    here = f"{jax.__version__}-{jaxlib.__version__}-{platform.machine()}-{platform.node()}"
    default = config.rootpath / ".pytest_cache" / "jax" / here
    where = os.environ.get("JINIT_TEST_JAX_CACHE", str(default))
    if where in ("", "0") or jax.config.jax_compilation_cache_dir:  # off, or the user's own
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def pytest_configure(config):
    _persistent_compilation_cache(config)


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
