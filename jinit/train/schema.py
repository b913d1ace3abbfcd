"""The run summary of ``jinit compare``: what ``results.json`` holds, as types.

``results.json`` is a :class:`Results` object: ``{"config": StudyConfig, "runs": [RunRecord]}``.
These ``TypedDict`` classes are the one written description of the file; the trainer
(:mod:`jinit.train.study`, :mod:`jinit.train.metrics`) produces it and the report and plots
(:mod:`jinit.train.report`, :mod:`jinit.train.plots`) read it through :class:`StudyLike`, so
neither side imports the other. Non-finite numbers are stored as ``null`` (``None``).

Readers must accept keys they do not know: new trainer options add config fields and run
fields (a new key is never a breaking change; a renamed or removed key is).
:func:`check_results` checks a loaded file against the required keys below.

Examples:
    >>> results = {"config": {}, "runs": []}
    >>> check_results(results)[:1]
    ["config: missing key 'dataset'"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import UnionType
from typing import (
    Any,
    Protocol,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import numpy as np

__all__ = [
    "ResultsLike",
    "Results",
    "RunRecord",
    "Stat",
    "StudyConfig",
    "StudyLike",
    "SweepEntry",
    "check_results",
]


class Stat(TypedDict):
    """A statistic over seeds: mean and sample std (``ddof=1``; 0 for one seed) of the
    finite per-seed values, and the per-seed values (``None`` for a diverged seed)."""

    mean: float | None
    std: float | None
    per_seed: list[float | None]


class _SweepConfig(TypedDict, total=False):
    """The config keys of a learning-rate sweep (present only when one was run)."""

    learning_rates: list[float]
    """The swept rates (``learning_rate`` is then unused)."""
    select: str
    """How each init's rate was chosen: ``'final_loss'`` or ``'steps_to_target'``."""


class StudyConfig(_SweepConfig):
    """``results.json["config"]``: what was trained, on what, and where.

    ``learning_rates`` and ``select`` are present only for a learning-rate sweep.
    """

    dataset: str
    n_train: int
    n_test: int
    n_features: int
    n_classes: int
    hidden: list[int]
    activation: str
    bias_init: str
    inits: list[str]
    seeds: list[int]
    steps: int
    optimizer: str
    learning_rate: float
    batch_size: int | None
    target_loss: float
    target_fraction: float | None
    """If set, each seed's target is this fraction of its own initial loss (not
    ``target_loss``)."""
    loss: str
    """The output head: ``'softmax'``, ``'sigmoid'`` or ``'mse'``."""
    backend: str
    jax_version: str


class SweepEntry(TypedDict):
    """One rate of a run's ``lr_sweep``."""

    learning_rate: float
    final_train_loss: float | None
    """Mean over the seeds that did not diverge."""
    steps_to_target: list[int | None]
    diverged: bool


class _SweepRun(TypedDict, total=False):
    """The run keys of a learning-rate sweep (present only when one was run)."""

    learning_rate: float
    """The rate selected for this init; its numbers are the run's."""
    lr_sweep: list[SweepEntry]
    """Every swept rate, in the order of ``config["learning_rates"]``."""


class RunRecord(_SweepRun):
    """One entry of ``results.json["runs"]``: one initializer over all seeds.

    ``learning_rate`` and ``lr_sweep`` are present only for a learning-rate sweep.
    """

    init: str
    """The initializer's label (its name, or ``name(key=value, ...)`` for a dict spec)."""
    loss_curve: list[float | None]
    """Mean training loss over the seeds that did not diverge; index 0 is step 0."""
    loss_curve_std: list[float | None]
    """Sample std over the same seeds, per step."""
    initial_loss: Stat
    final_train_loss: Stat
    train_accuracy: Stat
    test_accuracy: Stat
    steps_to_target: list[int | None]
    """Per seed: first step with training loss <= ``target_loss``, ``None`` if never."""
    diverged: bool
    """Whether any seed's loss became non-finite."""
    diverged_per_seed: list[bool]
    activation_std_at_init: list[float | None]
    """Per hidden layer: std of its output at initialization, mean over seeds."""
    grad_norm_at_init: list[float | None]
    """Per layer: Frobenius norm of d(loss)/d(kernel) at initialization, mean over seeds."""


class Results(TypedDict):
    """The whole ``results.json``."""

    config: StudyConfig
    runs: list[RunRecord]


class ResultsLike(Protocol):
    """Anything with a study's summary: ``config`` and ``runs`` as in :class:`Results`."""

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def runs(self) -> Sequence[Mapping[str, Any]]: ...


class StudyLike(ResultsLike, Protocol):
    """What the report and the figures read: the summary plus the raw arrays.

    :class:`jinit.train.Study` is one; a test or a notebook can pass any object with these
    attributes (for example one rebuilt from a ``results.json``).
    """

    @property
    def curves(self) -> Mapping[str, np.ndarray]:
        """``{init: (seeds, steps + 1)}`` training losses per seed."""
        ...

    @property
    def activations(self) -> Mapping[str, Sequence[np.ndarray]]:
        """``{init: [per hidden layer (examples, width)]}`` at initialization, first seed."""
        ...

    @property
    def seconds(self) -> float:
        """Wall time of the compiled training program."""
        ...


def _type_ok(value: Any, hint: Any) -> bool:
    """A shallow runtime check of ``value`` against a (simple) type hint."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value)
    if origin in (Union, UnionType):
        return any(value is None if a is type(None) else _type_ok(value, a) for a in args)
    if is_typeddict(hint):
        return isinstance(value, dict) and not _check_typed(value, hint, "")
    return True


def _check_typed(obj: Mapping[str, Any], cls: type, where: str) -> list[str]:
    problems = []
    required = cls.__required_keys__  # type: ignore[attr-defined]
    for key, hint in get_type_hints(cls).items():
        if key not in obj:
            if key in required:
                problems.append(f"{where}missing key {key!r}")
        elif not _type_ok(obj[key], hint):
            problems.append(f"{where}{key!r} should be {hint}; got {obj[key]!r:.80}")
    return problems


def check_results(results: Mapping[str, Any]) -> list[str]:
    """The ways ``results`` (a loaded ``results.json``) differs from :class:`Results`.

    Extra keys are allowed. Returns an empty list for a valid file.

    Examples:
        >>> check_results({"runs": []})
        ["missing key 'config'"]
    """
    if not isinstance(results, Mapping):
        return [f"results must be a JSON object; got {type(results).__name__}"]
    problems = [f"missing key {k!r}" for k in ("config", "runs") if k not in results]
    if "config" in results:
        problems += _check_typed(results["config"], StudyConfig, "config: ")
    for i, run in enumerate(results.get("runs", [])):
        problems += _check_typed(run, RunRecord, f"runs[{i}]: ")
        n_layers = len(results.get("config", {}).get("hidden", []))
        if "activation_std_at_init" in run and len(run["activation_std_at_init"]) != n_layers:
            problems.append(f"runs[{i}]: activation_std_at_init has not one value per layer")
    return problems
