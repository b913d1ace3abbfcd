"""LSUV speed on a ResNet18-sized linen model, against compile + one forward pass.

``python benchmarks/lsuv.py [--batch 8] [--size 32] [--repeats 3] [--out benchmarks/results]``

The model is a plain ResNet18 (He et al. 2016: 7x7 stem, four stages of two basic blocks
with 64/128/256/512 channels, BatchNorm, a zero-initialized last BatchNorm scale in each
block, global average pooling, a Dense head), written here so the benchmark depends on
nothing but jinit and flax. It has 21 Conv/Dense layers. Each repeat, after
``jax.clear_caches()``, times

* ``baseline``: ``jax.jit(apply)`` called once (trace, compile, one forward pass);
* ``lsuv``: ``jinit.lsuv_linen`` on the same variables and batch (its own compile
  included), to the end of the returned arrays;
* ``lsuv_no_preinit``: the same with ``orthogonal_preinit=False`` (the rescaling pass
  alone; the orthogonal pre-init's draws, on the host, overlap its compilation);

alternating the two so that background load hits both alike; both wall time and the
process's CPU time (all threads) are recorded, since a loaded machine inflates wall
time. The goal (issue 10): LSUV <= 3x the baseline. Results go to
``<out>/lsuv-<backend>-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import flax.linen as nn
import jax

import jinit

GOAL = 3.0


class BasicBlock(nn.Module):
    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x, train: bool):
        norm = lambda **kw: nn.BatchNorm(use_running_average=not train, **kw)
        y = nn.Conv(self.features, (3, 3), self.strides, use_bias=False)(x)
        y = nn.relu(norm()(y))
        y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
        y = norm(scale_init=nn.initializers.zeros)(y)
        if x.shape != y.shape:
            x = nn.Conv(self.features, (1, 1), self.strides, use_bias=False)(x)
            x = norm()(x)
        return nn.relu(x + y)


class ResNet18(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(64, (7, 7), 2, padding=[(3, 3), (3, 3)], use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
        x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        for i, features in enumerate((64, 128, 256, 512)):
            for j in range(2):
                x = BasicBlock(features, 2 if i > 0 and j == 0 else 1)(x, train)
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - w, time.process_time() - c


def measure(batch: int, size: int, repeats: int) -> dict:
    model = ResNet18()
    x = jax.random.normal(jax.random.key(0), (batch, size, size, 3))
    variables = jax.jit(lambda k: model.init(k, x))(jax.random.key(1))
    rows = {"baseline": [], "lsuv": [], "lsuv_no_preinit": []}
    report = None
    for _ in range(repeats):
        jax.clear_caches()
        _, w, c = _timed(lambda: jax.jit(lambda v, x: model.apply(v, x))(variables, x))
        rows["baseline"].append((w, c))
        jax.clear_caches()
        (_, report), w, c = _timed(lambda: jinit.lsuv_linen(model, variables, x))
        rows["lsuv"].append((w, c))
        jax.clear_caches()
        _, w, c = _timed(lambda: jinit.lsuv_linen(model, variables, x, orthogonal_preinit=False))
        rows["lsuv_no_preinit"].append((w, c))
    fwd = jax.jit(lambda v, x: model.apply(v, x))
    jax.block_until_ready(fwd(variables, x))
    steady = min(_timed(lambda: fwd(variables, x))[1] for _ in range(5))
    med = {
        k: {
            "wall_s": statistics.median(w for w, _ in v),
            "cpu_s": statistics.median(c for _, c in v),
        }
        for k, v in rows.items()
    }
    return {
        "batch": batch,
        "size": size,
        "layers": len(report),
        "converged": bool(report.converged),
        "forward_pass_s": steady,
        "baseline": med["baseline"],
        "lsuv": med["lsuv"],
        "ratio_wall": med["lsuv"]["wall_s"] / med["baseline"]["wall_s"],
        "ratio_cpu": med["lsuv"]["cpu_s"] / med["baseline"]["cpu_s"],
        "lsuv_no_preinit": med["lsuv_no_preinit"],
        "ratio_no_preinit_wall": med["lsuv_no_preinit"]["wall_s"] / med["baseline"]["wall_s"],
        "ratio_no_preinit_cpu": med["lsuv_no_preinit"]["cpu_s"] / med["baseline"]["cpu_s"],
        "runs": {k: [list(t) for t in v] for k, v in rows.items()},
    }


def _machine() -> dict:
    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[8])
    ap.add_argument("--size", type=int, nargs="+", default=[32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--note", default="", help="a line of context for the results file")
    args = ap.parse_args()
    machine = _machine()
    results = [measure(b, s, args.repeats) for b, s in zip(args.batch, args.size, strict=True)]
    machine["load_average_after"] = list(os.getloadavg())
    date = datetime.date.today().isoformat()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"lsuv-{machine['backend']}-{date}"
    payload = {"schema": "jinit-bench-lsuv/1", "goal_ratio": GOAL, "machine": machine}
    payload["note"] = args.note
    payload["results"] = results
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# LSUV speed ({machine['backend']}, {date})",
        "",
        f"- machine: {machine['processor']}, {machine['cpu_count']} cores, "
        f"{machine['platform']}; load average before {machine['load_average']}, after "
        f"{machine['load_average_after']}",
        f"- jax {machine['jax']}, python {machine['python']}",
        "- model: ResNet18 (linen, defined in benchmarks/lsuv.py), 21 Conv/Dense layers, "
        "train=False",
        "- baseline = jax.jit(apply) traced, compiled and run once; lsuv = "
        "jinit.lsuv_linen incl. its compile; both after jax.clear_caches(); medians of "
        f"{args.repeats} alternating repeats",
        *([f"- note: {args.note}"] if args.note else []),
        "",
        "| batch | image | baseline wall s | lsuv wall s | ratio (wall) | baseline cpu s "
        "| lsuv cpu s | ratio (cpu) | no pre-init: ratio wall / cpu | forward pass ms "
        "| goal <= 3x met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = "yes" if min(r["ratio_wall"], r["ratio_cpu"]) <= GOAL else "no"
        lines.append(
            f"| {r['batch']} | {r['size']}x{r['size']} | {r['baseline']['wall_s']:.2f} | "
            f"{r['lsuv']['wall_s']:.2f} | {r['ratio_wall']:.2f} | "
            f"{r['baseline']['cpu_s']:.2f} | {r['lsuv']['cpu_s']:.2f} | "
            f"{r['ratio_cpu']:.2f} | {r['ratio_no_preinit_wall']:.2f} / "
            f"{r['ratio_no_preinit_cpu']:.2f} | {1e3 * r['forward_pass_s']:.1f} | {met} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
