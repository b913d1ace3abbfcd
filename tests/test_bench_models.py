"""benchmarks/models.py: the ``reinit`` part runs, checks its result and merges into a file."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _models():
    sys.path.insert(0, str(BENCH))  # models.py imports harness from its folder
    spec = importlib.util.spec_from_file_location("bench_models", BENCH / "models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_reinit_part_alone_keeps_the_other_part_of_the_days_file(tmp_path, capsys):
    models = _models()
    machine = models._machine()
    date = models.datetime.date.today().isoformat()
    stem = tmp_path / f"models-{machine['backend']}-{date}-quick"
    earlier = {"machine": machine, "flax": "0", "date": date, "rows": [], "note": "kept"}
    stem.with_suffix(".json").write_text(json.dumps(earlier))
    assert models.main(["--quick", "--only", "reinit", "--out", str(tmp_path)]) == 0
    report = json.loads(stem.with_suffix(".json").read_text())
    assert report["note"] == "kept" and report["rows"] == []
    (row,) = report["reinit"]["rows"]
    # 2 blocks x (query, key, value, out, 2 dense) + the head: every kernel, nothing else.
    assert (row["n_reinitialized"], row["n_parameters"]) == (13, 37)
    assert row["every_kernel_new"] is True
    assert row["reinit_first_s"] > 0 and row["plain_init_first_s"] > 0
    text = stem.with_suffix(".md").read_text()
    assert "## `jinit.reinit`" in text and "| 13 of 37 |" in text
