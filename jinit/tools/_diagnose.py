r"""Diagnostics at initialization: per-layer activation and gradient statistics.

Definitions:

- *activation std* of a layer: the standard deviation over all batch elements and units
  of the layer's output (population std, ``jnp.std``); likewise the mean, and the same
  statistics of the layer's input. For an MLP ``Dense -> act -> Dense -> ...`` the
  post-activation output of hidden layer :math:`l` is the input of layer :math:`l + 1`,
  so on the same model and batch :attr:`Diagnosis.hidden_activation_std` equals the
  ``activation_std_at_init`` of :mod:`jinit.train` (which uses its whole training set as
  the batch, and averages over seeds). These come from the forward pass alone: they do
  not depend on the loss.
- *output gradient std* of a layer: the std over all batch elements and units of
  :math:`\partial L / \partial y_l`, the gradient of the loss with respect to the layer's
  output. For a Dense/Conv layer followed by an activation this is the gradient with
  respect to the pre-activation, the back-propagated gradient of Glorot & Bengio (2010).
- *gradient norm* of a layer: the Frobenius norm of :math:`\partial L / \partial W_l`
  (the layer's kernel, or an Embed's table) on the batch, for the loss :math:`L` given as
  ``loss_fn``; ``grad_mean``/``grad_std`` are the mean/std of its elements, and
  ``bias_grad_mean``/``bias_grad_std`` those of the bias gradient. The norms equal the
  trainer's ``grad_norm_at_init`` only with the trainer's loss, softmax cross-entropy with
  integer labels averaged over the batch
  (``lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()``),
  on the same model and batch; the default loss below gives different numbers.
- default loss: :math:`L = \tfrac12 \operatorname{mean}(y^2)` over all output elements
  (summed over the leaves if the model returns a pytree).

Layers are those of the recorded types (Linear/Dense, LinearGeneral/DenseGeneral, Einsum,
Conv, ConvTranspose, Embed by default) that the forward pass calls, in call order; an
activation function held in an ``nnx.Sequential`` right after a layer is recorded with it
(``activation``, ``activation_std``...), so the last hidden layer is visible too. Every
other parameterised layer is listed in :attr:`Diagnosis.skipped` with the reason.
Everything runs in one jitted ``value_and_grad`` call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

from jinit._table import format_table
from jinit.tools import _capture

__all__ = ["Diagnosis", "LayerStats", "diagnose"]

_NAN = math.nan


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer at init.

    Attributes:
      path: the layer's path (``"layers/0"`` in nnx, ``"Dense_0"`` in linen).
      kind: the layer's class name.
      input_mean, input_std: mean / std over all elements of the layer's input (NaN for
        integer inputs, e.g. an Embed's token ids).
      output_mean, output_std: mean / std over all elements of the layer's output.
      grad_norm: Frobenius norm of d(loss)/d(kernel) on the batch (Embed: the table).
      output_grad_std: std over all elements of d(loss)/d(layer output).
      grad_mean, grad_std: mean / std of the elements of d(loss)/d(kernel).
      bias_grad_mean, bias_grad_std: the same for the bias (NaN without a bias).
      activation: name of the activation function applied right after the layer (an
        ``nnx.Sequential`` element), else None.
      activation_mean, activation_std: mean / std of that activation's output.
      activation_grad_std: std of d(loss)/d(activation output).
      note: why a statistic is what it is, when it needs saying (e.g. a zero gradient
        because a zero-initialized normalization scale downstream blocks it).
    """

    path: str
    kind: str
    input_mean: float
    input_std: float
    output_mean: float
    output_std: float
    grad_norm: float
    output_grad_std: float = _NAN
    grad_mean: float = _NAN
    grad_std: float = _NAN
    bias_grad_mean: float = _NAN
    bias_grad_std: float = _NAN
    activation: str | None = None
    activation_mean: float = _NAN
    activation_std: float = _NAN
    activation_grad_std: float = _NAN
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Per-layer statistics (forward order) and the loss; indexable by position or path.

    Attributes:
      layers: one :class:`LayerStats` per layer, in call order.
      loss: the loss on the batch.
      skipped: ``(path, kind, reason)`` for every parameterised layer not measured (the
        printed table shows one line per kind and reason, with the count and the paths
        abbreviated).
    """

    layers: tuple[LayerStats, ...]
    loss: float
    skipped: tuple[_capture.Skipped, ...] = ()

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

    @property
    def output_grad_std(self) -> list[float]:
        """Std of d(loss)/d(output) of every layer (pre-activation gradients)."""
        return [r.output_grad_std for r in self.layers]

    def __str__(self) -> str:
        headers = ["layer", "kind", "in mean", "in std", "out mean", "out std", "|grad|"]
        headers += ["out grad std"]
        acts = any(r.activation for r in self.layers)
        if acts:
            headers += ["act", "act std"]
        rows = []
        for r in self.layers:
            row = [r.path, r.kind, r.input_mean, r.input_std, r.output_mean, r.output_std]
            row += [r.grad_norm, r.output_grad_std]
            if acts:
                row += [r.activation, r.activation_std if r.activation else None]
            rows.append(row)
        text = format_table(headers, rows) + f"\nloss = {self.loss:.6g}"
        notes = [f"  {r.path}: {r.note}" for r in self.layers if r.note]
        if notes:
            text += "\nnotes:\n" + "\n".join(notes)
        return text + _capture.skipped_text(self.skipped)


def default_loss(outputs: Any) -> jax.Array:
    r"""The default loss :math:`\tfrac12 \operatorname{mean}(y^2)`, summed over output leaves."""
    leaves = jax.tree_util.tree_leaves(outputs)
    return sum(
        (
            0.5 * jnp.mean(jnp.square(jnp.asarray(y, jnp.promote_types(y.dtype, jnp.float32))))
            for y in leaves
        ),
        start=jnp.zeros((), jnp.float32),
    )


def _stats(x: Any) -> tuple[jax.Array, jax.Array]:
    if x is None or not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.inexact):
        nan = jnp.float32(jnp.nan)
        return nan, nan
    mean, var = _capture.moments(x)
    return mean, jnp.sqrt(var)


def _grad_stats(g: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(mean, std, Frobenius norm) of a gradient; NaNs when there is none."""
    if g is None:
        nan = jnp.float32(jnp.nan)
        return nan, nan, nan
    g = jnp.asarray(g)
    mean, var = _capture.moments(g)
    wide = g.astype(jnp.promote_types(g.dtype, jnp.float32))
    return mean, jnp.sqrt(var), jnp.sqrt(jnp.sum(jnp.square(wide)))


def _attach(records: list[_capture.Record]) -> dict[str, str]:
    """{activation path: layer path} for activations whose input is a layer's output."""
    out = {}
    for j, a in enumerate(records):
        if not a.activation:
            continue
        for r in records[:j][::-1]:
            if not r.activation and r.y is a.x:
                out[a.path] = r.path
                break
    return out


def _zero_note(
    layer: str, order: list[str], zeros: dict[str, str], kinds: dict[str, str]
) -> str | None:
    """A zero-gradient layer's explanation: the closest zero-scale layer after it."""
    if not zeros:
        return None

    def shared(p: str) -> int:
        a, b = layer.split("/"), p.split("/")
        n = 0
        while n < min(len(a), len(b)) - 1 and a[n] == b[n]:
            n += 1
        return n

    pos = {p: i for i, p in enumerate(order)}
    here = pos.get(layer, -1)
    after = [p for p in zeros if pos.get(p, -1) > here] or list(zeros)
    best = max(after, key=lambda p: (shared(p), -pos.get(p, 0)))
    return (
        f"gradient is 0: {best!r} ({kinds.get(best, '?')}) downstream has {zeros[best]} = 0 "
        "everywhere (zero-initialized, as in the last BatchNorm of a ResNet block), so no "
        "gradient flows back to this layer at init"
    )


def _zero_params(candidates: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{path: param name} of layers whose 'scale' (or kernel) is zero everywhere."""
    out = {}
    for path, params in candidates.items():
        for name in ("scale", "kernel"):
            v = params.get(name)
            if v is not None and hasattr(v, "shape") and v.size and not bool(jnp.any(v != 0)):
                out[path] = name
                break
    return out


def _finish(
    records: list[_capture.Record],
    attach: dict[str, str],
    values: dict[str, Any],
    loss: Any,
    skipped: list[_capture.Skipped],
    zero_candidates: Callable[[], dict[str, dict[str, Any]]],
    order: list[str],
    kinds: dict[str, str],
) -> Diagnosis:
    values, loss = jax.device_get((values, loss))
    acts = {layer: a for a, layer in attach.items()}
    by_path = {r.path: r for r in records}
    layers = []
    zeros: dict[str, str] | None = None
    for r in records:
        if r.activation:
            continue
        v = [float(t) for t in values[r.path]]
        im, isd, om, osd, ogs, gm, gs, gn, bm, bs = v
        act = acts.get(r.path)
        a_name, a_mean, a_std, a_gs = None, _NAN, _NAN, _NAN
        if act is not None:
            a_name = by_path[act].kind
            _, _, a_mean, a_std, a_gs = (float(t) for t in values[act][:5])
        note = None
        if gn == 0.0:
            if ogs == 0.0:
                zeros = _zero_params(zero_candidates()) if zeros is None else zeros
                note = _zero_note(r.path, order, zeros, kinds) or (
                    "gradient is 0: no gradient reaches the layer's output "
                    "(d loss / d output = 0 on the batch)"
                )
            else:
                note = "gradient is 0: the layer's input is 0 on the batch (dead units upstream)"
        layers.append(
            LayerStats(
                r.path,
                r.kind,
                im,
                isd,
                om,
                osd,
                gn,
                ogs,
                gm,
                gs,
                bm,
                bs,
                a_name,
                a_mean,
                a_std,
                a_gs,
                note,
            )
        )
    if not layers:
        found = "; ".join(f"{s.path} ({s.kind})" for s in skipped) or "none"
        raise ValueError(
            "diagnose: the forward pass called no layer of the recorded types, so there is "
            f"nothing to report. Parameterised layers found: {found}. Pass `layer_types=` to "
            "record other layer classes."
        )
    return Diagnosis(tuple(layers), float(loss), tuple(skipped))


def _xy_stats(rec: list[_capture.Record]) -> dict[str, tuple]:
    return {r.path: (*_stats(r.x), *_stats(r.y)) for r in rec}


def _layer_values(records, xy, grad_of, pert_grads) -> dict[str, tuple]:
    """Per record: input/output stats, output-grad std, kernel and bias grad stats."""
    out = {}
    for r in records:
        g = pert_grads.get(r.path)
        ogs = jnp.std(g.astype(jnp.float32)) if g is not None else jnp.float32(jnp.nan)
        if r.activation:
            out[r.path] = (*xy[r.path], ogs)
            continue
        gm, gs, gn = _grad_stats(grad_of(r.path, r.param))
        bm, bs, _ = _grad_stats(grad_of(r.path, "bias"))
        out[r.path] = (*xy[r.path], ogs, gm, gs, gn, bm, bs)
    return out


def _zeros_like_outputs(records: list[_capture.Record]) -> dict[str, jax.Array]:
    return {
        r.path: jnp.zeros(r.y.shape, jnp.promote_types(r.y.dtype, jnp.float32))
        for r in records
        if _capture._is_array(r.y) and jnp.issubdtype(r.y.dtype, jnp.inexact)
    }


def _diagnose_nnx(model: Any, args: tuple, kwargs: dict, loss_fn: Callable, types) -> Diagnosis:
    from flax import nnx

    graphdef, params, *others = nnx.split(model, nnx.Param, ...)
    (rest,) = others
    arrays, rebuild = _capture.split_call(args, kwargs)
    probe_records: list[_capture.Record] = []

    def run(params, rest, perturb, arrays):
        m = nnx.merge(graphdef, params, rest, copy=True)
        a, kw = rebuild(arrays)
        with _capture.record_nnx(m, types, perturb=perturb) as rec:
            out = m(*a, **kw)
        return out, rec

    def probe(params, rest, arrays):
        out, rec = run(params, rest, None, arrays)
        probe_records.extend(rec)
        return out

    jax.eval_shape(probe, params, rest, arrays)  # the layers, in call order (no FLOPs)
    perturb = _zeros_like_outputs(probe_records)

    def f(params, perturb, rest, arrays):
        out, rec = run(params, rest, perturb, arrays)
        return loss_fn(out), _xy_stats(rec)

    def program(params, perturb, rest, arrays):
        (loss, xy), (gp, gpert) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(
            params, perturb, rest, arrays
        )
        flat = {(_capture.path_str(p[:-1]), p[-1]): v.get_value() for p, v in nnx.to_flat_state(gp)}
        grad_of = lambda path, name: flat.get((path, name))
        return loss, _layer_values(probe_records, xy, grad_of, gpert)

    loss, values = jax.jit(program)(params, perturb, rest, arrays)
    measured = {r.path for r in probe_records}
    modules = _capture.nnx_param_modules(model)
    skipped = _capture.nnx_skipped(modules, measured, types)

    def candidates():
        return {
            p: {k: v.get_value() for k, v in vars(m).items() if isinstance(v, nnx.Param)}
            for p, m in modules.items()
        }

    kinds = {p: type(m).__name__ for p, m in modules.items()}
    return _finish(
        probe_records,
        _attach(probe_records),
        values,
        loss,
        skipped,
        candidates,
        list(modules),
        kinds,
    )


def _diagnose_linen(
    apply_fn: Callable, variables: Any, args: tuple, loss_fn: Callable, kwargs: dict, types
) -> Diagnosis:
    from flax.core import unfreeze

    variables = unfreeze(variables) if type(variables).__name__ == "FrozenDict" else variables
    if not hasattr(variables, "get") or "params" not in variables:
        raise TypeError("`variables` must be a linen variables dict with a 'params' collection.")
    mutable = bool(kwargs.get("mutable", False))
    arrays, rebuild = _capture.split_call(args, kwargs)
    calls = _capture.LinenCalls()
    probe_records: list[_capture.Record] = []

    def run(params, others, perturb, arrays, calls=None):
        a, kw = rebuild(arrays)
        with _capture.record_linen(types, perturb=perturb, calls=calls) as rec:
            out = apply_fn({**others, "params": params}, *a, **kw)
        return (out[0] if mutable else out), rec

    params = variables["params"]
    others = {k: v for k, v in variables.items() if k != "params"}

    def probe(params, others, arrays):
        out, rec = run(params, others, None, arrays, calls)
        probe_records.extend(rec)
        return out

    jax.eval_shape(probe, params, others, arrays)
    perturb = _zeros_like_outputs(probe_records)

    def f(params, perturb, others, arrays):
        out, rec = run(params, others, perturb, arrays)
        return loss_fn(out), _xy_stats(rec)

    def program(params, perturb, others, arrays):
        (loss, xy), (gp, gpert) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(
            params, perturb, others, arrays
        )

        def grad_of(path, name):
            where = _capture.linen_param_path(path, name)
            return _capture.unbox(_capture.get_in({"params": gp}, where))

        return loss, _layer_values(probe_records, xy, grad_of, gpert)

    loss, values = jax.jit(program)(params, perturb, others, arrays)
    measured = {r.path for r in probe_records}
    skipped = _capture.linen_skipped(params, measured, calls, types)

    def candidates():
        out = {}
        for p in _capture.linen_param_modules(params):
            node = _capture.get_in(params, tuple(p.split("/")) if p else ())
            out[p] = {k: _capture.unbox(v) for k, v in node.items() if not hasattr(v, "items")}
        return out

    order = list(calls.kinds)
    kinds = {p: c.__name__ for p, c in calls.kinds.items()}
    return _finish(
        probe_records,
        _attach(probe_records),
        values,
        loss,
        skipped,
        candidates,
        order,
        kinds,
    )


def diagnose(
    model: Any,
    *args: Any,
    loss_fn: Callable[[Any], jax.Array] | None = None,
    variables: Any = None,
    layer_types: Any = None,
    **kwargs: Any,
) -> Diagnosis:
    r"""Per-layer activation and gradient statistics of a Flax model at init.

    Works on:

    - an ``nnx.Module``, called as ``model(*args, **kwargs)`` (BatchNorm in train mode,
      Dropout with its own rngs: the updated statistics and RNG counts are discarded);
    - a linen ``(module, variables)`` pair, run as ``module.apply(variables, *args,
      **kwargs)``;
    - an apply function with ``variables=``: ``model(variables, *args, **kwargs)``,
      e.g. ``module.apply`` or your own function that calls linen modules.

    Array arguments are traced; everything else (``train=False``, ``mutable=[...]``) is
    passed as is.

    Args:
      model: the model (see above).
      *args: the model's positional inputs (usually the batch).
      loss_fn: ``loss_fn(outputs) -> scalar``; default :math:`\tfrac12\operatorname{mean}(y^2)`.
        Close over the labels for a supervised loss, e.g.
        ``lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()``
        (the trainer's loss: only with it do the gradient norms match
        ``grad_norm_at_init`` of :mod:`jinit.train`).
      variables: linen variables, when ``model`` is an apply function.
      layer_types: the layer classes to record (default: Linear/Dense, LinearGeneral/
        DenseGeneral, Einsum, Conv, ConvTranspose and Embed of the model's framework).
        Any class may be given; its ``kernel`` (if any) gives the gradient statistics.
      **kwargs: extra keyword arguments of the call (``train=False``, ``rngs=...``,
        ``mutable=[...]``; mutated collections are discarded).

    Returns:
      A :class:`Diagnosis`: one :class:`LayerStats` per recorded layer in call order
      (input/output mean and std, output-gradient std, kernel and bias gradient
      statistics, the following activation's statistics, notes), the loss, and the
      parameterised layers that were skipped with the reason; ``print`` it for a table.

    Raises:
      TypeError: for an unsupported ``model``, ``loss_fn`` or ``layer_types``.
      ValueError: when the forward pass calls no layer of the recorded types.

    Examples:
      >>> import jax, jinit
      >>> from flax import nnx
      >>> model = nnx.Sequential(
      ...     nnx.Linear(8, 16, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(16, 2, rngs=nnx.Rngs(1))
      ... )
      >>> d = jinit.diagnose(model, jax.random.normal(jax.random.key(0), (32, 8)))
      >>> [r.path for r in d], d[0].activation, len(d.output_grad_std), d.loss > 0
      (['layers/0', 'layers/2'], 'relu', 2, True)
    """
    from flax import linen as nn
    from flax import nnx

    loss_fn = default_loss if loss_fn is None else loss_fn
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable or None; got {loss_fn!r}.")
    if isinstance(model, nnx.Module):
        types = _capture.check_layer_types(layer_types, _capture.nnx_layer_types(), strict=False)
        return _diagnose_nnx(model, args, kwargs, loss_fn, types)
    types = _capture.check_layer_types(layer_types, _capture.linen_layer_types(), strict=False)
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], nn.Module):
        module, variables = model
        return _diagnose_linen(module.apply, variables, args, loss_fn, kwargs, types)
    if isinstance(model, nn.Module):
        if variables is None:
            raise TypeError("A linen module needs its variables: diagnose((module, variables), x).")
        return _diagnose_linen(model.apply, variables, args, loss_fn, kwargs, types)
    if callable(model):
        if variables is None:
            raise TypeError(
                "An apply function needs `variables=`: diagnose(apply_fn, x, variables=v), "
                "called as apply_fn(variables, x)."
            )
        return _diagnose_linen(model, variables, args, loss_fn, kwargs, types)
    raise TypeError(
        "`model` must be an nnx.Module, a linen (module, variables) pair, or an apply "
        f"function with `variables=`; got {type(model).__name__}."
    )
