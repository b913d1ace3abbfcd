"""Per-initializer summaries of a study's runs (host side, NumPy, JSON-ready).

Definitions (shared with jinit's diagnostics):

- *activation std of hidden layer l*: the standard deviation over all batch elements and
  units of the post-activation output of hidden layer ``l`` on the training batch;
- *gradient norm of layer l*: the L2 (Frobenius) norm of d(loss)/d(kernel_l) on the
  training batch;
- *back-propagated gradient std of hidden layer l*: the standard deviation over all batch
  elements and units of d(loss)/d(pre-activation of hidden layer l) on the training batch
  (Glorot & Bengio 2010; the loss is the batch mean, so its scale is 1/batch size);
- *diverged*: the training loss became non-finite at some step.

Non-finite numbers become ``None`` (JSON ``null``). Means and sample standard deviations
(``ddof=1``; 0 for a single seed) of the loss curve, the final loss and the accuracies are
taken over the seeds that did not diverge, so one diverged seed does not hide the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def to_float(value: Any) -> float | None:
    """``float(value)``, or ``None`` when it is not finite.

    Examples:
        >>> to_float(np.float32(0.5)), to_float(float("nan"))
        (0.5, None)
    """
    value = float(value)
    return value if math.isfinite(value) else None


def to_floats(values: Any) -> list[float | None]:
    """Element-wise :func:`to_float` of a 1-D array."""
    return [to_float(v) for v in np.asarray(values).ravel()]


def _ddof(n: int) -> int:
    return 1 if n >= 2 else 0


def mean_std(per_seed: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "per_seed"}`` over the finite entries (``None`` if none).

    ``std`` is the sample standard deviation (``ddof=1``), or 0 for a single entry.

    Examples:
        >>> mean_std([1.0, 3.0, None])
        {'mean': 2.0, 'std': 1.4142135623730951, 'per_seed': [1.0, 3.0, None]}
        >>> mean_std([0.5])["std"]
        0.0
    """
    finite = np.array([v for v in per_seed if v is not None], dtype=np.float64)
    if finite.size == 0:
        return {"mean": None, "std": None, "per_seed": list(per_seed)}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=_ddof(finite.size))),
        "per_seed": list(per_seed),
    }


def curve_mean_std(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step mean and sample std of ``(seeds, steps + 1)`` losses over the finite seeds.

    Seeds whose curve has a non-finite value (diverged) are left out; if every seed
    diverged, all of them are used and the result is non-finite from the first divergence.

    Examples:
        >>> mean, std = curve_mean_std(np.array([[0.7, 0.5], [0.7, np.nan], [0.7, 0.3]]))
        >>> mean.round(3).tolist(), std.round(3).tolist()
        ([0.7, 0.4], [0.0, 0.141])
    """
    curves = np.asarray(curves, dtype=np.float64)
    finite = np.isfinite(curves).all(axis=1)
    kept = curves[finite] if finite.any() else curves
    with np.errstate(invalid="ignore", over="ignore"):
        return kept.mean(axis=0), kept.std(axis=0, ddof=_ddof(len(kept)))


def steps_to_target(curve: np.ndarray, target: float) -> int | None:
    """The first step whose training loss is <= ``target``, or ``None`` if never.

    Examples:
        >>> steps_to_target(np.array([0.7, 0.3, 0.1, 0.05]), 0.2)
        2
        >>> steps_to_target(np.array([0.7, 0.6]), 0.2) is None
        True
    """
    hits = np.flatnonzero(np.asarray(curve) <= target)
    return int(hits[0]) if hits.size else None


def summarize_runs(
    label: str,
    curves: np.ndarray,
    train_accuracy: np.ndarray,
    test_accuracy: np.ndarray,
    activation_std: np.ndarray,
    grad_norm: np.ndarray,
    target_loss: float,
    *,
    target_fraction: float | None = None,
    backprop_grad_std: np.ndarray | None = None,
    test_loss: np.ndarray | None = None,
) -> dict[str, Any]:
    """The ``runs`` entry of ``results.json`` for one initializer.

    Args:
        label: the initializer's name.
        curves: ``(seeds, steps + 1)`` training losses; ``loss_curve`` is their mean over
            the seeds that did not diverge (see :func:`curve_mean_std`).
        train_accuracy: ``(seeds,)`` final training accuracy.
        test_accuracy: ``(seeds,)`` final test accuracy.
        activation_std: ``(seeds, hidden layers)`` at initialization.
        grad_norm: ``(seeds, layers)`` at initialization.
        target_loss: loss threshold of ``steps_to_target``.
        target_fraction: if set, each seed's threshold is this fraction of its own loss at
            step 0 instead (``target_loss`` is then unused).
        backprop_grad_std: ``(seeds, hidden layers)`` at initialization, if computed.
        test_loss: ``(seeds,)`` final test loss, if computed.

    Returns:
        A JSON-ready dict (see DESIGN.md §5).
    """
    curves = np.asarray(curves, dtype=np.float64)
    finite_runs = np.isfinite(curves).all(axis=1)
    diverged = [not bool(ok) for ok in finite_runs]

    def per_seed(values: np.ndarray) -> list[float | None]:
        return [
            to_float(v) if ok else None
            for v, ok in zip(np.asarray(values), finite_runs, strict=True)
        ]

    mean_curve, std_curve = curve_mean_std(curves)
    if target_fraction is None:
        steps = [steps_to_target(c, target_loss) for c in curves]
    else:
        steps = [
            steps_to_target(c, target_fraction * c[0]) if np.isfinite(c[0]) else None
            for c in curves
        ]
    extra: dict[str, Any] = {}
    if test_loss is not None:
        extra["test_loss"] = mean_std(per_seed(test_loss))
    if backprop_grad_std is not None:
        extra["backprop_grad_std_at_init"] = to_floats(np.mean(backprop_grad_std, axis=0))
    return {
        "init": label,
        "loss_curve": to_floats(mean_curve),
        "loss_curve_std": to_floats(std_curve),
        "initial_loss": mean_std(to_floats(curves[:, 0])),
        "final_train_loss": mean_std(per_seed(curves[:, -1])),
        "train_accuracy": mean_std(per_seed(train_accuracy)),
        "test_accuracy": mean_std(per_seed(test_accuracy)),
        "steps_to_target": steps,
        "diverged": any(diverged),
        "diverged_per_seed": diverged,
        "activation_std_at_init": to_floats(np.mean(activation_std, axis=0)),
        "grad_norm_at_init": to_floats(np.mean(grad_norm, axis=0)),
        **extra,
    }
