"""A plain `pip install .` (no extras) runs `jinit compare`, `jinit tour` and the library.

The real check is a clean virtual environment (see the README's Development section); here
the packages a plain install lacks are blocked in a subprocess (``sys.modules[name] = None``
makes ``import name`` fail and ``importlib.util.find_spec(name)`` return None).
"""

import ast
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What `pip install .` brings: the declared dependencies and theirs (jax needs ml_dtypes and
# scipy; flax brings orbax-checkpoint, msgpack, rich, ...).
CORE = {"jax", "jaxlib", "flax", "optax", "numpy", "threadpoolctl", "ml_dtypes", "jinit"}
# Extras and dev tools that a plain install does not have.
NOT_INSTALLED = ("matplotlib", "tqdm", "sklearn", "keras", "torch", "pytest")
OPTIONAL_MODULES = {"jinit/train/plots.py"}  # imported only when matplotlib is installed


def test_modules_import_only_core_dependencies_at_the_top():
    offenders = []
    for path in sorted((ROOT / "jinit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OPTIONAL_MODULES:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in CORE and top not in sys.stdlib_module_names:
                    offenders.append(f"{rel}: import {name}")
    assert not offenders, offenders


def test_declared_dependencies_are_the_core_and_extras_hold_the_rest():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]}
    assert names == {"jax", "jaxlib", "flax", "optax", "numpy", "threadpoolctl"}
    train = {dep.split(">")[0] for dep in project["optional-dependencies"]["train"]}
    assert train == {"matplotlib", "tqdm", "scikit-learn"}


BLOCKED_RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from jinit._cli import main
sys.exit(main(sys.argv[1:]))
"""


def _jinit(*argv, cwd):
    code = BLOCKED_RUN.format(blocked=NOT_INSTALLED)
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_compare_and_tour_run_without_the_extras(tmp_path):
    argv = ("--inits", "zeros,he_normal", "--hidden", "8", "--steps", "5", "--seeds", "1")
    proc = _jinit("compare", *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "matplotlib is not installed" in lines[0] and "tqdm is not installed" in lines[1]
    assert "plain progress lines instead" in lines[1]
    assert "training: step 5/5" in lines  # plain progress without tqdm
    out = tmp_path / "runs" / "compare"
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "results.json"]
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 2
    assert "he_normal" in proc.stdout

    proc = _jinit("tour", "he_normal", "torch.linear_default", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "torch.linear_default" in proc.stdout
