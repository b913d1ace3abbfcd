"""The one text-table format (jinit._table) and the reports that print with it."""

from __future__ import annotations

import types

import pytest

import jinit
from jinit._table import format_table


def test_format_table_layout():
    text = format_table(["layer", "kind", "std"], [["fc", "Dense", 0.123456], ["out/1", None, 2]])
    assert text.splitlines() == [
        "layer  kind   std",
        "-----  -----  ------",
        "fc     Dense  0.1235",
        "out/1  -      2",
    ]


def test_format_table_strips_trailing_spaces_and_handles_no_rows():
    assert format_table(["a", "b"], [["x", ""]]).splitlines() == ["a  b", "-  -", "x"]
    assert format_table(["name"], []) == "name\n----"


def test_format_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match=r"row 1 has 1 cells but there are 2 headers"):
        format_table(["a", "b"], [[1, 2], [3]])


def test_lsuv_report_and_diagnosis_use_the_shared_table():
    layers = [
        jinit.LSUVLayer("layers/0", "Linear", 2, 1.01234, True),
        jinit.LSUVLayer("layers/2", "Linear", 0, 0.0, False, "dead ReLU"),
    ]
    assert str(jinit.LSUVReport(layers)) == format_table(
        ["layer", "kind", "iters", "variance", "converged", "reason"],
        [
            ["layers/0", "Linear", 2, "1.0123", True, ""],
            ["layers/2", "Linear", 0, "0.0000", False, "dead ReLU"],
        ],
    )
    stats = jinit.LayerStats("fc", "Dense", 0.0, 1.0, 0.5, 2.0, 0.25, output_grad_std=0.125)
    text = str(jinit.Diagnosis((stats,), loss=0.5))
    assert text == (
        format_table(
            ["layer", "kind", "in mean", "in std", "out mean", "out std", "|grad|", "out grad std"],
            [["fc", "Dense", 0.0, 1.0, 0.5, 2.0, 0.25, 0.125]],
        )
        + "\nloss = 0.5"
    )
    # activations add two columns; notes and skipped layers follow the table
    act = jinit.LayerStats("fc", "Dense", 0, 1, 0, 1, 1, 1, activation="relu", activation_std=0.5)
    zero = jinit.LayerStats("c", "Conv", 0, 1, 0, 1, 0.0, 0.0, note="gradient is 0: why")
    skipped = (("bn", "BatchNorm", "normalization layer"),)
    text = str(jinit.Diagnosis((act, zero), loss=1.0, skipped=skipped))
    lines = text.splitlines()
    assert lines[0].split() == [
        "layer", "kind", "in", "mean", "in", "std", "out", "mean", "out", "std", "|grad|",
        "out", "grad", "std", "act", "act", "std",
    ]  # fmt: skip
    assert lines[2].split()[-2:] == ["relu", "0.5"] and lines[3].split()[-1] == "-"
    assert lines[-4:] == [
        "notes:",
        "  c: gradient is 0: why",
        "skipped:",
        "  bn (BatchNorm): normalization layer",
    ]
    report = jinit.LSUVReport(layers, skipped=skipped)
    assert str(report).splitlines()[-2:] == ["skipped:", "  bn (BatchNorm): normalization layer"]
    assert report.converged is False and report.skipped == skipped


def _run(init: str, loss: float | None, steps: list[int | None], diverged: bool) -> dict:
    return {
        "init": init,
        "initial_loss": {"mean": loss},
        "final_train_loss": {"mean": 0.1234, "std": 0.01},
        "steps_to_target": steps,
        "test_accuracy": {"mean": 0.9, "std": 0.02},
        "activation_std_at_init": [1.0, 0.5],
        "grad_norm_at_init": [0.3, None],
        "diverged": diverged,
    }


def test_trainer_table_text_is_unchanged():
    report = pytest.importorskip("jinit.train.report")
    study = types.SimpleNamespace(
        runs=[
            _run("he_normal", 1.1, [10, 20], False),
            _run("zeros", None, [None, None], True),
        ]
    )
    # The trainer's format from before the shared table, written out.
    expected = [
        "init       loss@0  final loss     steps to target  test acc       "
        "act std first->last  grad norm first/last  diverged",
        "---------  ------  -------------  ---------------  -------------  "
        "-------------------  --------------------  --------",
        "he_normal  1.100   0.123 ± 0.010  15 (2/2)         0.900 ± 0.020  "
        "1 -> 0.5             n/a                   no",
        "zeros      n/a     0.123 ± 0.010  never (0/2)      0.900 ± 0.020  "
        "1 -> 0.5             n/a                   yes",
    ]
    assert report.format_table(study).splitlines() == expected
