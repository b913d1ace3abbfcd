"""`jinit compare` (jinit.train.cli.main): argument errors and an end-to-end run."""

import json

import pytest

from jinit.train import cli

# test_train.py's small study (3 inits x 2 seeds, hidden 16,16, 150 steps, lr 0.05 on
# circles): the same compiled program serves both files.
SMALL = [
    "--dataset",
    "circles",
    "--steps",
    "150",
    "--lr",
    "0.05",
    "--seeds",
    "2",
]


def _error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--dataset", "mnist"], ["--dataset", "invalid choice: 'mnist'", "'spirals'"]),
        (["--activation", "swish"], ["--activation", "invalid choice: 'swish'", "'relu'"]),
        (["--optimizer", "lbfgs"], ["--optimizer", "invalid choice: 'lbfgs'", "'adam'"]),
        (["--hidden", "10,0"], ["--hidden", "widths >= 1", "'10,0'"]),
        (["--hidden", "ten"], ["--hidden", "'ten'"]),
        (["--hidden", "8", "--depth", "3"], ["--hidden", "not both"]),
        (["--depth", "0"], ["--depth", "integer >= 1", "'0'"]),
        (["--width", "-2"], ["--width", "integer >= 1"]),
        (["--lr", "0"], ["--lr", "number > 0"]),
        (["--target-loss", "-0.1"], ["--target-loss", "number >= 0", "'-0.1'"]),
        (["--inits", "he_normal,glorot_nromal"], ["--inits", "glorot_nromal"]),
        (["--inits", "zeros,zeros"], ["--inits", "distinct"]),
        (["--bias-init", "nope"], ["--bias-init", "nope"]),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(capsys, argv, expected):
    err = _error(capsys, [*argv, "--no-progress"])
    for text in expected:
        assert text in err


def test_unknown_init_message_suggests_close_names(capsys):
    err = _error(capsys, ["--inits", "he_nromal"])
    assert "he_normal" in err


def test_end_to_end_writes_all_four_files(tmp_path, capsys):
    out = tmp_path / "study"
    inits = "zeros,he_normal,glorot_uniform"
    argv = [*SMALL, "--hidden", "16,16", "--inits", inits, "--target-loss", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "he_normal" in captured.out and "init" in captured.out.splitlines()[0]
    assert "training" in captured.err  # the progress bar goes to stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["activations.png", "loss_curves.png", "report.md", "results.json"]
    results = json.loads((out / "results.json").read_text())
    assert [run["init"] for run in results["runs"]] == inits.split(",")
    assert results["config"]["hidden"] == [16, 16] and results["config"]["steps"] == 150
    assert len(results["runs"][0]["loss_curve"]) == 151
    # --target-loss 0 is allowed (as in TrainConfig); a cross-entropy never reaches it.
    assert results["config"]["target_loss"] == 0.0
    assert all(run["steps_to_target"] == [None, None] for run in results["runs"])


def test_depth_and_width_build_the_hidden_layers(tmp_path):
    out = tmp_path / "deep"
    argv = [*SMALL, "--depth", "2", "--width", "16", "--inits", "he_normal,orthogonal,lecun_normal"]
    assert cli.main([*argv, "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["hidden"] == [16, 16]
    assert results["config"]["seeds"] == [0, 1]
    assert len(results["runs"][0]["activation_std_at_init"]) == 2


def test_help_mentions_the_default_study(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "jinit compare" in out and "--target-loss" in out
