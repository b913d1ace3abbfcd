"""Whole-model init: ``jax.jit(jinit.fast_init(init))`` against ``jax.jit(init)``.

``python benchmarks/models.py [--quick] [--out DIR] [--depths 12,24,48]`` measures, for
each model, the time to trace and lower, the XLA compile time, the run time (median of
repeated runs of the compiled program) and the program's memory (XLA's temporaries and
outputs) of:

* ``plain``: ``jax.jit(init)``;
* ``fast``: ``jax.jit(jinit.fast_init(init))``;
* ``scan`` (transformers): ``jax.jit(init)`` of the same model written with ``nn.scan``
  over its layers, the manual alternative (it changes the parameter layout and the keys).

The ``reinit`` case (``--only reinit`` runs just it, ``--reinit-depth`` sets its depth,
default 24) times ``jinit.reinit(variables, {"**/kernel": "he_normal"}, key)`` on the
linen transformer, wall clock in one fresh process: the first call (compile included) and
a second call with a new key, against ``jax.jit(model.init)``'s first call (compile
included) and second call. A part run alone is merged into that day's existing results
file (the other part's numbers are kept).

Models: linen transformers of 12/24/48 layers (d=256, 4 heads, MLP 4d, vocabulary 1000)
with Flax's default initializers and with jinit's (``jinit.lecun_normal``), the 24-layer
one written in nnx, and a ResNet-50-shaped linen ResNet (bottleneck stages 3/4/6/3, with
BatchNorm). Every fast result is checked bit for bit against the plain one. Results go to
``<out>/models-<backend>-<YYYY-MM-DD>.{json,md}`` with a description of the machine.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(HERE))

import jinit  # noqa: E402

D, HEADS, VOCAB = 256, 4, 1000

# ----------------------------------------------------------------------------- models


class Block(nn.Module):
    kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(x)
        h = nn.MultiHeadDotProductAttention(num_heads=HEADS, kernel_init=self.kernel_init)(h, h)
        x = x + h
        h = nn.Dense(4 * D, kernel_init=self.kernel_init)(nn.LayerNorm()(x))
        return x + nn.Dense(D, kernel_init=self.kernel_init)(nn.gelu(h))


class Transformer(nn.Module):
    depth: int
    kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, D)(tokens)
        for _ in range(self.depth):
            x = Block(self.kernel_init)(x)
        return nn.Dense(VOCAB)(nn.LayerNorm()(x))


class ScanBlock(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return Block()(x), None


class ScanTransformer(nn.Module):
    depth: int

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, D)(tokens)
        layers = nn.scan(
            ScanBlock,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            length=self.depth,
        )
        x, _ = layers()(x, None)
        return nn.Dense(VOCAB)(nn.LayerNorm()(x))


class NnxBlock(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(D, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(HEADS, D, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(D, rngs=rngs)
        self.up = nnx.Linear(D, 4 * D, rngs=rngs)
        self.down = nnx.Linear(4 * D, D, rngs=rngs)


class NnxTransformer(nnx.Module):
    def __init__(self, depth: int, rngs: nnx.Rngs):
        self.embed = nnx.Embed(VOCAB, D, rngs=rngs)
        self.blocks = nnx.List([NnxBlock(rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(D, rngs=rngs)
        self.head = nnx.Linear(D, VOCAB, rngs=rngs)


class Bottleneck(nn.Module):
    filters: int
    strides: int = 1

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(self.filters, (1, 1), use_bias=False)(x)
        y = nn.relu(nn.BatchNorm(use_running_average=False)(y))
        y = nn.Conv(self.filters, (3, 3), (self.strides,) * 2, use_bias=False)(y)
        y = nn.relu(nn.BatchNorm(use_running_average=False)(y))
        y = nn.Conv(4 * self.filters, (1, 1), use_bias=False)(y)
        y = nn.BatchNorm(use_running_average=False, scale_init=nn.initializers.zeros)(y)
        if x.shape[-1] != y.shape[-1] or self.strides != 1:
            x = nn.Conv(4 * self.filters, (1, 1), (self.strides,) * 2, use_bias=False)(x)
            x = nn.BatchNorm(use_running_average=False)(x)
        return nn.relu(x + y)


class ResNet50(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(64, (7, 7), (2, 2), use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False)(x))
        for i, n in enumerate((3, 4, 6, 3)):
            for j in range(n):
                x = Bottleneck(64 * 2**i, 2 if (i and not j) else 1)(x)
        return nn.Dense(1000)(x.mean(axis=(1, 2)))


# ----------------------------------------------------------------------------- measuring


def _leaves(tree: Any) -> list[np.ndarray]:
    out = []
    for x in jax.tree.leaves(tree):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


def _compile(fn: Callable[..., Any], args: tuple) -> tuple[dict, Any]:
    jax.clear_caches()
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    c2 = time.process_time()
    mem = compiled.memory_analysis()
    row = {
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "total_s": t2 - t0,
        # CPU seconds of this process (all threads) for lower + compile: less sensitive
        # than wall time to other jobs on a shared machine.
        "total_cpu_s": c2 - c0,
        "temp_bytes": int(mem.temp_size_in_bytes),
        "output_bytes": int(mem.output_size_in_bytes),
        "peak_bytes": int(mem.temp_size_in_bytes + mem.output_size_in_bytes),
        "hlo_lines": len(compiled.as_text().splitlines()),
        "load_average": round(os.getloadavg()[0], 2),
    }
    return row, compiled


def _time_runs(compiled: dict[str, Any], args: tuple, repeats: int) -> dict[str, float]:
    """Median run time of each compiled program, the programs alternating in each round
    so that background load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in compiled}
    for c in compiled.values():
        jax.block_until_ready(c(*args))  # warm-up
    for _ in range(repeats):
        for name, c in compiled.items():
            t = time.perf_counter()
            jax.block_until_ready(c(*args))
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _nnx_state(cls: Callable[..., Any], depth: int) -> Callable[..., Any]:
    return lambda key: nnx.state(cls(depth, rngs=nnx.Rngs(params=key)))


def _cases(depths: list[int]) -> list[dict]:
    key = jax.random.key(0)
    tokens = jnp.ones((1, 16), jnp.int32)
    cases = []
    for depth in depths:
        for inits, kinit in [
            ("flax", nn.initializers.lecun_normal()),
            ("jinit", jinit.lecun_normal()),
        ]:
            model = Transformer(depth, kinit)
            case = {
                "model": f"linen transformer, {depth} layers, {inits} initializers",
                "plain": model.init,
                "fast": jinit.fast_init(model.init),
                "args": (key, tokens),
            }
            if inits == "flax":
                case["scan"] = ScanTransformer(depth).init
            cases.append(case)
    nnx_depth = 24 if 24 in depths else depths[0]
    cases.append(
        {
            "model": f"nnx transformer, {nnx_depth} layers, flax initializers",
            "plain": _nnx_state(NnxTransformer, nnx_depth),
            "fast": _nnx_state(jinit.fast_init(NnxTransformer), nnx_depth),
            "args": (key,),
        }
    )
    resnet = ResNet50()
    cases.append(
        {
            "model": "linen ResNet-50 (BatchNorm), flax initializers",
            "plain": resnet.init,
            "fast": jinit.fast_init(resnet.init),
            "args": (key, jnp.ones((1, 32, 32, 3))),
        }
    )
    return cases


def run(depths: list[int], repeats: int, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for case in _cases(depths):
        row: dict[str, Any] = {"model": case["model"]}
        compiled = {}
        for name in ("plain", "fast", "scan"):
            if name in case:
                row[name], compiled[name] = _compile(case[name], case["args"])
        ref = _leaves(compiled["plain"](*case["args"]))
        got = _leaves(compiled["fast"](*case["args"]))
        row["bit_equal"] = len(got) == len(ref) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(got, ref, strict=False)
        )
        row["n_parameters"] = len(got)
        del ref, got
        for name, t in _time_runs(compiled, case["args"], repeats).items():
            row[name]["run_s"] = t
        for name in ("plain", "fast", "scan"):
            if name in row:
                log(f"{case['model']}: {name} {json.dumps(row[name])}")
        for name in ("fast", "scan"):
            if name in row:
                row[f"{name}_vs_plain"] = {
                    k: row[name][k] / row["plain"][k]
                    for k in (
                        "lower_s",
                        "compile_s",
                        "total_s",
                        "total_cpu_s",
                        "run_s",
                        "peak_bytes",
                    )
                    if row["plain"].get(k)
                }
        rows.append(row)
        del compiled
    return rows


def _wall(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - t, out


def run_reinit(depth: int, log: Callable[[str], None]) -> dict:
    """First and second call of ``jinit.reinit`` vs ``jax.jit(model.init)`` (wall clock)."""
    model = Transformer(depth)
    tokens = jnp.ones((1, 16), jnp.int32)
    rules = {"**/kernel": "he_normal"}
    jax.clear_caches()
    gc.collect()
    load = round(os.getloadavg()[0], 2)
    init = jax.jit(model.init)
    plain_first, variables = _wall(lambda: init(jax.random.key(0), tokens))
    plain_second, _ = _wall(lambda: init(jax.random.key(1), tokens))
    reinit_first, (new1, report) = _wall(lambda: jinit.reinit(variables, rules, jax.random.key(2)))
    reinit_second, (new2, _) = _wall(lambda: jinit.reinit(variables, rules, jax.random.key(3)))
    paths = report.by_rule["**/kernel"]
    old_k, k1, k2 = (
        [
            leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(v["params"])
            if jax.tree_util.keystr(path, simple=True, separator="/").endswith("kernel")
        ]
        for v in (variables, new1, new2)
    )
    row = {
        "model": f"linen transformer, {depth} layers",
        "rules": {k: str(v) for k, v in rules.items()},
        "n_parameters": len(report.shapes),
        "n_reinitialized": len(paths),
        "every_kernel_new": len(k1) == len(paths)
        and all(not np.array_equal(a, b) for a, b in zip(old_k, k1, strict=True))
        and all(not np.array_equal(a, b) for a, b in zip(k1, k2, strict=True)),
        "plain_init_first_s": plain_first,
        "plain_init_second_s": plain_second,
        "reinit_first_s": reinit_first,
        "reinit_second_s": reinit_second,
        "reinit_first_vs_plain_first": reinit_first / plain_first,
        "reinit_second_vs_plain_second": reinit_second / plain_second,
        "load_average": load,
    }
    log(f"reinit: {json.dumps(row)}")
    return row


# ----------------------------------------------------------------------------- report


def _machine() -> dict:
    sys.path.insert(0, HERE)
    from harness import _machine as machine

    return machine(None)


def _machine_lines(m: dict, flax_version: str) -> list[str]:
    return [
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, load average at start "
        f"{m.get('load_average')}",
        f"- jax {m['jax']}, jaxlib {m['jaxlib']}, flax {flax_version}, jinit {m['jinit']}",
    ]


def _reinit_markdown(part: dict, flax_version: str) -> list[str]:
    lines = [
        "## `jinit.reinit`",
        "",
        *_machine_lines(part["machine"], flax_version),
        "- wall-clock seconds in one fresh process, one measurement each (the machine was "
        "shared and loaded: compile times carry its noise); first call includes compilation, "
        "second call is with a new key",
        "",
        "| model | rules | re-initialized | jit(init) 1st | jit(init) 2nd | reinit 1st "
        "| reinit 2nd | reinit/init 1st | reinit/init 2nd | every kernel new |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in part["rows"]:
        rules = ", ".join(f"`{k}`: {v}" for k, v in r["rules"].items())
        lines.append(
            f"| {r['model']} | {rules} | {r['n_reinitialized']} of {r['n_parameters']} "
            f"| {r['plain_init_first_s']:.2f} | {r['plain_init_second_s']:.3f} "
            f"| {r['reinit_first_s']:.2f} | {r['reinit_second_s']:.3f} "
            f"| {r['reinit_first_vs_plain_first']:.2f} | {r['reinit_second_vs_plain_second']:.2f} "
            f"| {'yes' if r['every_kernel_new'] else 'NO'} |"
        )
    return lines


def _markdown(report: dict) -> str:
    lines = [f"# Whole-model init benchmarks ({report['date']})", ""]
    if "rows" in report:
        lines += _models_markdown(report)
    if "reinit" in report:
        lines += ["", *_reinit_markdown(report["reinit"], report["flax"])]
    return "\n".join(lines) + "\n"


def _models_markdown(report: dict) -> list[str]:
    lines = [
        *_machine_lines(report["machine"], report["flax"]),
        "- times in seconds: trace+lower, XLA compile, total; run = median of repeated runs "
        "of the compiled program; peak = XLA temporaries + outputs",
        "- fast/plain CPU: the same ratio in CPU seconds of the process (all threads), less "
        "sensitive to other jobs on a shared machine",
        "",
        "| model | params | plain lower+compile | fast lower+compile | fast/plain compile+lower "
        "| fast/plain CPU | plain run | fast run | fast/plain run | fast/plain peak "
        "| scan lower+compile | bit-equal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        p, f, s = r["plain"], r["fast"], r.get("scan")
        ratio = r["fast_vs_plain"]
        scan = f"{s['lower_s']:.2f}+{s['compile_s']:.2f}" if s else "-"
        cpu = f"{ratio['total_cpu_s']:.3f}" if "total_cpu_s" in ratio else "-"
        lines.append(
            f"| {r['model']} | {r['n_parameters']} "
            f"| {p['lower_s']:.2f}+{p['compile_s']:.2f} | {f['lower_s']:.2f}+{f['compile_s']:.2f} "
            f"| {ratio['total_s']:.3f} | {cpu} "
            f"| {p['run_s'] * 1e3:.1f} ms | {f['run_s'] * 1e3:.1f} ms "
            f"| {ratio['run_s']:.2f} | {ratio['peak_bytes']:.2f} "
            f"| {scan} "
            f"| {'yes' if r['bit_equal'] else 'NO'} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 layers only (a smoke test)")
    parser.add_argument("--depths", default="12,24,48")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument(
        "--only", choices=("models", "reinit"), default=None, help="run one part only"
    )
    parser.add_argument("--reinit-depth", type=int, default=24)
    parser.add_argument(
        "--tag", default="", help="suffix of the results files (keeps earlier results of the day)"
    )
    args = parser.parse_args(argv)
    depths = [2] if args.quick else [int(d) for d in args.depths.split(",")]
    machine = _machine()
    # jinit's one-time start-up cost (the bit-scheme self-check) is not a model's init cost.
    jax.block_until_ready(jinit.lecun_normal()(jax.random.key(0), (2, 2)))

    def log(msg: str) -> None:
        print(msg, flush=True)

    import flax

    date = datetime.date.today().isoformat()
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"models-{machine['backend']}-{date}")
    if args.quick:
        stem += "-quick"
    if args.tag:
        stem += f"-{args.tag}"
    report: dict[str, Any] = {}
    if args.only is not None and os.path.exists(stem + ".json"):
        with open(stem + ".json", encoding="utf-8") as f:
            report = json.load(f)  # keep the part not run now
    report.update(schema="jinit-bench-models/1", date=date, flax=flax.__version__)
    if args.only in (None, "models"):
        report.update(machine=machine, rows=run(depths, args.repeats, log))
    if args.only in (None, "reinit"):
        depth = 2 if args.quick else args.reinit_depth
        report["reinit"] = {"machine": machine, "rows": [run_reinit(depth, log)]}
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(_markdown(report))
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
