"""``compare``: train one MLP architecture under several initializers and seeds."""

from __future__ import annotations

import dataclasses
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
from jinit.train._checks import check_int, is_int
from jinit.train.datasets import Dataset, load_dataset
from jinit.train.loop import TrainConfig
from jinit.train.model import MLP, InitSpec, MLPConfig

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


def _label(spec: InitSpec) -> str:
    if isinstance(spec, str):
        return spec
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
    import jinit

    for spec in labelled.values():
        jinit.get(spec)  # raises ValueError listing close names for an unknown one
    return labelled


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
    """

    config: dict[str, Any]
    runs: list[dict[str, Any]]
    curves: dict[str, np.ndarray]
    activations: dict[str, list[np.ndarray]]
    seconds: float

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
) -> Study:
    """Trains ``model`` from every initializer in ``inits`` with every seed, in one program.

    All ``len(inits) * seeds`` networks are trained together by a single jitted program
    (``vmap`` over runs, ``lax.scan`` over steps). Seed ``s`` gives every initializer the
    same parameter key, so differences come from the initializers, not the draws.

    Args:
        inits: initializer specs accepted by :func:`jinit.get`, or a mapping
            ``{label: spec}``; default :data:`DEFAULT_INITS`.
        dataset: a name from :data:`~jinit.train.DATASETS` (default settings) or a
            :class:`~jinit.train.Dataset`.
        model: the architecture; default ``MLPConfig()`` (10 hidden ReLU layers of 32).
        train: the optimization; default ``TrainConfig()`` (300 full-batch steps of SGD
            with momentum 0.9, learning rate 0.01).
        seeds: number of seeds (``0..seeds-1``) or an explicit list of distinct ints
            (NumPy integers are accepted).
        progress: show a tqdm progress bar on stderr.

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
    if not isinstance(dataset, str | Dataset):
        raise TypeError(f"`dataset` must be a dataset name or a Dataset; got {dataset!r}.")
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)

    seed_keys = [jax.random.split(jax.random.key(seed)) for seed in seed_list]
    graphdef = None
    states = []
    for spec in labelled.values():
        for param_key, _ in seed_keys:
            net = MLP(
                data.n_features,
                model.hidden,
                data.n_classes,
                activation=model.activation,
                kernel_init=spec,
                bias_init=model.bias_init,
                rngs=nnx.Rngs(params=param_key),
            )
            graphdef, state = nnx.split(net)
            states.append(state)
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    keys = jnp.stack([batch_key for _, batch_key in seed_keys] * len(labelled))

    start = time.perf_counter()
    with _progress_bar(train.steps, progress) as hook, loop.progress_hook(hook):
        out = loop.train_runs(
            params,
            keys,
            jnp.asarray(train.learning_rate, jnp.float32),
            jnp.asarray(data.x_train),
            jnp.asarray(data.y_train),
            jnp.asarray(data.x_test),
            jnp.asarray(data.y_test),
            graphdef=graphdef,
            optimizer=train.optimizer,
            steps=train.steps,
            batch_size=train.batch_size,
            n_probe=min(_N_PROBE, len(data.y_train)),
        )
        out = jax.tree.map(np.asarray, jax.block_until_ready(out))
    seconds = time.perf_counter() - start

    n_seeds = len(seed_list)
    runs, curves, activations = [], {}, {}
    for i, label in enumerate(labelled):
        rows = slice(i * n_seeds, (i + 1) * n_seeds)
        curves[label] = out["loss_curve"][rows]
        activations[label] = [a[i * n_seeds] for a in out["activations"]]
        runs.append(
            metrics.summarize_runs(
                label,
                curves=out["loss_curve"][rows],
                train_accuracy=out["train_accuracy"][rows],
                test_accuracy=out["test_accuracy"][rows],
                activation_std=out["activation_std"][rows],
                grad_norm=out["grad_norm"][rows],
                target_loss=train.target_loss,
            )
        )
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
        "backend": jax.default_backend(),
        "jax_version": jax.__version__,
    }
    return Study(config, runs, curves, activations, seconds)


class _progress_bar:
    """A tqdm bar on stderr (or nothing) whose ``hook(steps_done)`` moves it forward."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="training", unit="step", file=sys.stderr)

    def _hook(self, done: int) -> None:
        if self._bar is not None and done > self._bar.n:
            self._bar.update(done - self._bar.n)

    def __enter__(self) -> Any:
        return self._hook if self._bar is not None else None

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            if exc[0] is None:
                self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
