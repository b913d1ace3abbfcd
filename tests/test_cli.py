"""The ``jinit`` command's dispatcher and the tour."""

import subprocess
import sys

import jinit
from jinit._cli import main
from jinit._tour import expected_std, rows


def test_usage_and_unknown_command(capsys):
    assert main([]) == 0
    assert "compare" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_tour_measures_every_initializer_against_its_formula():
    names = [
        "he_normal",
        "torch.linear_default",
        "keras.glorot_uniform",
        "orthogonal",
        "uniform_unit_scaling",
        "constant",
    ]
    table = {name: cells for name, _, cells in rows(names=names)}
    assert set(table) == set(names) - {"constant"}  # constant needs a value: skipped
    for name, cells in table.items():
        for cell in cells:
            if "(" in cell:  # measured (formula): within 2% on >= 131k samples
                measured, formula = float(cell.split()[0]), float(cell.split("(")[1].rstrip(")"))
                assert abs(measured - formula) <= 0.02 * formula + 1e-12, (name, cell)
    assert expected_std(jinit.he_normal(), (512, 256)) == (2 / 512) ** 0.5


def test_python_dash_m_runs_the_command():
    proc = subprocess.run(
        [sys.executable, "-m", "jinit", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: jinit" in proc.stdout
