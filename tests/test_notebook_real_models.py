"""Execute notebooks/07_real_models.ipynb (diagnose and lsuv on a ResNet and a transformer)."""

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_real_models.ipynb"


@pytest.mark.slow
def test_real_models_notebook_runs():
    book = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        book,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [
        o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "downstream has scale = 0" in text  # the zero-scale explanation
    assert "Einsum" in text and "LinearGeneral" in text and "Embed" in text
    assert text.count("converged: True") == 1
    assert "(LayerNorm): normalization layer" in text
