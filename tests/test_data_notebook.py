"""Executes notebooks/05_lsuv_and_transfer.ipynb and notebooks/08_checkpoints.ipynb
(kernel "python3", cwd notebooks/)."""

from __future__ import annotations

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_lsuv_and_transfer.ipynb"
CHECKPOINTS = ROOT / "notebooks" / "08_checkpoints.ipynb"


def _run(path: pathlib.Path, monkeypatch) -> str:
    # The kernel must import this checkout's jinit, installed or not.
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


@pytest.mark.slow
def test_notebook_runs(monkeypatch):
    outputs = _run(NOTEBOOK, monkeypatch)
    assert "all converged: True" in outputs
    assert "dead ReLU" in outputs
    assert "fc/kernel <- fc.weight  [transposed]" in outputs
    assert "(8, 4) True" in outputs


@pytest.mark.slow
def test_checkpoints_notebook_runs(monkeypatch):
    pytest.importorskip("safetensors")
    pytest.importorskip("orbax.checkpoint")
    outputs = _run(CHECKPOINTS, monkeypatch)
    assert "source     sharded safetensors checkpoint" in outputs
    assert "conv/kernel <- conv.weight  [transposed]" in outputs
    for line in outputs.splitlines():  # the transfers reproduce the reference network
        if "max |difference|" in line:
            assert float(line.rsplit(":", 1)[1]) < 1e-4, line
    assert outputs.count("max |difference|") == 3
    assert "shard file(s) missing" in outputs
    assert "(latest of steps 1000, 2000)" in outputs and "kernel doubled: True" in outputs
    assert "linen: True 8 copied" in outputs and "nnx twin: True" in outputs
    assert "(8, 4) True" in outputs
    assert "1e+300 is beyond the largest float32" in outputs
