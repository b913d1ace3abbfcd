r"""Layer-sequential unit-variance (LSUV) initialization (Mishkin & Matas, 2016).

1. Pre-initialize every Dense/Linear and Conv kernel with an orthonormal matrix
   (:func:`jinit.orthogonal`; a conv kernel ``(*k, in, out)`` is orthogonal as a
   ``(prod(k) * in, out)`` matrix).
2. For each layer, in the order the forward pass calls them, forward the batch and
   rescale the kernel until the output variance is within ``tol`` of one:

.. math::
    W_l \leftarrow W_l / \sqrt{\mathrm{Var}(y_l)} \quad \text{until} \quad
    |\mathrm{Var}(y_l) - 1| < \mathrm{tol} \ \text{or} \ \texttt{max\_iters} \text{ rescalings},

where :math:`\mathrm{Var}(y_l)` is the variance over all batch elements and units of the
layer's output (biases included). Each forward pass is jitted once per call and reused;
the batch is processed as one array.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import check_real
from jinit._initializers import orthogonal
from jinit._table import format_table
from jinit.tools import _capture

__all__ = ["LSUVLayer", "LSUVReport", "lsuv", "lsuv_linen"]


@dataclasses.dataclass(frozen=True)
class LSUVLayer:
    """The LSUV outcome for one layer.

    Attributes:
      path: the layer's path, e.g. ``"layers/0"`` (nnx) or ``"Dense_0"`` (linen).
      kind: the layer's class name (``"Linear"``, ``"Conv"``, ``"Dense"``...).
      iterations: how many times the kernel was rescaled.
      variance: the layer's output variance on the batch after LSUV.
      converged: whether ``|variance - 1| < tol``.
      reason: why not, when not converged (else None).
    """

    path: str
    kind: str
    iterations: int
    variance: float
    converged: bool
    reason: str | None = None


class LSUVReport(tuple):
    """A tuple of :class:`LSUVLayer`, in forward order, with a readable table."""

    @property
    def converged(self) -> bool:
        """True when every layer converged."""
        return all(r.converged for r in self)

    def __str__(self) -> str:
        rows = [
            [r.path, r.kind, r.iterations, f"{r.variance:.4f}", r.converged, r.reason or ""]
            for r in self
        ]
        headers = ["layer", "kind", "iters", "variance", "converged", "reason"]
        return format_table(headers, rows)

    def __repr__(self) -> str:
        return f"LSUVReport({list(self)!r})"


def _check_args(tol: Any, max_iters: Any) -> tuple[float, int]:
    """``tol``: a real number in (0, 1); ``max_iters``: an int >= 0. TypeError for other kinds."""
    if isinstance(tol, jax.core.Tracer):
        raise TypeError(f"`tol` must be a concrete real number, not a traced value; got {tol!r}.")
    tol = check_real("tol", tol)
    if not 0 < tol < 1:
        raise ValueError(f"`tol` must be a number in (0, 1); got {tol!r}.")
    if isinstance(max_iters, (bool, np.bool_)) or not isinstance(max_iters, numbers.Integral):
        raise TypeError(
            f"`max_iters` must be an int; got {max_iters!r} of type {type(max_iters).__name__}."
        )
    if max_iters < 0:
        raise ValueError(f"`max_iters` must be a non-negative int; got {max_iters!r}.")
    return tol, int(max_iters)


def _orthogonal(key: jax.Array, kernel: jax.Array) -> jax.Array:
    return orthogonal()(key, kernel.shape, kernel.dtype)


def _run(
    kernels: dict[str, jax.Array],
    order: Sequence[str],
    kinds: dict[str, str],
    variances,
    *,
    tol: float,
    max_iters: int,
) -> tuple[dict[str, jax.Array], LSUVReport]:
    """The LSUV loop; ``variances(kernels)`` returns {path: output variance} (jitted)."""
    kernels = dict(kernels)
    current = {p: float(v) for p, v in variances(kernels).items()}
    records = []
    for path in order:
        iters, reason, previous = 0, None, None
        while True:
            var = current[path]
            if not math.isfinite(var):
                reason = f"output variance is {var} (non-finite); check the upstream layers"
                break
            if abs(var - 1.0) < tol:
                break
            if var == 0.0:
                reason = (
                    "output variance is 0: the layer's input is zero/constant on the batch "
                    "(e.g. a dead ReLU layer upstream), so rescaling cannot help"
                )
                break
            if previous is not None and abs(var - previous) <= 1e-6 * previous:
                reason = (
                    "rescaling the kernel does not change the output variance: the layer's "
                    "input is constant on the batch (e.g. a dead ReLU layer upstream) and the "
                    "variance comes from the bias"
                )
                break
            if iters >= max_iters:
                reason = f"|variance - 1| >= tol={tol} after max_iters={max_iters} rescalings"
                break
            k = kernels[path]
            wide = k.astype(jnp.promote_types(k.dtype, jnp.float32))
            kernels[path] = (wide / math.sqrt(var)).astype(k.dtype)
            iters, previous = iters + 1, var
            current = {p: float(v) for p, v in variances(kernels).items()}
        var = current[path]
        converged = math.isfinite(var) and abs(var - 1.0) < tol
        records.append(
            LSUVLayer(path, kinds[path], iters, var, converged, None if converged else reason)
        )
    return kernels, LSUVReport(records)


def lsuv(
    model: Any,
    batch: Any,
    *,
    tol: float = 0.1,
    max_iters: int = 10,
    orthogonal_preinit: bool = True,
    key: jax.Array | None = None,
) -> LSUVReport:
    r"""LSUV-initializes the Dense/Conv kernels of a ``flax.nnx`` model, in place.

    The model is called as ``model(batch)``; every ``nnx.Linear``, ``nnx.Conv`` and
    ``nnx.ConvTranspose`` it calls is processed in call order (a layer called twice is
    judged by its first call). Biases and other parameters are left as they are. Run it
    on the model as you will train it (e.g. call ``model.eval()`` first to turn off
    dropout); batch-norm statistics and RNG state are not updated.

    Args:
      model: an ``nnx.Module``, called as ``model(batch)``.
      batch: the input batch (an array or any pytree the model accepts). A few hundred
        examples are plenty.
      tol: target tolerance, ``|Var(output) - 1| < tol``.
      max_iters: most rescalings per layer.
      orthogonal_preinit: first replace each kernel by an orthonormal one
        (:func:`jinit.orthogonal`), as in the paper.
      key: PRNG key for the orthogonal pre-init (default ``jax.random.key(0)``).

    Returns:
      An :class:`LSUVReport`: per layer the path, iterations, final output variance, a
      converged flag, and the reason when not converged (e.g. a dead ReLU layer upstream
      gives variance 0). ``report.converged`` is True when all layers converged.

    Raises:
      TypeError: if ``model`` is not an ``nnx.Module``, ``tol`` is not a real number or
        ``max_iters`` not an int.
      ValueError: for ``tol`` outside (0, 1), a negative ``max_iters``, or a model without
        Dense/Conv layers.

    Examples:
      >>> import jax, jinit
      >>> from flax import nnx
      >>> model = nnx.Sequential(
      ...     nnx.Linear(16, 32, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(32, 4, rngs=nnx.Rngs(1))
      ... )
      >>> x = jax.random.normal(jax.random.key(0), (256, 16))
      >>> report = jinit.lsuv(model, x)
      >>> [r.path for r in report], report.converged
      (['layers/0', 'layers/2'], True)
      >>> bool(abs(model(x).var() - 1) < 0.1)
      True

    References:
      Mishkin & Matas, "All you need is a good init", ICLR 2016. arXiv:1511.06422.
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"`model` must be an nnx.Module; got {type(model).__name__}. "
            "For flax.linen use jinit.lsuv_linen(module, variables, batch)."
        )
    tol, max_iters = _check_args(tol, max_iters)
    layers = _capture.nnx_layers(model)
    if not layers:
        raise ValueError("lsuv: the model has no nnx.Linear / nnx.Conv / nnx.ConvTranspose layer.")
    graphdef, state = nnx.split(model)
    order: list[str] = []

    def forward(kernels, state, batch):
        m = nnx.merge(graphdef, state)
        mods = _capture.nnx_layers(m)
        for p, k in kernels.items():
            mods[p].kernel.set_value(k)
        with _capture.record_nnx(m) as rec:
            m(batch)
        if not order:
            order.extend(p for p, _, _, _ in rec)
        return {p: _capture.moments(y)[1] for p, _, _, y in rec}

    # Which layers the forward pass calls, and in which order (abstract: no FLOPs).
    kernels = {p: layers[p].kernel.get_value() for p in layers}
    jax.eval_shape(forward, kernels, state, batch)
    if not order:
        raise ValueError("lsuv: model(batch) called none of its Dense/Conv layers.")
    kernels = {p: kernels[p] for p in order}
    if orthogonal_preinit:
        key = jax.random.key(0) if key is None else key
        kernels = {
            p: _orthogonal(jax.random.fold_in(key, i), k)
            for i, (p, k) in enumerate(kernels.items())
        }
    fwd = jax.jit(forward)
    variances = lambda ks: fwd(ks, state, batch)
    kinds = {p: type(layers[p]).__name__ for p in order}
    kernels, report = _run(kernels, order, kinds, variances, tol=tol, max_iters=max_iters)
    for p, k in kernels.items():
        layers[p].kernel.set_value(k)
    return report


def lsuv_linen(
    module: Any,
    variables: Any,
    batch: Any,
    *,
    tol: float = 0.1,
    max_iters: int = 10,
    orthogonal_preinit: bool = True,
    key: jax.Array | None = None,
    **apply_kwargs: Any,
) -> tuple[Any, LSUVReport]:
    r"""LSUV-initializes the Dense/Conv kernels of a ``flax.linen`` model.

    Same algorithm as :func:`lsuv`; the model runs as
    ``module.apply(variables, batch, **apply_kwargs)`` and every ``nn.Dense``, ``nn.Conv``
    and ``nn.ConvTranspose`` it calls is processed in call order.

    Args:
      module: a ``flax.linen.Module``.
      variables: its variables, ``{"params": ..., ...}`` (not modified).
      batch: the input batch.
      tol: target tolerance, ``|Var(output) - 1| < tol``.
      max_iters: most rescalings per layer.
      orthogonal_preinit: first replace each kernel by an orthonormal one.
      key: PRNG key for the orthogonal pre-init (default ``jax.random.key(0)``).
      **apply_kwargs: passed to ``module.apply`` (e.g. ``train=False``, ``rngs=...``,
        ``mutable=["batch_stats"]``; mutated collections are discarded).

    Returns:
      ``(new_variables, report)``; see :func:`lsuv` for the report.

    Raises:
      TypeError: if ``module`` is not a linen Module, ``variables`` has no ``"params"``,
        ``tol`` is not a real number or ``max_iters`` not an int.
      ValueError: for ``tol`` outside (0, 1), a negative ``max_iters``, or a model without
        Dense/Conv layers.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> import flax.linen as nn
      >>> class MLP(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         h = nn.tanh(nn.Dense(32)(x))
      ...         return nn.Dense(4)(h)
      >>> x = jax.random.normal(jax.random.key(0), (256, 16))
      >>> variables = MLP().init(jax.random.key(1), x)
      >>> variables, report = jinit.lsuv_linen(MLP(), variables, x)
      >>> [r.path for r in report], report.converged
      (['Dense_0', 'Dense_1'], True)

    References:
      Mishkin & Matas, "All you need is a good init", ICLR 2016. arXiv:1511.06422.
    """
    from flax import linen as nn

    if not isinstance(module, nn.Module):
        raise TypeError(
            f"`module` must be a flax.linen Module; got {type(module).__name__}. "
            "For flax.nnx use jinit.lsuv(model, batch)."
        )
    if not hasattr(variables, "get") or "params" not in variables:
        raise TypeError("`variables` must be a linen variables dict with a 'params' collection.")
    tol, max_iters = _check_args(tol, max_iters)
    from flax.core import FrozenDict, freeze, unfreeze

    is_frozen = isinstance(variables, FrozenDict)
    variables = unfreeze(variables) if is_frozen else dict(variables)
    layers, kernels = _capture.linen_layers(module.apply, variables, batch, apply_kwargs)
    if not layers:
        raise ValueError("lsuv_linen: module.apply called no nn.Dense / nn.Conv layer.")
    found = dict(layers)
    order = [p for p in found if p in kernels]
    skipped = [p for p in found if p not in kernels]
    if not order:
        raise ValueError(
            "lsuv_linen: no kernel of the called Dense/Conv layers was found in "
            "variables['params'] (lifted transforms such as nn.scan are not supported)."
        )

    def forward(kernels, variables, batch):
        variables = _capture.set_linen_kernels(variables, kernels)
        with _capture.record_linen() as rec:
            module.apply(variables, batch, **apply_kwargs)
        return {p: _capture.moments(y)[1] for p, _, _, y in rec}

    kinds = {p: found[p] for p in order}
    if orthogonal_preinit:
        key = jax.random.key(0) if key is None else key
        kernels = {
            p: _orthogonal(jax.random.fold_in(key, i), k)
            for i, (p, k) in enumerate(kernels.items())
        }
    fwd = jax.jit(forward)
    variances = lambda ks: fwd(ks, variables, batch)
    kernels, report = _run(kernels, order, kinds, variances, tol=tol, max_iters=max_iters)
    records = list(report) + [
        LSUVLayer(p, found[p], 0, float("nan"), False, "kernel not found in variables['params']")
        for p in skipped
    ]
    variables = _capture.set_linen_kernels(variables, kernels, keep_box=True)
    if is_frozen:
        variables = freeze(variables)
    return variables, LSUVReport(records)
