"""Side-by-side timings of jinit and ``jax.nn.initializers`` (and ``torch.nn.init``).

``python benchmarks/run.py`` (``make bench``) times every initializer of a small
catalog against its jax counterpart, interleaved in the same process, in four modes:

* ``eager``: a fresh initializer per call, ``make()(key, shape)``, as Flax uses them;
* ``jit``: the steady state of ``jax.jit(lambda k: init(k, shape))``;
* ``first_call``: the first eager call after ``jax.clear_caches()`` (tracing + compile);
* ``jit_fresh``: ``jax.jit(make(), static_argnums=1)(key, shape)`` with a freshly built
  initializer each time (jinit's interned initializers hit jax's cache; jax's closures
  are new functions, so jax traces and compiles again).

plus the cold start (the first ``he_normal`` call in fresh processes, import included),
the orthogonal grid (every ``method`` against jax's orthogonal, square shapes 32^2 to
2048^2 and 4:1 shapes), stacks of orthogonal matrices (``batch_axis=0`` against a loop
and a vmap of jax calls), a sharded case (a subprocess with 8 simulated CPU devices), and
the raw samplers in ns/element beside the physical floor (a jitted memory fill). Every
number is the median of repeated runs after warm-up, each ended by
``block_until_ready``; the compared functions alternate within each repeat so that
background load hits both alike.

Results go to ``<out>/<backend>-<YYYY-MM-DD><suffix>.json`` and ``.md`` with a
description of the machine. ``--quick`` runs a small subset (a smoke test, not a
measurement; no goal is evaluated). ``--blas-threads 1`` limits LAPACK (QR, Cholesky,
triangular solves) to one thread on both sides.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl

import jinit
from jinit import _threefry
from jinit._orthogonal_methods import METHODS as ORTHOGONAL_METHODS

__all__ = ["main"]

SCHEMA = "jinit-bench/2"
MODES = ("eager", "jit", "first_call", "jit_fresh")


# ----------------------------------------------------------------------------- timing


def _block(x: Any) -> Any:
    return jax.block_until_ready(x)


def _interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    budget_s: float = 20.0,
    setup: Callable[[], Any] | None = None,
) -> dict[str, list[float]]:
    """Times each function ``repeats`` times, alternating them; returns seconds per run.

    Warm-up calls are not timed. The number of repeats is cut (to no fewer than 3) when
    one round would exceed ``budget_s``. ``setup`` runs untimed before every timed call.
    """
    round_s = 0.0
    for _ in range(max(warmup, 0)):
        for fn in fns.values():
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            _block(fn())
            round_s += time.perf_counter() - t0
    if warmup:
        round_s /= warmup
        repeats = max(3, min(repeats, int(budget_s / max(round_s, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in fns}
    items = list(fns.items())
    for r in range(repeats):
        for name, fn in items if r % 2 == 0 else items[::-1]:
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            _block(fn())
            times[name].append(time.perf_counter() - t0)
    return times


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


# ------------------------------------------------------------------------ the catalog


@dataclasses.dataclass(frozen=True)
class _Initializer:
    """One initializer and its counterparts (factories, so each call can build afresh)."""

    name: str
    jinit: Callable[[], Callable[..., jax.Array]]
    jax: Callable[[], Callable[..., jax.Array]]
    torch: str | None = None  # name of the torch.nn.init function, called on torch.empty


INITIALIZERS = [
    _Initializer("he_normal", jinit.he_normal, jax.nn.initializers.he_normal, "trunc_normal_"),
    _Initializer(
        "glorot_uniform",
        jinit.glorot_uniform,
        jax.nn.initializers.glorot_uniform,
        "xavier_uniform_",
    ),
    _Initializer(
        "lecun_normal", jinit.lecun_normal, jax.nn.initializers.lecun_normal, "trunc_normal_"
    ),
    _Initializer(
        "normal", lambda: jinit.normal(0.02), lambda: jax.nn.initializers.normal(0.02), "normal_"
    ),
    _Initializer(
        "uniform", lambda: jinit.uniform(0.1), lambda: jax.nn.initializers.uniform(0.1), "uniform_"
    ),
]


def _torch_module() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_fn(torch: Any, name: str | None, shape: tuple[int, ...]) -> Callable[[], Any] | None:
    if torch is None or name is None:
        return None
    init_fn = getattr(torch.nn.init, name)
    # torch layout (out, in, *spatial) holds the same number of elements.
    torch_shape = (shape[-1], shape[-2], *shape[:-2]) if len(shape) >= 2 else shape
    return lambda: init_fn(torch.empty(torch_shape))


def _floor_fn(shape: tuple[int, ...]) -> Callable[[], jax.Array]:
    fill = jax.jit(lambda x: jnp.zeros(shape, jnp.float32) + x)
    one = jnp.float32(1.0)
    return lambda: fill(one)


# ------------------------------------------------------------------------- the cases


@dataclasses.dataclass
class _Settings:
    repeats: int
    warmup: int
    budget_s: float


def _row(case: str, shape: Sequence[int], mode: str, baseline: str, times: dict) -> dict:
    jinit_s = _median(times["jinit"])
    base_s = _median(times[baseline])
    row = {
        "case": case,
        "shape": list(shape),
        "mode": mode,
        "baseline": baseline,
        "jinit_s": jinit_s,
        "baseline_s": base_s,
        "ratio": jinit_s / base_s if base_s > 0 else float("nan"),
        "jinit_min_s": min(times["jinit"], default=float("nan")),
        "baseline_min_s": min(times[baseline], default=float("nan")),
        "runs": {k: [round(v, 7) for v in vs] for k, vs in times.items()},
    }
    if "torch" in times:
        row["torch_s"] = _median(times["torch"])
    if "floor" in times:
        row["floor_s"] = _median(times["floor"])
    return row


def _jitted(init: Callable[..., jax.Array], shape: tuple[int, ...]) -> Callable[..., jax.Array]:
    return jax.jit(lambda k: init(k, shape))


def _bench_initializer(
    spec: _Initializer,
    shape: tuple[int, ...],
    modes: Sequence[str],
    settings: _Settings,
    torch: Any,
    key: jax.Array,
) -> list[dict]:
    rows = []
    floor = _floor_fn(shape)
    for mode in modes:
        if mode == "eager":
            fns: dict[str, Callable[[], Any]] = {
                "jinit": lambda: spec.jinit()(key, shape),
                "jax": lambda: spec.jax()(key, shape),
                "floor": floor,
            }
            torch_fn = _torch_fn(torch, spec.torch, shape)
            if torch_fn is not None:
                fns["torch"] = torch_fn
            times = _interleaved(fns, settings.repeats, settings.warmup, settings.budget_s)
        elif mode == "jit":
            ours = _jitted(spec.jinit(), shape)
            theirs = _jitted(spec.jax(), shape)
            fns = {
                "jinit": lambda f=ours: f(key),
                "jax": lambda f=theirs: f(key),
                "floor": floor,
            }
            times = _interleaved(fns, settings.repeats, settings.warmup, settings.budget_s)
        elif mode == "first_call":
            fns = {"jinit": lambda: spec.jinit()(key, shape), "jax": lambda: spec.jax()(key, shape)}
            times = _interleaved(
                fns, max(3, settings.repeats // 2), 0, settings.budget_s, setup=jax.clear_caches
            )
        elif mode == "jit_fresh":
            fns = {
                "jinit": lambda: jax.jit(spec.jinit(), static_argnums=1)(key, shape),
                "jax": lambda: jax.jit(spec.jax(), static_argnums=1)(key, shape),
            }
            times = _interleaved(fns, max(3, settings.repeats // 2), 1, settings.budget_s)
        else:  # pragma: no cover - guarded by MODES
            raise ValueError(f"unknown mode {mode!r}")
        rows.append(_row(spec.name, shape, mode, "jax", times))
    return rows


def _method_case(method: str) -> str:
    return "orthogonal" if method == "auto" else f"orthogonal[{method}]"


def _bench_orthogonal(n: int, m: int, settings: _Settings, key: jax.Array) -> list[dict]:
    """``jinit.orthogonal(method=...)`` for every method against jax's, eager, one set.

    ``auto`` (the default) is jax's QR here (same values); the others sample the same
    distribution by other algorithms.
    """
    shape = (n, m)
    jax_init = jax.nn.initializers.orthogonal()
    fns: dict[str, Callable[[], Any]] = {"jax": lambda: jax_init(key, shape)}
    for method in ORTHOGONAL_METHODS:
        init = jinit.orthogonal(method=method)
        fns[method] = lambda init=init: init(key, shape)
    times = _interleaved(fns, settings.repeats, settings.warmup, settings.budget_s)
    rows = []
    for method in ORTHOGONAL_METHODS:
        row = _row(_method_case(method), shape, "eager", "jax", {**times, "jinit": times[method]})
        row["runs"] = {"jinit": row["runs"]["jinit"], "jax": row["runs"]["jax"]}
        rows.append(row)
    return rows


def _bench_stack(
    n_stack: int, n: int, m: int, settings: _Settings, torch: Any, key: jax.Array
) -> list[dict]:
    """``orthogonal(batch_axis=0)`` on ``(n_stack, n, m)`` against per-slice jax calls.

    Every jinit method and both baselines (a Python loop of eager jax calls, and a jitted
    vmap of the jax initializer) are timed in one interleaved set.
    """
    shape = (n_stack, n, m)
    jax_init = jax.nn.initializers.orthogonal()
    keys = jax.random.split(key, n_stack)
    vmapped = jax.jit(jax.vmap(lambda k: jax_init(k, (n, m))))
    fns: dict[str, Callable[[], Any]] = {
        method: lambda m_=method: jinit.orthogonal(batch_axis=0, method=m_)(key, shape)
        for method in ORTHOGONAL_METHODS
    }
    fns["jax-loop"] = lambda: jnp.stack([jax_init(k, (n, m)) for k in keys])
    fns["jax-vmap"] = lambda: vmapped(keys)
    if torch is not None:
        fns["torch"] = lambda: [torch.nn.init.orthogonal_(torch.empty(m, n)) for _ in keys]
    times = _interleaved(fns, settings.repeats, settings.warmup, settings.budget_s)
    rows = []
    for method in ORTHOGONAL_METHODS:
        name = _method_case(method).replace("orthogonal", "orthogonal_stack", 1)
        own = {k: v for k, v in times.items() if k not in ORTHOGONAL_METHODS}
        own["jinit"] = times[method]
        for baseline in ("jax-loop", "jax-vmap"):
            rows.append(_row(name, shape, "eager", baseline, own))
    return rows


def _bench_samplers(n: int, settings: _Settings, key: jax.Array) -> list[dict]:
    """The raw samplers, jitted, in ns/element: jinit's unrolled Threefry against jax."""
    shape = (n, n)
    pairs = {
        "bits_u32": (
            lambda k: _threefry.random_bits(k, shape, 32),
            lambda k: jax.random.bits(k, shape, jnp.uint32),
        ),
        "uniform_f32": (
            lambda k: _threefry.uniform(k, shape, jnp.float32),
            lambda k: jax.random.uniform(k, shape, jnp.float32),
        ),
        "normal_f32": (
            lambda k: _threefry.normal(k, shape, jnp.float32),
            lambda k: jax.random.normal(k, shape, jnp.float32),
        ),
        "truncated_normal_f32": (
            lambda k: _threefry.truncated_normal(k, -2.0, 2.0, shape, jnp.float32),
            lambda k: jax.random.truncated_normal(k, -2.0, 2.0, shape, jnp.float32),
        ),
        "normal_bf16": (
            lambda k: _threefry.normal(k, shape, jnp.bfloat16),
            lambda k: jax.random.normal(k, shape, jnp.bfloat16),
        ),
    }
    size = math.prod(shape)
    floor = _floor_fn(shape)
    rows = []
    for name, (ours, theirs) in pairs.items():
        f_ours, f_theirs = jax.jit(ours), jax.jit(theirs)
        same = bool(np.array_equal(np.asarray(f_ours(key)), np.asarray(f_theirs(key))))
        times = _interleaved(
            {"jinit": lambda f=f_ours: f(key), "jax": lambda f=f_theirs: f(key), "floor": floor},
            settings.repeats,
            settings.warmup,
            settings.budget_s,
        )
        row = _row(name, shape, "jit", "jax", times)
        row["bit_identical"] = same
        row["ns_per_element"] = {
            k: _median(v) / size * 1e9 if size else float("nan") for k, v in times.items()
        }
        rows.append(row)
    return rows


_COLD_SNIPPETS = {
    "jax": "jax.nn.initializers.he_normal()",
    "jinit": "jinit.he_normal()",
}
_COLD_SCRIPT = """
import time
t0 = time.perf_counter()
import jax
{extra_import}
init = {init}
jax.block_until_ready(init(jax.random.key(0), (256, 256)))
print(time.perf_counter() - t0)
"""


def _cold_first_call(repeats: int) -> dict:
    """The first ``he_normal()(key, (256, 256))`` in a fresh process, import included.

    Each repeat starts one fresh interpreter per side, alternating which goes first; the
    environment is inherited (so ``--blas-threads`` applies too).
    """
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    times: dict[str, list[float]] = {name: [] for name in _COLD_SNIPPETS}
    names = list(_COLD_SNIPPETS)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            script = _COLD_SCRIPT.format(
                extra_import="import jinit" if name == "jinit" else "",
                init=_COLD_SNIPPETS[name],
            )
            proc = subprocess.run(
                [sys.executable, "-c", script],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if proc.returncode != 0:
                return {"case": "cold_first_call", "error": proc.stderr[-2000:]}
            times[name].append(float(proc.stdout.strip().splitlines()[-1]))
    row = _row("cold_first_call", (256, 256), "cold", "jax", times)
    row["import"] = True
    return row


# --------------------------------------------------------------------- sharded worker

_SHARDED_SCRIPT = """
import json, sys
sys.path.insert(0, {here!r})
from harness import _sharded_worker
print(json.dumps(_sharded_worker(**json.loads(sys.argv[1]))))
"""


def _sharded_worker(shape: list[int], repeats: int, warmup: int, budget_s: float) -> dict:
    """Runs in a subprocess with 8 simulated devices: he_normal sharded over rows."""
    from jax.sharding import AxisType, NamedSharding, PartitionSpec

    shape_t = tuple(shape)
    mesh = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Auto,))
    sharding = NamedSharding(mesh, PartitionSpec("x", None))
    key = jax.random.key(0)
    ours = jax.jit(lambda k: jinit.he_normal()(k, shape_t), out_shardings=sharding)
    theirs = jax.jit(lambda k: jax.nn.initializers.he_normal()(k, shape_t), out_shardings=sharding)
    same = bool(np.array_equal(np.asarray(ours(key)), np.asarray(theirs(key))))
    mem = {}
    for name, f in (("jinit", ours), ("jax", theirs)):
        analysis = f.lower(key).compile().memory_analysis()
        mem[name] = {
            "temp_bytes": int(analysis.temp_size_in_bytes),
            "output_bytes": int(analysis.output_size_in_bytes),
        }
    fns = {
        "jinit": lambda: ours(key),
        "jax": lambda: theirs(key),
        "jinit_out_sharding": lambda: jinit.he_normal()(key, shape_t, out_sharding=sharding),
    }
    times = _interleaved(fns, repeats, warmup, budget_s)
    row = _row("he_normal_sharded8", shape_t, "jit", "jax", times)
    row["eager_out_sharding_s"] = _median(times["jinit_out_sharding"])
    row["equal_values"] = same
    row["memory_per_device"] = mem
    row["full_bytes"] = int(math.prod(shape_t) * 4)
    return row


def _bench_sharded(shape: tuple[int, ...], settings: _Settings) -> list[dict]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    args = {
        "shape": list(shape),
        "repeats": settings.repeats,
        "warmup": settings.warmup,
        "budget_s": settings.budget_s,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SHARDED_SCRIPT.format(here=os.path.dirname(os.path.abspath(__file__))),
            json.dumps(args),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        return [{"case": "he_normal_sharded8", "error": proc.stderr[-2000:]}]
    return [json.loads(proc.stdout.strip().splitlines()[-1])]


# ------------------------------------------------------------------------ the machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine(torch: Any) -> dict:
    import jaxlib

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "jinit": jinit.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d.device_kind) for d in jax.devices()],
        "jax_threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "torch": getattr(torch, "__version__", None),
        "env": {
            k: os.environ[k]
            for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS")
            if k in os.environ
        },
    }
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    info["blas"] = [
        {k: p.get(k) for k in ("internal_api", "version", "num_threads")}
        for p in threadpoolctl.threadpool_info()
    ]
    return info


# ------------------------------------------------------------------------- the report


def _strict_json(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` (JSON has no NaN/Infinity)."""
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt_s(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def _goal(
    rows: list[dict],
    what: str,
    target: float,
    pick: Callable[[dict], bool],
    worst: bool = False,
) -> dict:
    """The best (or, with ``worst``, the worst) ratio among the picked rows vs ``target``."""
    matches = [r for r in rows if "ratio" in r and pick(r)]
    agg = max if worst else min
    measured = agg((r["ratio"] for r in matches), default=float("nan"))
    met = measured <= target if math.isfinite(measured) else None  # None: not measured
    return {"goal": what, "target": target, "measured": measured, "met": met}


def _goals(rows: list[dict]) -> list[dict]:
    def is_(case, shape, mode, baseline="jax"):
        return lambda r: (
            r["case"] == case
            and tuple(r["shape"]) == shape
            and r["mode"] == mode
            and r["baseline"] == baseline
        )

    def is_grid(r):
        return (
            r["case"].startswith("orthogonal") and r["mode"] == "eager" and r["baseline"] == "jax"
        )

    return [
        _goal(
            rows,
            "cold first call, import included",
            1.2,
            is_("cold_first_call", (256, 256), "cold"),
        ),
        _goal(rows, "he_normal eager at 256x256", 0.8, is_("he_normal", (256, 256), "eager")),
        _goal(
            rows,
            "jax.jit of a freshly built he_normal at 256x256",
            0.05,
            is_("he_normal", (256, 256), "jit_fresh"),
        ),
        _goal(rows, "he_normal jitted at 2048x2048", 0.5, is_("he_normal", (2048, 2048), "jit")),
        _goal(rows, "orthogonal, every method and grid shape (worst)", 1.0, is_grid, worst=True),
        _goal(
            rows,
            "orthogonal (default), every grid shape (worst)",
            1.0,
            lambda r: is_grid(r) and r["case"] == "orthogonal",
            worst=True,
        ),
        _goal(
            rows,
            "orthogonal stacks of 16, batch_axis=0 (default) vs a loop of jax calls (worst)",
            0.5,
            lambda r: r["case"] == "orthogonal_stack" and r["baseline"] == "jax-loop",
            worst=True,
        ),
    ]


def _markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# jinit benchmarks ({m['backend']}, {report['date']})",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, load average "
        f"{m.get('load_average', '?')} at the end ({report.get('load_average_start', '?')} "
        "at the start)" + ("; orthogonal cases only" if report.get("only") == "orthogonal" else ""),
        f"- jax {m['jax']} / jaxlib {m['jaxlib']}, numpy {m['numpy']}, torch {m['torch']}, "
        f"python {m['python']}; env {m.get('env', {})}; BLAS {m.get('blas', '?')}",
        f"- medians of up to {report['settings']['repeats']} interleaved runs after "
        f"{report['settings']['warmup']} warm-up; ratio = jinit / baseline (lower is "
        "better); floor = a jitted memory fill of the same shape",
        "- timing noise: other processes shared the cores; every figure is a median of "
        "interleaved runs (jinit and its baseline alternate within each repeat)"
        + (" (quick run: a smoke test, not a measurement)" if report["quick"] else ""),
        "",
        "## Goals",
        "",
        "| goal | target | measured | met |",
        "|---|---|---|---|",
    ]
    for g in report["goals"]:
        lines.append(
            f"| {g['goal']} | <= {g['target']} | {g['measured']:.3f} | "
            f"{ {True: 'yes', False: 'no', None: 'not measured'}[g['met']] } |"
        )
    lines += [
        "",
        "## Samplers (jitted, ns per element)",
        "",
        "| sampler | shape | jinit | jax | floor | ratio | bit-identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["samplers"]:
        ns = r["ns_per_element"]
        lines.append(
            f"| {r['case']} | {tuple(r['shape'])} | {ns['jinit']:.2f} | {ns['jax']:.2f} | "
            f"{ns['floor']:.2f} | {r['ratio']:.2f} | {r['bit_identical']} |"
        )
    lines += [
        "",
        "## Initializers",
        "",
        "| initializer | shape | mode | jinit | baseline | ratio | torch | floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["initializers"]:
        lines.append(
            f"| {r['case']} | {tuple(r['shape'])} | {r['mode']} | {_fmt_s(r['jinit_s'])} | "
            f"{r['baseline']} {_fmt_s(r['baseline_s'])} | {r['ratio']:.3f} | "
            f"{_fmt_s(r.get('torch_s'))} | {_fmt_s(r.get('floor_s'))} |"
        )
    cold = report["cold"]
    lines += ["", "## Cold start (fresh process, import included)", ""]
    if not cold:
        lines.append("- not run")
    elif "error" in cold:
        lines.append(f"- failed: `{cold['error'][-300:]}`")
    else:
        lines.append(
            f"- first `he_normal()(key, (256, 256))`: jinit {_fmt_s(cold['jinit_s'])}, jax "
            f"{_fmt_s(cold['baseline_s'])} (ratio {cold['ratio']:.3f}; medians of "
            f"{len(cold['runs']['jinit'])} fresh processes each)"
        )
    lines += [
        "",
        "## Orthogonal grid (eager, vs jax.nn.initializers.orthogonal)",
        "",
        "`orthogonal` is the default (`method='auto'`: for one matrix jax's QR and values; "
        "for stacks householder).",
        "",
        "| shape | jax | " + " | ".join(ORTHOGONAL_METHODS) + " |",
        "|---|---|" + "---|" * len(ORTHOGONAL_METHODS),
    ]
    by_shape: dict[tuple, dict] = {}
    for r in report["orthogonal"]:
        by_shape.setdefault(tuple(r["shape"]), {})[r["case"]] = r
    for shape, cases in by_shape.items():
        base = next(iter(cases.values()))["baseline_s"]
        cells = [
            f"{_fmt_s(cases[c]['jinit_s'])} ({cases[c]['ratio']:.2f})"
            for c in (_method_case(m) for m in ORTHOGONAL_METHODS)
            if c in cases
        ]
        lines.append(f"| {shape} | {_fmt_s(base)} | " + " | ".join(cells) + " |")
    lines += ["", "## Sharded (8 simulated CPU devices, rows sharded)", ""]
    for r in report["sharded"]:
        if "error" in r:
            lines.append(f"- failed: `{r['error'][-300:]}`")
            continue
        mem = r["memory_per_device"]
        lines.append(
            f"- he_normal {tuple(r['shape'])}: jinit {_fmt_s(r['jinit_s'])}, jax "
            f"{_fmt_s(r['baseline_s'])} (ratio {r['ratio']:.3f}); eager with out_sharding "
            f"{_fmt_s(r['eager_out_sharding_s'])}; equal values: {r['equal_values']}; per "
            f"device temp/output bytes jinit {mem['jinit']['temp_bytes']}/"
            f"{mem['jinit']['output_bytes']}, jax {mem['jax']['temp_bytes']}/"
            f"{mem['jax']['output_bytes']} (full array {r['full_bytes']})"
        )
    return "\n".join(lines) + "\n"


def _print_table(report: dict) -> None:
    print(
        f"{'case':34s} {'shape':18s} {'mode':10s} {'jinit':>10s} {'base':>10s} "
        f"{'ratio':>7s} {'floor':>10s}"
    )
    for r in [
        *report["samplers"],
        *report["initializers"],
        *report["orthogonal"],
        *([report["cold"]] if "ratio" in report["cold"] else []),
        *[s for s in report["sharded"] if "ratio" in s],
    ]:
        case = r["case"] if r["baseline"] == "jax" else f"{r['case']} vs {r['baseline']}"
        print(
            f"{case:34s} {tuple(r['shape'])!s:18s} {r['mode']:10s} "
            f"{_fmt_s(r['jinit_s']):>10s} {_fmt_s(r['baseline_s']):>10s} "
            f"{r['ratio']:7.3f} {_fmt_s(r.get('floor_s')):>10s}"
        )
    for g in report["goals"]:
        status = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        print(f"goal: {g['goal']}: {g['measured']:.3f} (target <= {g['target']}) {status}")


# ------------------------------------------------------------------------------- main


def _orthogonal_grid(max_size: int) -> list[tuple[int, int]]:
    """Square shapes 32^2 .. 2048^2 and 4:1 shapes (4k, k), up to ``max_size`` rows."""
    squares = [(n, n) for n in (32, 64, 128, 256, 512, 1024, 2048) if n <= max_size]
    tall = [(4 * k, k) for k in (32, 64, 128, 256, 512) if 4 * k <= max_size]
    return squares + tall


def _plan(quick: bool, orthogonal_max: int) -> dict:
    if quick:
        return {
            "shapes": [(64, 64), (3, 3, 8, 16)],
            "initializers": INITIALIZERS[:1],
            "full_modes_shapes": {(64, 64)},
            "orthogonal": [(32, 32), (64, 16)],
            "stacks": [(4, 16, 16)],
            "sampler_n": 128,
            "sharded": (64, 32),
            "cold_repeats": 1,
            "repeats": 3,
            "warmup": 1,
            "budget_s": 2.0,
        }
    return {
        "shapes": [(256, 256), (1024, 1024), (2048, 2048), (3, 3, 256, 256)],
        "initializers": INITIALIZERS,
        "full_modes_shapes": {(256, 256)},
        "orthogonal": _orthogonal_grid(orthogonal_max),
        "stacks": [
            s
            for s in [
                (16, 32, 32),
                (16, 256, 256),
                (16, 512, 512),
                (16, 1024, 1024),
                (16, 512, 128),
                (16, 128, 512),
            ]
            if max(s[1:]) <= orthogonal_max
        ],
        "sampler_n": 2048,
        "sharded": (2048, 2048),
        "cold_repeats": 5,
        "repeats": 5,
        "warmup": 1,
        "budget_s": 6.0,
    }


def run(
    quick: bool = False,
    out: str = os.path.join("benchmarks", "results"),
    repeats: int | None = None,
    sharded: bool = True,
    torch_enabled: bool = True,
    verbose: bool = True,
    orthogonal_max: int = 2048,
    suffix: str = "",
    only: str = "all",
) -> dict:
    """Runs the benchmark and writes ``<out>/<backend>-<date><suffix>.{json,md}``.

    ``only="orthogonal"`` runs the orthogonal grid and stacks alone (no cold start,
    samplers, other initializers or sharded case).

    Returns:
        The report (also written as JSON and Markdown).
    """
    plan = _plan(quick, orthogonal_max)
    settings = _Settings(repeats or plan["repeats"], plan["warmup"], plan["budget_s"])
    torch = _torch_module() if torch_enabled else None
    key = jax.random.key(0)

    def log(msg: str) -> None:
        if verbose:
            print(msg, file=sys.stderr, flush=True)

    load_start = [round(x, 2) for x in os.getloadavg()]
    everything = only == "all"
    cold: dict = {}
    samplers: list[dict] = []
    if everything:
        log("cold start")
        cold = _cold_first_call(plan["cold_repeats"])
        log("samplers")
        samplers = _bench_samplers(plan["sampler_n"], settings, key)
    initializers: list[dict] = []
    for spec in plan["initializers"] if everything else []:
        for shape in plan["shapes"]:
            modes = MODES if shape in plan["full_modes_shapes"] else ("eager", "jit")
            log(f"{spec.name} {shape}")
            initializers += _bench_initializer(spec, shape, modes, settings, torch, key)
    orthogonal: list[dict] = []
    for n, m in plan["orthogonal"]:
        log(f"orthogonal {(n, m)}")
        orthogonal += _bench_orthogonal(n, m, settings, key)
    stacks: list[dict] = []
    for n_stack, n, m in plan["stacks"]:
        log(f"orthogonal stack {(n_stack, n, m)}")
        stacks += _bench_stack(n_stack, n, m, settings, torch, key)
    sharded_rows = []
    if sharded and everything:
        log(f"sharded {plan['sharded']}")
        sharded_rows = _bench_sharded(plan["sharded"], settings)

    now = datetime.datetime.now()
    report = {
        "schema": SCHEMA,
        "date": now.strftime("%Y-%m-%d"),
        "timestamp": now.isoformat(timespec="seconds"),
        "quick": quick,
        "only": only,
        "load_average_start": load_start,
        "machine": _machine(torch),
        "settings": dataclasses.asdict(settings),
        "cold": cold,
        "samplers": samplers,
        "initializers": [*initializers, *stacks],
        "orthogonal": orthogonal,
        "sharded": sharded_rows,
    }
    rows = [*initializers, *stacks, *orthogonal, *([cold] if "ratio" in cold else [])]
    report["goals"] = _goals([] if quick else rows)  # a quick run measures nothing
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"{report['machine']['backend']}-{report['date']}{suffix}")
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(_strict_json(report), f, indent=1, allow_nan=False)
        f.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(_markdown(report))
    report["paths"] = [stem + ".json", stem + ".md"]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``jinit bench [--quick] [--out DIR] [--repeats N] ...``.

    Args:
        argv: arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns:
        The process exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        prog="jinit bench",
        description="Time jinit against jax.nn.initializers (and torch.nn.init) and write "
        "<out>/<backend>-<date>.{json,md}.",
    )
    parser.add_argument("--quick", action="store_true", help="small subset (smoke test)")
    parser.add_argument(
        "--out",
        default=os.path.join("benchmarks", "results"),
        metavar="DIR",
        help="output directory (default: benchmarks/results)",
    )
    parser.add_argument("--repeats", type=int, default=None, metavar="N", help="timed runs")
    parser.add_argument("--no-sharded", action="store_true", help="skip the 8-device case")
    parser.add_argument("--no-torch", action="store_true", help="skip torch.nn.init")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        metavar="N",
        help="limit BLAS/LAPACK threads (threadpoolctl) for QR/Cholesky on both sides",
    )
    parser.add_argument(
        "--orthogonal-max",
        type=int,
        default=2048,
        metavar="N",
        help="largest number of rows in the orthogonal grid (default 2048)",
    )
    parser.add_argument(
        "--suffix", default="", metavar="S", help="appended to the result file names"
    )
    parser.add_argument(
        "--only",
        choices=("all", "orthogonal"),
        default="all",
        help="run only the orthogonal grid and stacks (default: everything)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or table")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be a positive int; got {args.repeats}")
    if args.blas_threads is not None and args.blas_threads < 1:
        parser.error(f"--blas-threads must be a positive int; got {args.blas_threads}")

    limiter = None
    if args.blas_threads is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)  # for the subprocess
        try:  # jaxlib's CPU LAPACK comes from scipy: load it so that the limit applies
            import scipy.linalg.cython_lapack  # noqa: F401
        except ImportError:
            pass
        limiter = threadpoolctl.threadpool_limits(limits=args.blas_threads, user_api="blas")
    try:
        report = run(
            quick=args.quick,
            out=args.out,
            repeats=args.repeats,
            sharded=not args.no_sharded,
            torch_enabled=not args.no_torch,
            verbose=not args.quiet,
            orthogonal_max=args.orthogonal_max,
            suffix=args.suffix,
            only=args.only,
        )
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    if not args.quiet:
        _print_table(report)
        print("wrote " + " and ".join(report["paths"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
