"""Small offline classification datasets: deterministic, split, standardized.

Every dataset is generated (or loaded from a package) without network access, from a
NumPy generator seeded by ``seed``, so the same arguments always give the same arrays.
Splits are stratified (each class keeps its share in train and test), and features are
standardized with the training set's mean and standard deviation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jinit.train._checks import check_int, check_real, check_str

DATASETS: tuple[str, ...] = ("circles", "moons", "spirals", "digits")
"""Names accepted by :func:`load_dataset`."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A standardized train/test split of a classification task.

    Attributes:
        name: the dataset's name, one of :data:`DATASETS`.
        x_train: float32 features, shape ``(n_train, n_features)``.
        y_train: int32 class labels in ``[0, n_classes)``, shape ``(n_train,)``.
        x_test: float32 features, shape ``(n_test, n_features)``.
        y_test: int32 class labels, shape ``(n_test,)``.
        n_classes: number of classes.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return int(self.x_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={len(self.y_train)}, "
            f"n_test={len(self.y_test)}, n_features={self.n_features}, "
            f"n_classes={self.n_classes})"
        )


def _per_class_counts(n_samples: int, n_classes: int) -> list[int]:
    base, extra = divmod(n_samples, n_classes)
    return [base + (1 if c < extra else 0) for c in range(n_classes)]


def _circles(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    # Two concentric circles of radius 1 (class 0) and 0.5 (class 1), Gaussian noise.
    xs, ys = [], []
    for label, (count, radius) in enumerate(
        zip(_per_class_counts(n_samples, 2), (1.0, 0.5), strict=True)
    ):
        angle = rng.uniform(0.0, 2.0 * np.pi, count)
        xs.append(radius * np.stack([np.cos(angle), np.sin(angle)], axis=1))
        ys.append(np.full(count, label))
    x = np.concatenate(xs)
    return x + noise * rng.standard_normal(x.shape), np.concatenate(ys)


def _moons(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    # Two interleaving half circles: the upper one centred at 0, the lower at (1, 0.5).
    n0, n1 = _per_class_counts(n_samples, 2)
    a0 = rng.uniform(0.0, np.pi, n0)
    a1 = rng.uniform(0.0, np.pi, n1)
    upper = np.stack([np.cos(a0), np.sin(a0)], axis=1)
    lower = np.stack([1.0 - np.cos(a1), 0.5 - np.sin(a1)], axis=1)
    x = np.concatenate([upper, lower])
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return x + noise * rng.standard_normal(x.shape), y


def _spirals(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    # Two interleaved Archimedean spirals (Lang & Witbrock 1988), 1.5 turns each.
    xs, ys = [], []
    for label, count in enumerate(_per_class_counts(n_samples, 2)):
        t = np.sqrt(rng.uniform(0.0, 1.0, count)) * 3.0 * np.pi
        phase = np.pi * label
        arm = np.stack([t * np.cos(t + phase), t * np.sin(t + phase)], axis=1) / (3.0 * np.pi)
        xs.append(arm)
        ys.append(np.full(count, label))
    x = np.concatenate(xs)
    return x + noise * rng.standard_normal(x.shape), np.concatenate(ys)


def _digits(n_samples: int | None) -> tuple[np.ndarray, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "dataset 'digits' needs scikit-learn (it ships the data); "
            "install it with `pip install scikit-learn` or `pip install jinit[dev]`."
        ) from err
    bunch = load_digits()
    x, y = bunch.data, bunch.target
    if n_samples is not None and n_samples < len(y):
        x, y = x[:n_samples], y[:n_samples]
    return x, y


_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, ...]]] = {
    "circles": _circles,
    "moons": _moons,
    "spirals": _spirals,
}
_DEFAULT_NOISE = {"circles": 0.1, "moons": 0.15, "spirals": 0.05}
DEFAULT_N_SAMPLES = 500


def _stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    train_idx, test_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(test_fraction * len(idx))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))


def load_dataset(
    name: str,
    *,
    n_samples: int | None = None,
    noise: float | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Returns a deterministic, standardized, stratified train/test split.

    Args:
        name: one of :data:`DATASETS`: ``"circles"`` (two concentric noisy circles),
            ``"moons"`` (two interleaving half circles), ``"spirals"`` (two interleaved
            spirals), all balanced binary tasks in 2-D, or ``"digits"`` (scikit-learn's
            8x8 handwritten digits, 1797 images, 64 features, 10 classes; needs scikit-learn).
        n_samples: total number of examples before the split. Default 500 for the
            synthetic datasets and all 1797 for ``digits`` (a smaller value keeps the first
            ``n_samples``).
        noise: standard deviation of the Gaussian noise added to the synthetic points.
            Default 0.1 (circles), 0.15 (moons), 0.05 (spirals). Ignored by ``digits``.
        test_fraction: fraction of each class held out for testing, in ``(0, 1)``.
        seed: seed of the NumPy generator that draws the points and the split.

    Returns:
        A :class:`Dataset`; features are float32 standardized with the training split's
        statistics (constant features are left at 0), labels are int32.

    Raises:
        TypeError: for an argument of the wrong kind (NumPy integers and floats are fine).
        ValueError: for an unknown ``name`` or an out-of-range argument.

    Examples:
        >>> data = load_dataset("circles", n_samples=100)
        >>> data.x_train.shape, data.x_test.shape, data.n_classes
        ((80, 2), (20, 2), 2)
        >>> bool((data.y_train == 0).sum() == (data.y_train == 1).sum())
        True
    """
    check_str("dataset", name, DATASETS)
    n_samples = check_int("n_samples", n_samples, 10, or_none=True)
    noise = None if noise is None else check_real("noise", noise, positive=False)
    if not 0.0 < check_real("test_fraction", test_fraction, positive=True) < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1); got {test_fraction!r}.")
    seed = check_int("seed", seed, 0)

    rng = np.random.default_rng(seed)
    if name == "digits":
        x, y = _digits(n_samples)
        n_classes = 10
    else:
        n = DEFAULT_N_SAMPLES if n_samples is None else int(n_samples)
        scale = _DEFAULT_NOISE[name] if noise is None else float(noise)
        x, y = _GENERATORS[name](n, scale, rng)
        n_classes = 2
    train, test = _stratified_split(np.asarray(y), test_fraction, rng)
    x = np.asarray(x, dtype=np.float64)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = (x - mean) / std
    return Dataset(
        name=name,
        x_train=x[train].astype(np.float32),
        y_train=np.asarray(y)[train].astype(np.int32),
        x_test=x[test].astype(np.float32),
        y_test=np.asarray(y)[test].astype(np.int32),
        n_classes=n_classes,
    )
