"""`jinit compare` (jinit.train.cli.main): argument errors and an end-to-end run."""

import json
import subprocess
import sys

import pytest

from jinit.train import cli
from jinit.train.schema import check_results

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
    assert check_results(results) == []


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


# --- issue 9: specs from the shell, checks before any work, optional packages -------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("he_normal", ["he_normal"]),
        ("he_normal, torch.kaiming_uniform", ["he_normal", "torch.kaiming_uniform"]),
        ("normal:stddev=0.1", [{"name": "normal", "stddev": 0.1}]),
        (
            'he_normal,{"name": "variance_scaling", "scale": 2, "mode": "fan_in"}',
            ["he_normal", {"name": "variance_scaling", "scale": 2, "mode": "fan_in"}],
        ),
        (
            "variance_scaling:scale=2.0:mode=fan_avg:distribution=uniform,zeros",
            [
                {
                    "name": "variance_scaling",
                    "scale": 2.0,
                    "mode": "fan_avg",
                    "distribution": "uniform",
                },
                "zeros",
            ],
        ),
        ("torch.sparse:sparsity=0.5:std=[0.1][0]", None),  # not JSON: kept as a string
    ],
)
def test_init_specs_from_the_shell(text, expected):
    specs = cli._names(text)
    if expected is None:
        assert specs == [{"name": "torch.sparse", "sparsity": 0.5, "std": "[0.1][0]"}]
    else:
        assert specs == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--seeds", str(10**12)], ["--seeds", "too large", "at most 1000"]),
        (["--width", "100000"], ["--hidden/--width", "too large"]),
        (["--depth", "900", "--width", "16000"], ["GiB", "Use fewer"]),
        (["--n-samples", "1000000"], ["GiB", "--batch-size"]),
        (["--inits", "dirac"], ["--inits", "dirac", "dense kernel of shape (2, 32)", "conv"]),
        (["--inits", "delta_orthogonal"], ["--inits", "delta_orthogonal", "dense kernel"]),
        (["--bias-init", "orthogonal"], ["--bias-init", "bias of shape (32,)"]),
        (["--bias-init", "torch.eye"], ["--bias-init", "torch.eye"]),
        (["--inits", "normal:stddev=1e300"], ["--inits", "normal(stddev=1e+300)"]),
        (["--inits", "he_normal:scale=2"], ["--inits", "he_normal(scale=2)", "scale"]),
        (["--inits", '{"stddev": 0.1}'], ["--inits", '"name"']),
        (["--inits", '{"name": "normal",'], ["--inits", "JSON"]),
        (["--inits", "normal:stddev=0.1", "--init", "normal:stddev=0.1"], ["distinct"]),
        (["--n-samples", "5"], ["argument --n-samples", ">= 10"]),
    ],
)
def test_mistakes_are_refused_before_training(capsys, tmp_path, argv, expected):
    err = _error(capsys, [*argv, "--out", str(tmp_path / "never"), "--no-progress"])
    for text in expected:
        assert text in err
    assert "Traceback" not in err and "jinit compare: Dataset" not in err
    assert not (tmp_path / "never").exists()


def test_out_is_checked_first(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    err = _error(capsys, ["--out", str(tmp_path / "file"), "--no-progress"])
    assert "is not a folder" in err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "results.json").write_text("{}")
    err = _error(capsys, ["--out", str(taken), "--no-progress"])
    assert "--force" in err and f"--out {taken}-2" in err
    assert (taken / "results.json").read_text() == "{}"  # untouched


def test_unwritable_out_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    err = _error(capsys, ["--out", str(tmp_path / "file" / "sub"), "--no-progress"])
    assert "cannot write to" in err and "Not a directory" in err


def test_default_out_takes_the_next_free_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.check_out(cli.DEFAULT_OUT, False, True) == (cli.DEFAULT_OUT, None)
    (tmp_path / cli.DEFAULT_OUT / "results.json").write_text("{}")
    out, note = cli.check_out(cli.DEFAULT_OUT, False, True)
    assert out == f"{cli.DEFAULT_OUT}-2" and "writing to runs/compare-2" in note
    assert cli.check_out(cli.DEFAULT_OUT, True, True) == (cli.DEFAULT_OUT, None)  # --force


def test_digits_without_scikit_learn_is_refused_before_work(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # find_spec -> None, import fails
    err = _error(capsys, ["--dataset", "digits", "--out", str(tmp_path / "d")])
    assert "scikit-learn" in err and "pip install" in err


def test_plain_install_without_matplotlib_tqdm_writes_results(monkeypatch, capsys, tmp_path):
    for name in ("matplotlib", "tqdm"):
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "plain"
    inits = "zeros,he_normal,glorot_uniform"  # the compiled program of the test above
    argv = [*SMALL, "--hidden", "16,16", "--inits", inits, "--out", str(out)]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    first = err.splitlines()[:2]
    assert "matplotlib is not installed" in first[0] and "tqdm is not installed" in first[1]
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "results.json"]
    assert "not installed" in (out / "report.md").read_text()
    assert check_results(json.loads((out / "results.json").read_text())) == []


def test_json_and_colon_specs_train_and_label_the_runs(tmp_path):
    out = tmp_path / "specs"
    argv = [*SMALL, "--hidden", "16,16", "--no-progress", "--out", str(out)]
    argv += ["--inits", 'zeros,{"name": "normal", "stddev": 0.5}', "--init", "he_normal:in_axis=0"]
    assert cli.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    labels = [run["init"] for run in results["runs"]]
    assert labels == ["zeros", "normal(stddev=0.5)", "he_normal(in_axis=0)"]
    assert check_results(results) == []


def test_every_command_has_help_that_runs_nothing(capsys):
    from jinit._cli import main

    for command in ("compare", "tour"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"usage: jinit {command}" in capsys.readouterr().out
    assert main(["bench", "--help"]) == 0
    assert "benchmarks/run.py" in capsys.readouterr().out


def test_closed_pipe_gives_no_traceback():
    # `jinit tour | true`: the reader is gone before the table is printed.
    proc = subprocess.run(
        f"{sys.executable} -m jinit tour he_normal | true",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_bad_tour_name_is_a_usage_error(capsys):
    from jinit._cli import main

    with pytest.raises(SystemExit) as exc:
        main(["tour", "he_nromal"])
    assert exc.value.code == 2 and "did you mean 'he_normal'" in capsys.readouterr().err.lower()


def _fake_study(inits=("zeros", "he_normal"), seeds=2, steps=4, hidden=(3, 3)):
    """A StudyLike built without training (numbers from a seeded generator)."""
    import types

    import numpy as np

    from jinit.train import metrics

    rng = np.random.default_rng(0)
    runs, curves, activations = [], {}, {}
    for init in inits:
        curve = np.sort(rng.uniform(0.1, 0.7, (seeds, steps + 1)), axis=1)[:, ::-1]
        curves[init] = curve
        activations[init] = [rng.standard_normal((8, w)) for w in hidden]
        runs.append(
            metrics.summarize_runs(
                init,
                curves=curve,
                train_accuracy=rng.uniform(size=seeds),
                test_accuracy=rng.uniform(size=seeds),
                activation_std=rng.uniform(size=(seeds, len(hidden))),
                grad_norm=rng.uniform(size=(seeds, len(hidden) + 1)),
                target_loss=0.05,
            )
        )
    config = {
        "dataset": "circles",
        "n_train": 8,
        "n_test": 2,
        "n_features": 2,
        "n_classes": 2,
        "hidden": list(hidden),
        "activation": "tanh",
        "bias_init": "zeros",
        "inits": list(inits),
        "seeds": list(range(seeds)),
        "steps": steps,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "batch_size": None,
        "target_loss": 0.05,
        "target_fraction": None,
        "loss": "softmax",
        "backend": "cpu",
        "jax_version": "0",
    }
    assert check_results({"config": config, "runs": runs}) == []
    return types.SimpleNamespace(
        config=config, runs=runs, curves=curves, activations=activations, seconds=1.0
    )


def test_a_figure_that_fails_loses_nothing_else(tmp_path, monkeypatch):
    from jinit.train import plots, report

    def broken(study):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(plots, "plot_activations", broken)
    lines = []
    paths = report.write_outputs(_fake_study(), tmp_path, log=lines.append)
    assert sorted(paths) == ["loss_curves.png", "report.md", "results.json"]
    assert lines == ["jinit: could not draw activations.png (RuntimeError: no fonts); skipped."]
    text = (tmp_path / "report.md").read_text()
    assert "loss_curves.png" in text and "activations.png" not in text
    assert check_results(json.loads((tmp_path / "results.json").read_text())) == []


def test_figures_round_hyperparameters_and_label_every_axis():
    from jinit.train import plots

    study = _fake_study(inits=("zeros", "orthogonal(scale=1.4142135623730951)"))
    fig = plots.plot_loss_curves(study)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    assert "orthogonal(scale=1.41)" in [t.get_text() for t in ax.get_legend().get_texts()]
    fig = plots.plot_activations(study)
    panels = [a for a in fig.axes if a.get_visible() and a.get_title()]
    assert [a.get_title() for a in panels[:2]] == ["zeros", "orthogonal(scale=1.41)"]
    assert all(a.get_xlabel() and a.get_ylabel() for a in panels)
    assert panels[-1].get_yscale() == "log"


def test_report_and_plots_do_not_import_the_trainer():
    import ast
    import pathlib

    import jinit.train

    root = pathlib.Path(jinit.train.__file__).parent
    for name in ("report.py", "plots.py", "schema.py"):
        tree = ast.parse((root / name).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
        }
        assert not {"jinit.train.study", "jinit.train.loop", "jinit.train.cli"} & imported, name


def test_progress_without_tqdm_prints_a_line_about_every_tenth(monkeypatch, capsys):
    from jinit.train.study import _progress_bar

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `from tqdm import tqdm` fails
    with _progress_bar(200, True) as hook:
        for done in range(2, 201, 2):  # the program reports every steps // 100 steps
            hook(done)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"training: step {done}/200" for done in range(20, 201, 20)]
    with _progress_bar(200, False) as hook:
        assert hook is None
    assert capsys.readouterr().err == ""
