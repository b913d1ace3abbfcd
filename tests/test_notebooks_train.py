"""Execute the trainer's notebooks (small sizes on CPU) with nbclient."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["02_signal_propagation.ipynb", "03_convergence.ipynb", "04_tpu_sharded_init.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    # "python3" resolves to the running interpreter: jupyter_client replaces a kernelspec's
    # leading "python" with sys.executable, so the kernel uses this venv.
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    errors = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
