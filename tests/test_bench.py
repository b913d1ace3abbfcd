"""Smoke test of the benchmark harness: it runs and writes valid JSON (no timing checks)."""

from __future__ import annotations

import json
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import harness as bench


def _reject(token):
    raise ValueError(f"non-standard JSON constant {token}")


def test_quick_benchmark_writes_valid_json_and_markdown(tmp_path, capsys):
    assert bench.main(["--quick", "--out", str(tmp_path), "--repeats", "3"]) == 0
    jsons = list(tmp_path.glob("*.json"))
    mds = list(tmp_path.glob("*.md"))
    assert len(jsons) == 1 and len(mds) == 1
    assert jsons[0].stem == mds[0].stem
    report = json.loads(jsons[0].read_text(), parse_constant=_reject)  # strict: no NaN
    assert report["schema"] == bench.SCHEMA
    assert report["quick"] is True
    assert jsons[0].stem == f"{report['machine']['backend']}-{report['date']}"
    machine = report["machine"]
    for field in ("cpu", "cores", "jax", "backend"):
        assert machine[field]
    modes = {r["mode"] for r in report["initializers"]}
    assert modes == set(bench.MODES)
    assert report["cold"]["jinit_s"] > 0 and report["cold"]["baseline_s"] > 0, report["cold"]
    methods = {r["case"] for r in report["orthogonal"]}
    assert methods == {
        "orthogonal",
        "orthogonal[qr]",
        "orthogonal[householder]",
        "orthogonal[cholesky_qr2]",
    }
    for row in [*report["samplers"], *report["initializers"], *report["orthogonal"]]:
        assert row["jinit_s"] > 0 and row["baseline_s"] > 0
        assert math.isfinite(row["ratio"])
    assert all(r["bit_identical"] for r in report["samplers"])
    baselines = {r["baseline"] for r in report["initializers"]}
    assert {"jax", "jax-loop", "jax-vmap"} <= baselines
    (sharded,) = report["sharded"]
    assert "error" not in sharded, sharded.get("error")
    assert sharded["equal_values"]
    assert all(g["met"] is None and g["measured"] is None for g in report["goals"])
    assert "# jinit benchmarks" in mds[0].read_text()
    assert "goal:" in capsys.readouterr().out
