"""The compiled training program: ``lax.scan`` over steps, ``vmap`` over runs.

A *run* is one (initializer, seed) pair. Flax nnx modules do not keep their initializer,
so every run of a study shares one graph definition; their parameters are created
eagerly, stacked along a leading axis, and trained by a single jitted program. The
program is traced once per (architecture, loss, optimizer, steps, batch size, data
shapes): learning rates (one for all runs, or one per run for a sweep), data and parameter
values are traced arguments.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jinit.train._checks import check_int, check_real, check_str
from jinit.train.model import LOSSES

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam")
"""Optimizer names: plain SGD, SGD with momentum 0.9, and Adam (optax defaults)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How each network is trained.

    Args:
        steps: number of optimizer updates (>= 1).
        optimizer: one of :data:`OPTIMIZERS`.
        learning_rate: step size (> 0).
        batch_size: examples per update; ``None`` (or >= the training-set size) trains
            full batch. Minibatches are drawn without replacement at every step.
        target_loss: the training loss whose first crossing defines ``steps_to_target``
            (finite, >= 0).
        target_fraction: if set (in ``(0, 1]``), the target is relative instead: each
            run's first step with training loss <= ``target_fraction`` x its loss at step 0
            (``0.01``: "steps to 1% of the initial loss"); ``target_loss`` is then unused.

    Raises:
        TypeError: for an argument of the wrong kind (integers may be NumPy integers,
            numbers anything ``numbers.Real``).
        ValueError: for an out-of-range value or an unknown optimizer.

    Examples:
        >>> TrainConfig(steps=10, optimizer="adam", learning_rate=1e-3).optimizer
        'adam'
    """

    steps: int = 300
    optimizer: str = "momentum"
    learning_rate: float = 0.01
    batch_size: int | None = None
    target_loss: float = 0.05
    target_fraction: float | None = None

    def __post_init__(self) -> None:
        # Canonical Python numbers: `steps` and `batch_size` become static jit arguments.
        fields = {
            "steps": check_int("steps", self.steps, 1),
            "optimizer": check_str("optimizer", self.optimizer, OPTIMIZERS),
            "learning_rate": check_real("learning_rate", self.learning_rate, positive=True),
            "batch_size": check_int("batch_size", self.batch_size, 1, or_none=True),
            "target_loss": check_real("target_loss", self.target_loss, positive=False),
        }
        if self.target_fraction is not None:
            fraction = check_real("target_fraction", self.target_fraction, positive=True)
            if fraction > 1.0:
                raise ValueError(
                    f"`target_fraction` must be in (0, 1] (a fraction of the initial loss); "
                    f"got {self.target_fraction!r}."
                )
            fields["target_fraction"] = fraction
        for name, value in fields.items():
            object.__setattr__(self, name, value)


def make_optimizer(name: str, learning_rate: float | jax.Array) -> optax.GradientTransformation:
    """Returns the optax transformation called ``name`` (see :data:`OPTIMIZERS`)."""
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=0.9)
    if name == "adam":
        return optax.adam(learning_rate)
    allowed = ", ".join(repr(o) for o in OPTIMIZERS)
    raise ValueError(f"`optimizer` must be one of {allowed}; got {name!r}.")


# --- progress reporting from inside the compiled program -------------------------------
# The program calls `_report_step` through `jax.debug.callback`; it forwards to whatever
# hook `progress_hook` installed, so the compiled program never depends on the hook.
_HOOK_LOCK = threading.Lock()
_HOOK: Callable[[int], None] | None = None


def _report_step(step: Any) -> None:
    hook = _HOOK
    if hook is not None:
        hook(int(step))


@contextmanager
def progress_hook(hook: Callable[[int], None] | None) -> Iterator[None]:
    """Calls ``hook(steps_done)`` from the running program while the context is open."""
    global _HOOK
    with _HOOK_LOCK:
        previous, _HOOK = _HOOK, hook
    try:
        yield
    finally:
        with _HOOK_LOCK:
            _HOOK = previous


_TRACES = 0


def trace_count() -> int:
    """How many times the training program has been traced (compiled) in this process."""
    return _TRACES


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return (jnp.argmax(logits, axis=-1) == labels).mean()


def _is_labels(y: jax.Array) -> bool:
    return bool(jnp.issubdtype(y.dtype, jnp.integer))


def loss_fn(loss: str, logits: jax.Array, y: jax.Array) -> jax.Array:
    """The batch-mean training loss of a head (see :data:`~jinit.train.model.LOSSES`).

    ``"softmax"``: cross-entropy of integer labels; ``"sigmoid"``: binary cross-entropy
    of the single logit against 0/1 labels (computed from the logit, stable for any
    size); ``"mse"``: mean over examples and outputs of the squared error against float
    targets (integer labels are one-hot encoded).
    """
    if loss == "softmax":
        return _cross_entropy(logits, y)
    if loss == "sigmoid":
        return optax.sigmoid_binary_cross_entropy(logits[..., 0], y.astype(logits.dtype)).mean()
    if loss == "mse":
        if _is_labels(y):
            target = jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype)
        else:
            target = y.reshape(logits.shape).astype(logits.dtype)
        return jnp.mean((logits - target) ** 2)
    allowed = ", ".join(repr(o) for o in LOSSES)
    raise ValueError(f"`loss` must be one of {allowed}; got {loss!r}.")


def accuracy_fn(loss: str, logits: jax.Array, y: jax.Array) -> jax.Array:
    """Classification accuracy of a head; NaN for regression targets."""
    if not _is_labels(y):
        return jnp.asarray(jnp.nan, logits.dtype)
    if loss == "sigmoid":
        return ((logits[..., 0] > 0) == (y > 0)).mean()
    return _accuracy(logits, y)


@jax.jit(static_argnames=("graphdef", "optimizer", "steps", "batch_size", "n_probe", "loss"))
def train_runs(
    params: nnx.State,
    keys: jax.Array,
    learning_rate: jax.Array,
    x_train: jax.Array,
    y_train: jax.Array,
    x_test: jax.Array,
    y_test: jax.Array,
    *,
    graphdef: nnx.GraphDef,
    optimizer: str,
    steps: int,
    batch_size: int | None,
    n_probe: int,
    loss: str = "softmax",
) -> dict[str, Any]:
    """Trains a stack of runs; every leaf of ``params`` has a leading run axis.

    Args:
        params: stacked ``nnx.State`` of the :class:`~jinit.train.model.MLP` parameters.
        keys: one typed key per run, used to draw minibatches.
        learning_rate: scalar step size, or one per run (shape ``(runs,)``).
        x_train, y_train, x_test, y_test: the data set (shared by all runs).
        graphdef: the MLP's graph definition (same for all runs).
        optimizer: one of :data:`OPTIMIZERS`.
        steps: number of updates.
        batch_size: minibatch size, or ``None`` for full batch.
        n_probe: how many training examples' activations at init to return.
        loss: the head's loss, one of :data:`~jinit.train.model.LOSSES`.

    Returns:
        A dict of arrays with a leading run axis: ``loss_curve`` ``(runs, steps + 1)``
        (full training loss after 0..steps updates), ``train_accuracy``, ``test_accuracy``,
        ``activation_std`` ``(runs, hidden layers)``, ``grad_norm`` ``(runs, layers)``,
        ``backprop_grad_std`` ``(runs, hidden layers)`` (std over the batch and units of
        d(loss)/d(pre-activation)), ``activations`` and ``backprop_grads`` (lists, per
        hidden layer, of ``(runs, n_probe, width)``).
    """
    global _TRACES
    _TRACES += 1
    per_run_lr = jnp.ndim(learning_rate) == 1
    tx = make_optimizer(optimizer, learning_rate)
    n_train = x_train.shape[0]
    report_every = max(1, steps // 100)

    def loss_and_hidden(p: nnx.State, x: jax.Array, y: jax.Array) -> tuple[jax.Array, Any]:
        logits, hidden = nnx.merge(graphdef, p).forward_with_activations(x)
        return loss_fn(loss, logits, y), hidden

    loss_grad = jax.value_and_grad(loss_and_hidden, has_aux=True)

    def at_init(p: nnx.State) -> dict[str, Any]:
        (_, hidden), grads = loss_grad(p, x_train, y_train)
        kernels = nnx.merge(graphdef, grads).kernels()
        model = nnx.merge(graphdef, p)
        pre_grads = jax.grad(
            lambda shifts: loss_fn(
                loss, model.forward_with_activations(x_train, shifts)[0], y_train
            )
        )([jnp.zeros_like(h) for h in hidden])
        return {
            "activation_std": jnp.stack([h.std() for h in hidden]) if hidden else jnp.zeros(0),
            "grad_norm": jnp.stack([jnp.linalg.norm(k) for k in kernels]),
            "backprop_grad_std": (
                jnp.stack([g.std() for g in pre_grads]) if hidden else jnp.zeros(0)
            ),
            "activations": [h[:n_probe] for h in hidden],
            "backprop_grads": [g[:n_probe] for g in pre_grads],
        }

    def update(
        p: nnx.State, opt_state: Any, key: jax.Array, lr: jax.Array, step: jax.Array
    ) -> tuple:
        if batch_size is None or batch_size >= n_train:
            (value, _), grads = loss_grad(p, x_train, y_train)
        else:
            idx = jax.random.choice(
                jax.random.fold_in(key, step), n_train, (batch_size,), replace=False
            )
            value = loss_and_hidden(p, x_train, y_train)[0]
            grads = loss_grad(p, x_train[idx], y_train[idx])[1]
        run_tx = make_optimizer(optimizer, lr) if per_run_lr else tx
        updates, opt_state = run_tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, value

    def body(carry: tuple, step: jax.Array) -> tuple:
        p, opt_state = carry
        lr_axis = 0 if per_run_lr else None
        p, opt_state, value = jax.vmap(update, in_axes=(0, 0, 0, lr_axis, None))(
            p, opt_state, keys, learning_rate, step
        )
        jax.lax.cond(
            (step + 1) % report_every == 0,
            lambda: jax.debug.callback(_report_step, step + 1),
            lambda: None,
        )
        return (p, opt_state), value

    def evaluate(p: nnx.State) -> dict[str, jax.Array]:
        model = nnx.merge(graphdef, p)
        train_logits, test_logits = model(x_train), model(x_test)
        return {
            "final_loss": loss_fn(loss, train_logits, y_train),
            "train_accuracy": accuracy_fn(loss, train_logits, y_train),
            "test_accuracy": accuracy_fn(loss, test_logits, y_test),
            "test_loss": loss_fn(loss, test_logits, y_test),
        }

    out = jax.vmap(at_init)(params)
    opt_state = jax.vmap(tx.init)(params)
    losses: jax.Array
    (params, _), losses = jax.lax.scan(body, (params, opt_state), jnp.arange(steps))
    final = jax.vmap(evaluate)(params)
    out["loss_curve"] = jnp.concatenate([losses.T, final.pop("final_loss")[:, None]], axis=1)
    out.update(final)
    return out
