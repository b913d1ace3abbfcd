"""Small offline datasets: deterministic, split, standardized (or not); custom arrays too.

Every dataset is generated (or loaded from a package) without network access, from a
NumPy generator seeded by ``seed``, so the same arguments always give the same arrays.
Splits are stratified (each class keeps its share in train and test), and features are
standardized with the training set's mean and standard deviation unless
``standardize=False``. :meth:`Dataset.from_arrays` and :func:`load_npz` wrap your own
arrays (class labels, or float regression targets for the ``"mse"`` head);
:func:`make_circles` draws scikit-learn's ``make_circles`` data without scikit-learn.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from jinit._validate import check_bool
from jinit.train._checks import check_int, check_real, check_str

DATASETS: tuple[str, ...] = ("circles", "moons", "spirals", "digits")
"""Names accepted by :func:`load_dataset`."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of a classification (or regression) task.

    Attributes:
        name: the dataset's name, one of :data:`DATASETS` or a custom one.
        x_train: float32 features, shape ``(n_train, n_features)``.
        y_train: int32 class labels in ``[0, n_classes)``, shape ``(n_train,)``; or
            float32 regression targets ``(n_train,)`` / ``(n_train, n_targets)``.
        x_test: float32 features, shape ``(n_test, n_features)``.
        y_test: int32 class labels (or float32 targets), shape ``(n_test, ...)``.
        n_classes: number of classes (0 for regression targets).
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

    @property
    def n_targets(self) -> int:
        """Regression outputs per example (0 for class labels)."""
        if self.n_classes:
            return 0
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={len(self.y_train)}, "
            f"n_test={len(self.y_test)}, n_features={self.n_features}, "
            f"n_classes={self.n_classes})"
        )

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        x_test: Any = None,
        y_test: Any = None,
        test_fraction: float = 0.2,
        standardize: bool = False,
        seed: int = 0,
        name: str = "custom",
    ) -> Dataset:
        """Wraps your own arrays: class labels (integers) or regression targets (floats).

        Args:
            x: features ``(n, n_features)``.
            y: integer class labels ``(n,)`` (classes ``0..max``), or float regression
                targets ``(n,)`` / ``(n, n_targets)`` (for the ``"mse"`` head).
            x_test, y_test: a held-out test set; when omitted, a fraction
                ``test_fraction`` of ``(x, y)`` is held out (stratified for labels).
            test_fraction: in ``(0, 1)``; used only without ``x_test``.
            standardize: standardize features with the training split's statistics
                (default False: the arrays are used as given).
            seed: seed of the split.
            name: a name for reports.

        Returns:
            A :class:`Dataset` (features float32, labels int32 or targets float32).

        Raises:
            TypeError: if ``standardize`` is not a bool or an array is not numeric.
            ValueError: for mismatched lengths, non-2-D features, negative labels or
                non-finite values.

        Examples:
            >>> import numpy as np
            >>> x = np.arange(20.0).reshape(10, 2)
            >>> data = Dataset.from_arrays(x, np.arange(10) % 2, test_fraction=0.2)
            >>> data.x_train.shape, data.n_classes
            ((8, 2), 2)
            >>> Dataset.from_arrays(x, x.sum(axis=1), x_test=x, y_test=x.sum(axis=1)).n_targets
            1
        """
        check_bool("standardize", standardize)
        x, y = _as_features("x", x), _as_targets("y", y)
        _check_lengths("x", x, "y", y)
        if (x_test is None) != (y_test is None):
            raise ValueError("give both `x_test` and `y_test`, or neither.")
        if x_test is None:
            if not 0.0 < check_real("test_fraction", test_fraction, positive=True) < 1.0:
                raise ValueError(f"`test_fraction` must be in (0, 1); got {test_fraction!r}.")
            rng = np.random.default_rng(check_int("seed", seed, 0))
            if y.dtype.kind == "i":
                train, test = _stratified_split(y, test_fraction, rng)
            else:
                order = rng.permutation(len(y))
                n_test = round(test_fraction * len(y))
                test, train = order[:n_test], order[n_test:]
            x, y, x_test, y_test = x[train], y[train], x[test], y[test]
        else:
            x_test, y_test = _as_features("x_test", x_test), _as_targets("y_test", y_test)
            _check_lengths("x_test", x_test, "y_test", y_test)
            if x_test.shape[1] != x.shape[1]:
                raise ValueError(
                    f"`x_test` must have {x.shape[1]} features like `x`; got {x_test.shape[1]}."
                )
            if (y_test.dtype.kind == "i") != (y.dtype.kind == "i"):
                raise ValueError("`y` and `y_test` must both be labels or both targets.")
        if len(y) == 0:
            raise ValueError("the training split is empty; give more examples.")
        if standardize:
            x, x_test = _standardize(x, x_test)
        labels = y.dtype.kind == "i"
        n_classes = int(max(y.max(), y_test.max() if len(y_test) else 0)) + 1 if labels else 0
        return cls(
            name=str(name),
            x_train=x.astype(np.float32),
            y_train=y.astype(np.int32 if labels else np.float32),
            x_test=x_test.astype(np.float32),
            y_test=y_test.astype(np.int32 if labels else np.float32),
            n_classes=max(n_classes, 2) if labels else 0,
        )


def _as_features(name: str, x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a numeric array; got dtype {x.dtype}.")
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (examples, features); got shape {x.shape}.")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"`{name}` has non-finite values.")
    return x


def _as_targets(name: str, y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind in "biu":
        if y.ndim != 1:
            raise ValueError(f"`{name}` labels must be 1-D; got shape {y.shape}.")
        if y.size and y.min() < 0:
            raise ValueError(f"`{name}` labels must be >= 0; got {int(y.min())}.")
        return y.astype(np.int64)
    if y.dtype.kind != "f":
        raise TypeError(f"`{name}` must hold integer labels or float targets; got {y.dtype}.")
    if y.ndim not in (1, 2):
        raise ValueError(f"`{name}` targets must be 1-D or 2-D; got shape {y.shape}.")
    if not np.isfinite(y).all():
        raise ValueError(f"`{name}` has non-finite values.")
    return y.astype(np.float64)


def _check_lengths(x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ValueError(
            f"`{x_name}` and `{y_name}` must have the same length; got {len(x)} and {len(y)}."
        )


def _standardize(x: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((a - mean) / std for a in (x, *others))


def make_circles(
    n_samples: int = 100,
    *,
    noise: float | None = None,
    factor: float = 0.8,
    seed: int | None = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``make_circles`` data, drawn with NumPy's legacy ``RandomState``.

    The algorithm of ``sklearn.datasets.make_circles`` (scikit-learn 1.x): ``n // 2``
    points evenly spaced on the unit circle (class 0) and the rest on a circle of radius
    ``factor`` (class 1), shuffled, then Gaussian noise of std ``noise`` added. With
    ``seed=s`` it returns the same arrays as ``np.random.seed(s); make_circles(n, ...)``
    (the deep-learning course's ``load_dataset``), without needing scikit-learn.

    Args:
        n_samples: total number of points (>= 2).
        noise: std of the Gaussian noise, or None for none.
        factor: radius of the inner circle, in ``(0, 1)``.
        seed: seed of ``np.random.RandomState``; None uses NumPy's global legacy generator
            (as scikit-learn does with ``random_state=None``).
        shuffle: shuffle the points (before the noise, as scikit-learn).

    Returns:
        ``(x, y)``: float64 points ``(n_samples, 2)`` and int64 labels ``(n_samples,)``.

    Examples:
        >>> x, y = make_circles(300, noise=0.05, seed=1)
        >>> x.shape, int(y.sum())
        ((300, 2), 150)

    References:
        scikit-learn, ``sklearn.datasets.make_circles``; Ng et al., *Improving Deep Neural
        Networks*, week 1 "Initialization" assignment (``make_circles(300, noise=.05)``).
    """
    n_samples = check_int("n_samples", n_samples, 2)
    if noise is not None:
        noise = check_real("noise", noise, positive=False)
    if not 0.0 < check_real("factor", factor, positive=True) < 1.0:
        raise ValueError(f"`factor` must be in (0, 1); got {factor!r}.")
    rng = (
        np.random.mtrand._rand
        if seed is None
        else np.random.RandomState(check_int("seed", seed, 0))
    )
    n_out = n_samples // 2
    n_in = n_samples - n_out
    angle_out = np.linspace(0.0, 2.0 * np.pi, n_out, endpoint=False)
    angle_in = np.linspace(0.0, 2.0 * np.pi, n_in, endpoint=False)
    x = np.stack(
        [
            np.concatenate([np.cos(angle_out), factor * np.cos(angle_in)]),
            np.concatenate([np.sin(angle_out), factor * np.sin(angle_in)]),
        ],
        axis=1,
    )
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    if shuffle:
        order = np.arange(n_samples)
        rng.shuffle(order)
        x, y = x[order], y[order]
    if noise is not None:
        x = x + rng.normal(scale=noise, size=x.shape)
    return x, y


def load_npz(path: str | os.PathLike, **kwargs: Any) -> Dataset:
    """A :class:`Dataset` from an ``.npz`` file with arrays ``x`` and ``y``.

    Optional arrays ``x_test`` and ``y_test`` give the test set; otherwise
    :meth:`Dataset.from_arrays` holds out ``test_fraction``. ``kwargs`` go to
    :meth:`Dataset.from_arrays` (``test_fraction``, ``standardize``, ``seed``).

    Raises:
        ValueError: if the file lacks ``x`` or ``y`` (or the arrays are invalid).

    Examples:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
        >>> np.savez(path, x=np.ones((10, 3)), y=np.arange(10) % 2)
        >>> load_npz(path).n_features
        3
    """
    with np.load(path) as arrays:
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing:
            raise ValueError(
                f"{os.fspath(path)!r} must hold arrays named 'x' and 'y'; it has "
                f"{sorted(arrays)} (missing {missing})."
            )
        data = {k: arrays[k] for k in ("x", "y", "x_test", "y_test") if k in arrays}
    name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return Dataset.from_arrays(data.pop("x"), data.pop("y"), **data, **{"name": name, **kwargs})


def _per_class_counts(n_samples: int, n_classes: int) -> list[int]:
    base, extra = divmod(n_samples, n_classes)
    return [base + (1 if c < extra else 0) for c in range(n_classes)]


def _circles(
    n_samples: int, noise: float, rng: np.random.Generator, factor: float = 0.5
) -> tuple[np.ndarray, ...]:
    # Two concentric circles of radius 1 (class 0) and `factor` (class 1), Gaussian noise.
    xs, ys = [], []
    for label, (count, radius) in enumerate(
        zip(_per_class_counts(n_samples, 2), (1.0, factor), strict=True)
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
    factor: float | None = None,
    standardize: bool = True,
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
        factor: ``circles`` only: radius of the inner circle in ``(0, 1)`` (default 0.5).
        standardize: standardize the features with the training split's statistics
            (default True); False keeps the raw coordinates/pixels.

    Returns:
        A :class:`Dataset`; features are float32 (standardized with the training split's
        statistics unless ``standardize=False``; constant features are left at 0), labels
        are int32.

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
    if factor is not None:
        if name != "circles":
            raise ValueError(f"`factor` applies to 'circles' only; got dataset {name!r}.")
        if not 0.0 < check_real("factor", factor, positive=True) < 1.0:
            raise ValueError(f"`factor` must be in (0, 1); got {factor!r}.")
    check_bool("standardize", standardize)

    rng = np.random.default_rng(seed)
    if name == "digits":
        x, y = _digits(n_samples)
        n_classes = 10
    else:
        n = DEFAULT_N_SAMPLES if n_samples is None else int(n_samples)
        scale = _DEFAULT_NOISE[name] if noise is None else float(noise)
        extra = {} if factor is None else {"factor": float(factor)}
        x, y = _GENERATORS[name](n, scale, rng, **extra)
        n_classes = 2
    train, test = _stratified_split(np.asarray(y), test_fraction, rng)
    x = np.asarray(x, dtype=np.float64)
    if standardize:
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
