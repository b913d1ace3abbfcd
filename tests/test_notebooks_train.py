"""Execute the trainer's notebooks (small sizes on CPU) and check the numbers they print."""

import math
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _run(name):
    """Executes a notebook (a failing cell raises) and returns everything it printed."""
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    # "python3" resolves to the running interpreter: jupyter_client replaces a kernelspec's
    # leading "python" with sys.executable, so the kernel uses this venv.
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return "".join(
        output["text"]
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


@pytest.mark.slow
def test_signal_propagation_notebook():
    text = _run("02_signal_propagation.ipynb")
    ratios = {
        (net, init): float(ratio)
        for net, init, ratio in re.findall(
            r"^(tanh|relu)\s+(.+?)\s+act std last/first =\s+(\S+)$", text, re.M
        )
    }
    assert len(ratios) == 9, text
    # Glorot & Bengio: the "standard" init shrinks a deep tanh signal, Glorot keeps it.
    assert ratios["tanh", "torch.linear_default"] < 0.05
    assert ratios["tanh", "glorot_uniform"] > 0.3
    # He et al.: with ReLU, He (and orthogonal with ReLU's gain) keep the scale, Glorot not.
    assert 0.3 < ratios["relu", "he_normal"] < 3
    assert 0.3 < ratios["relu", "orthogonal(gain relu)"] < 3
    assert ratios["relu", "glorot_normal"] < 0.1
    assert "layers/0" in text and "|grad|" in text  # the diagnose table


@pytest.mark.slow
def test_convergence_notebook():
    text = _run("03_convergence.ipynb")
    assert "zeros final loss: 0.6931" in text  # ln 2: symmetric units never learn
    assert "lowest final loss: he_normal" in text
    adam = {
        init: float(loss)
        for init, loss in re.findall(r"^adam (\S+)\s+final loss (\S+)$", text, re.M)
    }
    assert adam["normal"] == pytest.approx(math.log(2), abs=1e-3)  # vanishing: Adam can't help
    assert adam["he_normal"] < 0.1 and adam["glorot_normal"] < 0.3
    linear = {
        (int(depth), init): float(loss)
        for depth, init, loss in re.findall(
            r"^linear depth\s+(\d+) (\S+)\s+loss after \d+ steps (\S+),", text, re.M
        )
    }
    if "deep linear study: skipped on CPU" not in text:  # Saxe et al., accelerators only
        depths = sorted({depth for depth, _ in linear})
        gaps = [linear[d, "lecun_normal"] - linear[d, "orthogonal"] for d in depths]
        assert len(gaps) == 3 and all(gap > 0 for gap in gaps) and gaps[-1] > gaps[0]


@pytest.mark.slow
def test_sharded_init_notebook():
    text = _run("04_tpu_sharded_init.ipynb")
    backend, n_devices = re.search(r"^(\w+) (\d+) devices;", text, re.M).groups()
    n_devices = int(n_devices)
    assert backend != "cpu" or n_devices == 8  # XLA_FLAGS set before jax is imported
    shards = re.findall(
        r"^(\w+)\s+global \(([\d, ]+)\) P\(.*\) -> shard \(([\d, ]+)\) per device$", text, re.M
    )
    assert {name for name, _, _ in shards} == {"mix", "w_in", "w_out"}
    for _, full, shard in shards:
        full_size = math.prod(int(n) for n in full.split(","))
        shard_size = math.prod(int(n) for n in shard.split(","))
        assert shard_size * n_devices == full_size  # every device holds its own shard only
    assert "sharded == single-device for ['mix', 'w_in', 'w_out']" in text
    assert "orthogonal: True" in text
    std, expected = map(float, re.search(r"^std (\S+) expected (\S+)$", text, re.M).groups())
    assert std == pytest.approx(expected, rel=0.1)


@pytest.mark.slow
def test_paper_reproductions_notebook():
    text = _run("06_paper_reproductions.ipynb")
    done = dict(re.findall(r"^(\S+): (\d+/\d+) findings hold \(quick\) in \d+ s$", text, re.M))
    assert sorted(done) == sorted(
        ["course", "glorot-bengio", "he-deep-relu", "saxe", "lsuv", "cs231n"]
    ), text
    assert all(int(n) >= 0 for held in done.values() for n in held.split("/"))
    assert done["glorot-bengio"] == "3/3"  # statistics at init hold at any size
    best = re.findall(r"^(he_normal|lsuv) best lr (\S+) steps to half", text, re.M)
    assert [init for init, _ in best] == ["he_normal", "lsuv"]
