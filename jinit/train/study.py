"""``compare``: train one MLP architecture under several initializers and seeds.

An initializer spec is anything :func:`jinit.get` accepts, a list of such specs (one per
layer, input to output: "per-layer initializers"), or a *data-dependent* spec applied to
the built network before training: ``"lsuv"`` (Mishkin & Matas 2016: orthogonal
pre-init, then each layer's kernel rescaled to unit output variance on the training
batch) or ``{"name": "lsuv", "init": spec, "tol": 0.1, "max_iters": 10}`` (LSUV on top
of ``init`` instead of the orthogonal pre-init).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jinit.train import loop, metrics
from jinit.train._checks import check_int, check_real, check_str, is_int
from jinit.train.datasets import Dataset, load_dataset
from jinit.train.loop import TrainConfig
from jinit.train.model import MLP, InitSpec, MLPConfig, _is_layer_list

DEFAULT_INITS: tuple[str, ...] = (
    "zeros",
    "normal",
    "lecun_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "orthogonal",
)
"""The default study's initializers (``"normal"`` is jax's N(0, 0.01^2))."""

_N_PROBE = 256  # training examples whose activations at init are kept for histograms
_LSUV_BATCH = 2048  # at most this many training examples are LSUV's batch
SELECT: tuple[str, ...] = ("final_loss", "steps_to_target")
"""How a learning-rate sweep picks each initializer's rate: lowest mean final training
loss, or fewest mean steps to the target (seeds that never reach it count as worse)."""
_LSUV_KEYS = ("name", "init", "tol", "max_iters")


def _is_lsuv(spec: Any) -> bool:
    if isinstance(spec, str):
        return spec.strip().lower() == "lsuv"
    return isinstance(spec, Mapping) and str(spec.get("name", "")).lower() == "lsuv"


def check_init_spec(spec: Any) -> Any:
    """Validates one ``compare`` initializer spec; returns it (``"a+b+c"`` -> per-layer list).

    Accepts what :func:`jinit.get` accepts, ``"lsuv"`` or an LSUV dict, and a per-layer
    list/tuple of specs; in text (the CLI) ``"he_normal+he_normal+zeros"`` is a per-layer
    list.

    Raises:
        ValueError: for an unknown name (listing close names), a bad LSUV option or an
            empty per-layer list.
        TypeError: for a spec of the wrong kind.

    Examples:
        >>> check_init_spec("he_normal+zeros")
        ['he_normal', 'zeros']
        >>> check_init_spec("lsuv")
        'lsuv'
    """
    import jinit

    if isinstance(spec, str) and "+" in spec:
        spec = [part.strip() for part in spec.split("+")]
    if _is_lsuv(spec):
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - set(_LSUV_KEYS))
            if unknown:
                raise ValueError(
                    f"an 'lsuv' init spec takes the keys {', '.join(_LSUV_KEYS)}; got {unknown}."
                )
            if spec.get("init") is not None:
                check_init_spec(spec["init"])
            _lsuv_options(spec)
        return spec
    if _is_layer_list(spec):
        if not spec:
            raise ValueError("a per-layer init list must name at least one initializer.")
        for part in spec:
            if _is_layer_list(part) or _is_lsuv(part):
                raise ValueError(
                    f"a per-layer init list holds plain initializers; got {part!r} in {spec!r}."
                )
            jinit.get(part)
        return list(spec)
    jinit.get(spec)  # raises ValueError listing close names for an unknown one
    return spec


def _lsuv_options(spec: Any) -> dict[str, Any]:
    options = dict(spec) if isinstance(spec, Mapping) else {}
    out = {"tol": options.get("tol", 0.1), "max_iters": options.get("max_iters", 10)}
    tol = out["tol"]
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise ValueError(f"the 'lsuv' option `tol` must be a number in (0, 1); got {tol!r}.")
    if not is_int(out["max_iters"]) or out["max_iters"] < 0:
        raise ValueError(
            f"the 'lsuv' option `max_iters` must be an int >= 0; got {out['max_iters']!r}."
        )
    return out


def _label(spec: InitSpec) -> str:
    if isinstance(spec, str):
        return spec
    if _is_layer_list(spec):
        return "+".join(_label(part) for part in spec)
    if isinstance(spec, Mapping):
        args = ", ".join(f"{k}={v!r}" for k, v in spec.items() if k != "name")
        return f"{spec.get('name', '?')}({args})"
    return getattr(spec, "__name__", None) or repr(spec)


def _resolve_inits(inits: Sequence[InitSpec] | Mapping[str, InitSpec]) -> dict[str, InitSpec]:
    if isinstance(inits, str) or not isinstance(inits, Iterable):
        raise TypeError(
            "`inits` must be a sequence or mapping of initializers, e.g. "
            f"['he_normal', 'glorot_normal']; got {inits!r}."
        )
    if isinstance(inits, Mapping):
        labelled = {str(k): v for k, v in inits.items()}
    else:
        labelled = {}
        for spec in inits:
            label = _label(spec)
            if label in labelled:
                raise ValueError(f"`inits` names {label!r} twice; got {list(inits)!r}.")
            labelled[label] = spec
    if not labelled:
        raise ValueError("`inits` must name at least one initializer; got none.")
    return {label: check_init_spec(spec) for label, spec in labelled.items()}


def _as_dataset(dataset: Any) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, str):
        return load_dataset(dataset)
    if isinstance(dataset, tuple) and len(dataset) == 2:
        return Dataset.from_arrays(*dataset)
    raise TypeError(
        f"`dataset` must be a dataset name or a Dataset; got {dataset!r}. "
        "An (x, y) pair of arrays also works."
    )


def _build(
    spec: Any, data: Dataset, model: MLPConfig, param_key: jax.Array
) -> tuple[nnx.GraphDef, nnx.State, dict[str, Any] | None]:
    """One network of the study; data-dependent specs are applied here, on the host."""
    import jinit

    if model.loss == "sigmoid":
        n_out = 1
    elif model.loss == "mse" and data.n_classes == 0:
        n_out = data.n_targets
    else:
        n_out = data.n_classes
    lsuv = _is_lsuv(spec)
    if lsuv:
        base = spec.get("init") if isinstance(spec, Mapping) else None
        kernel_init = "orthogonal" if base is None else base
    else:
        kernel_init = spec
    net = MLP(
        data.n_features,
        model.hidden,
        n_out,
        activation=model.activation,
        kernel_init=kernel_init,
        bias_init=model.bias_init,
        use_bias=model.use_bias,
        rngs=nnx.Rngs(params=param_key),
    )
    info = None
    if lsuv:
        options = _lsuv_options(spec)
        report = jinit.lsuv(
            net,
            jnp.asarray(data.x_train[:_LSUV_BATCH]),
            tol=options["tol"],
            max_iters=int(options["max_iters"]),
            orthogonal_preinit=base is None,
            key=jax.random.fold_in(param_key, 1),  # explicit: the seed's own key
        )
        info = {"converged": report.converged, "variances": [r.variance for r in report]}
    graphdef, state = nnx.split(net)
    return graphdef, state, info


def _select_rate(summaries: list[dict[str, Any]], select: str) -> int:
    """Index of the best learning rate's summary (see :data:`SELECT`)."""

    def key(i: int) -> tuple:
        run = summaries[i]
        final = run["final_train_loss"]["mean"]
        final = math.inf if final is None else final
        if select == "final_loss":
            return (run["diverged"], final, i)
        reached = [s for s in run["steps_to_target"] if s is not None]
        missing = len(run["steps_to_target"]) - len(reached)
        steps = sum(reached) / len(reached) if reached else math.inf
        return (run["diverged"], missing, steps, final, i)

    return min(range(len(summaries)), key=key)


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if is_int(seeds):
        return list(range(check_int("seeds", seeds, 1)))
    if isinstance(seeds, str) or not isinstance(seeds, Sequence) or not all(map(is_int, seeds)):
        raise TypeError(
            f"`seeds` must be an int (the number of seeds) or a sequence of ints; got {seeds!r}."
        )
    seed_list = [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"`seeds` must be non-empty and distinct; got {seeds!r}.")
    return seed_list


@dataclasses.dataclass(eq=False)
class Study:
    """The outcome of :func:`compare`.

    Attributes:
        config: the study's settings (JSON-ready).
        runs: one summary per initializer (JSON-ready, see :mod:`jinit.train.metrics`).
        curves: ``{init: (seeds, steps + 1)}`` training losses per seed.
        activations: ``{init: [per hidden layer (probe examples, width)]}`` at
            initialization, first seed.
        seconds: wall time of the compiled program (compile included).
        backprop_grads: ``{init: [per hidden layer (probe examples, width)]}``:
            d(loss)/d(pre-activation) at initialization, first seed.
    """

    config: dict[str, Any]
    runs: list[dict[str, Any]]
    curves: dict[str, np.ndarray]
    activations: dict[str, list[np.ndarray]]
    seconds: float
    backprop_grads: dict[str, list[np.ndarray]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``results.json``: ``{"config": ..., "runs": [...]}``."""
        return {"config": self.config, "runs": self.runs}

    def table(self) -> str:
        """A fixed-width text table, one row per initializer."""
        from jinit.train.report import format_table

        return format_table(self)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes results.json, report.md, loss_curves.png and activations.png."""
        from jinit.train.report import write_outputs

        return write_outputs(self, out_dir)

    def plot_loss_curves(self) -> Any:
        """A matplotlib Figure of the mean training loss (band: ±1 std over seeds)."""
        from jinit.train.plots import plot_loss_curves

        return plot_loss_curves(self)

    def plot_activations(self) -> Any:
        """A matplotlib Figure of per-layer activation histograms at initialization."""
        from jinit.train.plots import plot_activations

        return plot_activations(self)


def compare(
    inits: Sequence[InitSpec] | Mapping[str, InitSpec] = DEFAULT_INITS,
    dataset: str | Dataset = "spirals",
    *,
    model: MLPConfig | None = None,
    train: TrainConfig | None = None,
    seeds: int | Sequence[int] = 3,
    progress: bool = False,
    learning_rates: Sequence[float] | None = None,
    select: str = "final_loss",
) -> Study:
    """Trains ``model`` from every initializer in ``inits`` with every seed, in one program.

    All ``len(inits) * seeds`` networks are trained together by a single jitted program
    (``vmap`` over runs, ``lax.scan`` over steps). Seed ``s`` gives every initializer the
    same parameter key, so differences come from the initializers, not the draws.

    Args:
        inits: initializer specs accepted by :func:`jinit.get`, per-layer lists of them,
            or data-dependent specs (``"lsuv"``; see the module docstring), or a mapping
            ``{label: spec}``; default :data:`DEFAULT_INITS`.
        dataset: a name from :data:`~jinit.train.DATASETS` (default settings), a
            :class:`~jinit.train.Dataset`, or an ``(x, y)`` pair of arrays (see
            :meth:`~jinit.train.Dataset.from_arrays`).
        model: the architecture; default ``MLPConfig()`` (10 hidden ReLU layers of 32).
        train: the optimization; default ``TrainConfig()`` (300 full-batch steps of SGD
            with momentum 0.9, learning rate 0.01).
        seeds: number of seeds (``0..seeds-1``) or an explicit list of distinct ints
            (NumPy integers are accepted).
        progress: show progress on stderr (a tqdm bar, or plain lines without tqdm).
        learning_rates: a learning-rate sweep: every (init, seed) is trained with every
            rate (in the same compiled program) and each initializer reports the rate
            chosen by ``select`` (its ``learning_rate``) and an ``lr_sweep`` table;
            ``train.learning_rate`` is then unused.
        select: one of :data:`SELECT`.

    Returns:
        A :class:`Study`.

    Raises:
        TypeError: for an argument of the wrong kind, e.g. ``seeds=2.0``.
        ValueError: for an unknown or repeated initializer, or ``seeds`` < 1.

    Examples:
        >>> study = compare(["zeros", "he_normal"], model=MLPConfig(hidden=(8,)),
        ...                 train=TrainConfig(steps=5), seeds=2)
        >>> [run["init"] for run in study.runs], len(study.runs[0]["loss_curve"])
        (['zeros', 'he_normal'], 6)
    """
    model = MLPConfig() if model is None else model
    train = TrainConfig() if train is None else train
    if not isinstance(model, MLPConfig):
        raise TypeError(f"`model` must be an MLPConfig; got {model!r}.")
    if not isinstance(train, TrainConfig):
        raise TypeError(f"`train` must be a TrainConfig; got {train!r}.")
    labelled = _resolve_inits(inits)
    seed_list = _seed_list(seeds)
    data = _as_dataset(dataset)
    rates = _check_rates(learning_rates)
    check_str("select", select, SELECT)
    if model.loss == "softmax" and data.n_classes == 0:
        raise ValueError(
            "loss 'softmax' needs class labels; this dataset has float regression targets "
            "(use loss='mse')."
        )
    if model.loss == "sigmoid" and data.n_classes != 2:
        raise ValueError(
            f"loss 'sigmoid' needs binary 0/1 labels; this dataset has "
            f"{data.n_classes or 'no'} classes (use 'softmax' or 'mse')."
        )

    seed_keys = [jax.random.split(jax.random.key(seed)) for seed in seed_list]
    graphdef = None
    states = []
    lsuv_info: dict[str, list[Any]] = {}
    for label, spec in labelled.items():
        for param_key, _ in seed_keys:
            graphdef, state, info = _build(spec, data, model, param_key)
            states.append(state)
            if info is not None:
                lsuv_info.setdefault(label, []).append(info)
    n_rates = 1 if rates is None else len(rates)
    if n_rates > 1:  # runs ordered (init, rate, seed)
        per_init = len(seed_keys)
        states = [
            state
            for i in range(len(labelled))
            for _ in range(n_rates)
            for state in states[i * per_init : (i + 1) * per_init]
        ]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    keys = jnp.stack([batch_key for _, batch_key in seed_keys] * (len(labelled) * n_rates))
    if rates is None:
        lr_arg = jnp.asarray(train.learning_rate, jnp.float32)
    else:
        lr_arg = jnp.asarray(
            [r for _ in labelled for r in rates for _ in seed_keys], dtype=jnp.float32
        )

    start = time.perf_counter()
    with _progress_bar(train.steps, progress) as hook, loop.progress_hook(hook):
        out = loop.train_runs(
            params,
            keys,
            lr_arg,
            jnp.asarray(data.x_train),
            jnp.asarray(data.y_train),
            jnp.asarray(data.x_test),
            jnp.asarray(data.y_test),
            graphdef=graphdef,
            optimizer=train.optimizer,
            steps=train.steps,
            batch_size=train.batch_size,
            n_probe=min(_N_PROBE, len(data.y_train)),
            loss=model.loss,
        )
        out = jax.tree.map(np.asarray, jax.block_until_ready(out))
    seconds = time.perf_counter() - start

    n_seeds = len(seed_list)
    runs, curves, activations, backprop = [], {}, {}, {}
    for i, label in enumerate(labelled):
        summaries = []
        for j in range(n_rates):
            start_row = (i * n_rates + j) * n_seeds
            rows = slice(start_row, start_row + n_seeds)
            summary = metrics.summarize_runs(
                label,
                curves=out["loss_curve"][rows],
                train_accuracy=out["train_accuracy"][rows],
                test_accuracy=out["test_accuracy"][rows],
                activation_std=out["activation_std"][rows],
                grad_norm=out["grad_norm"][rows],
                target_loss=train.target_loss,
                target_fraction=train.target_fraction,
                backprop_grad_std=out["backprop_grad_std"][rows],
                test_loss=out["test_loss"][rows],
            )
            summaries.append((summary, rows))
        best = 0 if rates is None else _select_rate([s for s, _ in summaries], select)
        summary, rows = summaries[best]
        if rates is not None:
            summary["learning_rate"] = rates[best]
            summary["lr_sweep"] = [
                {
                    "learning_rate": rate,
                    "final_train_loss": s["final_train_loss"]["mean"],
                    "steps_to_target": s["steps_to_target"],
                    "diverged": s["diverged"],
                }
                for rate, (s, _) in zip(rates, summaries, strict=True)
            ]
        if label in lsuv_info:
            summary["lsuv"] = lsuv_info[label]
        curves[label] = out["loss_curve"][rows]
        activations[label] = [a[rows.start] for a in out["activations"]]
        backprop[label] = [g[rows.start] for g in out["backprop_grads"]]
        runs.append(summary)
    config = {
        "dataset": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "n_features": data.n_features,
        "n_classes": data.n_classes,
        "hidden": list(model.hidden),
        "activation": model.activation,
        "bias_init": _label(model.bias_init),
        "inits": list(labelled),
        "seeds": seed_list,
        "steps": train.steps,
        "optimizer": train.optimizer,
        "learning_rate": train.learning_rate,
        "batch_size": train.batch_size,
        "target_loss": train.target_loss,
        "target_fraction": train.target_fraction,
        "loss": model.loss,
        "use_bias": model.use_bias,
        "backend": jax.default_backend(),
        "jax_version": jax.__version__,
    }
    if rates is not None:
        config["learning_rates"] = rates
        config["select"] = select
    return Study(config, runs, curves, activations, seconds, backprop)


def _check_rates(rates: Any) -> list[float] | None:
    if rates is None:
        return None
    if isinstance(rates, str) or not isinstance(rates, Sequence) or not rates:
        raise TypeError(
            f"`learning_rates` must be a non-empty sequence of numbers > 0; got {rates!r}."
        )
    checked = [check_real("learning_rates", r, positive=True) for r in rates]
    if len(set(checked)) != len(checked):
        raise ValueError(f"`learning_rates` must be distinct; got {list(rates)!r}.")
    return checked


class _progress_bar:
    """Progress on stderr whose ``hook(steps_done)`` moves it forward.

    A tqdm bar when tqdm is installed; otherwise a plain ``training: step done/total`` line
    about every 10% of the steps; nothing when disabled.
    """

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        self._enabled = enabled
        self._total = total
        self._shown = 0  # steps done at the last plain line
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc="training", unit="step", file=sys.stderr)

    def _hook(self, done: int) -> None:
        if self._bar is not None:
            if done > self._bar.n:
                self._bar.update(done - self._bar.n)
        elif done >= min(self._total, self._shown + max(1, self._total // 10)) > self._shown:
            self._shown = done
            print(f"training: step {done}/{self._total}", file=sys.stderr, flush=True)

    def __enter__(self) -> Any:
        return self._hook if self._enabled else None

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            if exc[0] is None:
                self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
        elif self._enabled and exc[0] is None and self._shown < self._total:
            print(f"training: step {self._total}/{self._total}", file=sys.stderr, flush=True)
