r"""Diagnostics at initialization: per-layer activation statistics and gradient norms.

Definitions:

- *activation std* of a layer: the standard deviation over all batch elements and units
  of the layer's output (population std, ``jnp.std``); likewise the mean, and the same
  statistics of the layer's input. For an MLP ``Dense -> act -> Dense -> ...`` the
  post-activation output of hidden layer :math:`l` is the input of layer :math:`l + 1`,
  so on the same model and batch :attr:`Diagnosis.hidden_activation_std` equals the
  ``activation_std_at_init`` of :mod:`jinit.train` (which uses its whole training set as
  the batch, and averages over seeds). These come from the forward pass alone: they do
  not depend on the loss.
- *gradient norm* of a layer: the Frobenius norm of :math:`\partial L / \partial W_l`
  (the layer's kernel) on the batch, for the loss :math:`L` given as ``loss_fn``. They
  equal the trainer's ``grad_norm_at_init`` only with the trainer's loss, softmax
  cross-entropy with integer labels averaged over the batch
  (``lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()``),
  on the same model and batch; the default loss below gives different numbers.
- default loss: :math:`L = \tfrac12 \operatorname{mean}(y^2)` over all output elements
  (summed over the leaves if the model returns a pytree).

Layers are the Dense/Linear and Conv (and ConvTranspose) layers the forward pass calls,
in call order. Everything runs in one jitted ``value_and_grad`` call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._table import format_table
from jinit.tools import _capture

__all__ = ["Diagnosis", "LayerStats", "diagnose"]


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer at init.

    Attributes:
      path: the layer's path (``"layers/0"`` in nnx, ``"Dense_0"`` in linen).
      kind: the layer's class name.
      input_mean, input_std: mean / std over all elements of the layer's input.
      output_mean, output_std: mean / std over all elements of the layer's output.
      grad_norm: Frobenius norm of d(loss)/d(kernel) on the batch.
    """

    path: str
    kind: str
    input_mean: float
    input_std: float
    output_mean: float
    output_std: float
    grad_norm: float


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Per-layer statistics (forward order) and the loss; indexable by position or path.

    Attributes:
      layers: one :class:`LayerStats` per layer, in call order.
      loss: the loss on the batch.
    """

    layers: tuple[LayerStats, ...]
    loss: float

    def __iter__(self) -> Iterator[LayerStats]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int | str) -> LayerStats:
        if isinstance(index, str):
            for r in self.layers:
                if r.path == index:
                    return r
            raise KeyError(f"No layer {index!r}; layers: {[r.path for r in self.layers]}.")
        return self.layers[index]

    @property
    def activation_std(self) -> list[float]:
        """Output std of every layer."""
        return [r.output_std for r in self.layers]

    @property
    def hidden_activation_std(self) -> list[float]:
        """Input std of every layer but the first: for an MLP, the post-activation std of
        each hidden layer (the trainer's ``activation_std_at_init``)."""
        return [r.input_std for r in self.layers[1:]]

    @property
    def grad_norm(self) -> list[float]:
        """Gradient norm of every layer's kernel."""
        return [r.grad_norm for r in self.layers]

    def __str__(self) -> str:
        headers = ["layer", "kind", "in mean", "in std", "out mean", "out std", "|grad|"]
        rows = [
            [
                r.path,
                r.kind,
                r.input_mean,
                r.input_std,
                r.output_mean,
                r.output_std,
                r.grad_norm,
            ]
            for r in self.layers
        ]
        return format_table(headers, rows) + f"\nloss = {self.loss:.6g}"


def default_loss(outputs: Any) -> jax.Array:
    r"""The default loss :math:`\tfrac12 \operatorname{mean}(y^2)`, summed over output leaves."""
    leaves = jax.tree_util.tree_leaves(outputs)
    return sum(
        0.5 * jnp.mean(jnp.square(jnp.asarray(y, jnp.promote_types(y.dtype, jnp.float32))))
        for y in leaves
    )


def _stats(x: Any) -> tuple[jax.Array, jax.Array]:
    if x is None or not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.inexact):
        nan = jnp.float32(jnp.nan)
        return nan, nan
    mean, var = _capture.moments(x)
    return mean, jnp.sqrt(var)


def _records(order: list[tuple[str, str]], stats: dict, grads: dict, loss: jax.Array) -> Diagnosis:
    stats, grads = jax.device_get((stats, grads))
    layers = []
    for p, kind in order:
        im, isd, om, osd = (float(v) for v in stats[p])
        g = grads.get(p)
        gn = float(np.linalg.norm(np.asarray(g, np.float64).ravel())) if g is not None else math.nan
        layers.append(LayerStats(p, kind, im, isd, om, osd, gn))
    return Diagnosis(tuple(layers), float(loss))


def _diagnose_nnx(model: Any, batch: Any, loss_fn: Callable) -> Diagnosis:
    from flax import nnx

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    order: list[tuple[str, str]] = []

    def f(params, rest, batch):
        m = nnx.merge(graphdef, params, rest)
        with _capture.record_nnx(m) as rec:
            out = m(batch)
        if not order:
            order.extend((p, kind) for p, kind, _, _ in rec)
        stats = {p: (*_stats(x), *_stats(y)) for p, _, x, y in rec}
        return loss_fn(out), stats

    (loss, stats), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(params, rest, batch)
    kernel_grads = {
        _capture.path_str(path[:-1]): var.get_value()
        for path, var in nnx.to_flat_state(grads)
        if path and path[-1] == "kernel"
    }
    return _records(order, stats, kernel_grads, loss)


def _diagnose_linen(
    apply_fn: Callable, variables: Any, batch: Any, loss_fn: Callable, apply_kwargs: dict
) -> Diagnosis:
    from flax.core import unfreeze

    variables = unfreeze(variables) if type(variables).__name__ == "FrozenDict" else variables
    mutable = bool(apply_kwargs.get("mutable", False))
    layers, kernels = _capture.linen_layers(apply_fn, variables, batch, apply_kwargs)

    def f(kernels, variables, batch):
        variables = _capture.set_linen_kernels(variables, kernels)
        with _capture.record_linen() as rec:
            out = apply_fn(variables, batch, **apply_kwargs)
        if mutable:
            out = out[0]
        stats = {p: (*_stats(x), *_stats(y)) for p, _, x, y in rec}
        return loss_fn(out), stats

    (loss, stats), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(kernels, variables, batch)
    return _records(layers, stats, grads, loss)


def diagnose(
    model: Any,
    batch: Any,
    *,
    loss_fn: Callable[[Any], jax.Array] | None = None,
    variables: Any = None,
    **apply_kwargs: Any,
) -> Diagnosis:
    r"""Per-layer activation mean/std and gradient norms of a Flax model at init.

    Works on:

    - an ``nnx.Module``, called as ``model(batch)``;
    - a linen ``(module, variables)`` pair, run as ``module.apply(variables, batch,
      **apply_kwargs)``;
    - an apply function with ``variables=``: ``model(variables, batch, **apply_kwargs)``,
      e.g. ``module.apply`` or your own function that calls linen modules.

    Args:
      model: the model (see above).
      batch: the input batch (an array or a pytree the model accepts).
      loss_fn: ``loss_fn(outputs) -> scalar``; default :math:`\tfrac12\operatorname{mean}(y^2)`.
        Close over the labels for a supervised loss, e.g.
        ``lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()``
        (the trainer's loss: only with it do the gradient norms match
        ``grad_norm_at_init`` of :mod:`jinit.train`).
      variables: linen variables, when ``model`` is an apply function.
      **apply_kwargs: extra keyword arguments for the linen apply (``train=False``,
        ``rngs=...``, ``mutable=[...]``; mutated collections are discarded).

    Returns:
      A :class:`Diagnosis`: one :class:`LayerStats` per Dense/Conv layer in call order
      (input and output mean/std, gradient norm) and the loss; ``print`` it for a table.

    Raises:
      TypeError: for an unsupported ``model``.

    Examples:
      >>> import jax, jinit
      >>> from flax import nnx
      >>> model = nnx.Sequential(
      ...     nnx.Linear(8, 16, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(16, 2, rngs=nnx.Rngs(1))
      ... )
      >>> d = jinit.diagnose(model, jax.random.normal(jax.random.key(0), (32, 8)))
      >>> [r.path for r in d], len(d.grad_norm), d.loss > 0
      (['layers/0', 'layers/2'], 2, True)
    """
    from flax import linen as nn
    from flax import nnx

    loss_fn = default_loss if loss_fn is None else loss_fn
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable or None; got {loss_fn!r}.")
    if isinstance(model, nnx.Module):
        return _diagnose_nnx(model, batch, loss_fn)
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], nn.Module):
        module, variables = model
        return _diagnose_linen(module.apply, variables, batch, loss_fn, apply_kwargs)
    if isinstance(model, nn.Module):
        if variables is None:
            raise TypeError("A linen module needs its variables: diagnose((module, variables), x).")
        return _diagnose_linen(model.apply, variables, batch, loss_fn, apply_kwargs)
    if callable(model):
        if variables is None:
            raise TypeError(
                "An apply function needs `variables=`: diagnose(apply_fn, x, variables=v), "
                "called as apply_fn(variables, x)."
            )
        return _diagnose_linen(model, variables, batch, loss_fn, apply_kwargs)
    raise TypeError(
        "`model` must be an nnx.Module, a linen (module, variables) pair, or an apply "
        f"function with `variables=`; got {type(model).__name__}."
    )
