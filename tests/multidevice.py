"""Runs a test's script in a fresh Python process with simulated CPU devices.

jax fixes its device count when it starts, so tests of sharded behaviour run their script
(Python source, or the path of a worker file) in a subprocess whose environment asks for
8 CPU devices, with the repository first on the path.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(source: str | pathlib.Path, *, devices: int = 8, timeout: int = 600) -> str:
    """Runs ``source`` and returns what it printed; fails with the end of its stderr if it
    exits with an error."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    args = [str(source)] if isinstance(source, pathlib.Path) else ["-c", source]
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def run_json(source: str | pathlib.Path, **kwargs: Any) -> Any:
    """:func:`run`, and the JSON value the script printed on its last line."""
    return json.loads(run(source, **kwargs).strip().splitlines()[-1])
