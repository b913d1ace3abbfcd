r"""Layer-sequential unit-variance (LSUV) initialization (Mishkin & Matas, 2016).

1. Pre-initialize every kernel with an orthonormal matrix (:func:`jinit.orthogonal`),
   viewing it as a stack of ``(fan_in, fan_out)`` matrices by the layer's own axes: a
   Dense kernel ``(in, out)`` as is, a conv kernel ``(*k, in, out)`` as a
   ``(prod(k) * in, out)`` matrix, a ``DenseGeneral``/``LinearGeneral`` kernel by its
   contracted and feature axes (its batch axes give independent matrices), an ``Einsum``
   kernel by its ``einsum_str`` (kernel axes absent from the output are fan-in, those only
   in the output are fan-out, those also in the input are batch axes). An ``Embed`` table
   is a lookup, not a map: it keeps its values and is only rescaled.
2. For each layer, in the order the forward pass calls them, forward the batch and
   rescale the kernel (the table, for Embed) until the output variance is within ``tol``
   of one:

.. math::
    W_l \leftarrow W_l / \sqrt{\mathrm{Var}(y_l)} \quad \text{until} \quad
    |\mathrm{Var}(y_l) - 1| < \mathrm{tol} \ \text{or} \ \texttt{max\_iters} \text{ rescalings},

where :math:`\mathrm{Var}(y_l)` is the variance over all batch elements and units of the
layer's output (biases included; for Embed, over the looked-up vectors of the batch's ids).

Speed: the orthogonal draws are one batched draw per distinct (matrix shape, dtype)
(:func:`jinit.orthogonal` with ``batch_axis=0``: one compile per distinct shape, cached
across calls); the rescaling is one jitted program, a ``lax.while_loop`` whose body runs
the forward pass with each kernel multiplied by a per-layer scale and decides, on device,
whether to rescale the current layer or move on. Everything is dispatched asynchronously;
the only host transfer is the result. (Fusing the draws into one program too was tried:
on XLA:CPU, jax 0.10.2, a jitted function holding ResNet18's 12 QR factorizations never
finished.)
A layer that converged needs no extra pass: the same forward pass already measured the
next one, so a model of ``L`` layers costs about ``L + 1`` forward passes.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import check_key, check_real
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
    """A tuple of :class:`LSUVLayer`, in forward order, with a readable table.

    ``report.skipped`` lists ``(path, kind, reason)`` for every parameterised layer that
    LSUV did not process (normalization layers, layers called only inside a transform...).
    """

    skipped: tuple[_capture.Skipped, ...]

    def __new__(cls, layers=(), skipped=()):
        obj = super().__new__(cls, layers)
        obj.skipped = tuple(skipped)
        return obj

    @property
    def converged(self) -> bool:
        """True when every processed layer converged."""
        return all(r.converged for r in self)

    def __str__(self) -> str:
        rows = [
            [r.path, r.kind, r.iterations, f"{r.variance:.4f}", r.converged, r.reason or ""]
            for r in self
        ]
        headers = ["layer", "kind", "iters", "variance", "converged", "reason"]
        text = format_table(headers, rows)
        if self.skipped:
            text += "\nskipped:\n" + "\n".join(
                f"  {path or '(top)'} ({kind}): {reason}" for path, kind, reason in self.skipped
            )
        return text

    def __repr__(self) -> str:
        return f"LSUVReport({list(self)!r}, skipped={list(self.skipped)!r})"


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


def _check_key(key: Any) -> jax.Array | None:
    if key is None:
        return None
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(
            f"`key` must be a PRNG key from jax.random.key(seed) or None; got the int {key!r}: "
            f"use key=jax.random.key({key!r})."
        )
    return check_key(key)


# --- the loop, on device ------------------------------------------------------------------

_RESCALE, _OK, _NONFINITE, _ZERO, _PRECISION, _STAGNANT, _MAXITER = range(-1, 6)


def _precision_limit(dtype: Any) -> float:
    """How close to 1 a rescaled variance can be pinned: a few float32 ulps of the variance
    (computed in float32), or the kernel's own rounding for 16-bit kernels."""
    eps = float(jnp.finfo(jnp.promote_types(dtype, jnp.float32)).eps)
    own = float(jnp.finfo(dtype).eps) if jnp.issubdtype(dtype, jnp.floating) else eps
    return max(16 * eps, 2 * own)


def _decide(v, prev, iters, limit, tol, max_iters):
    err = jnp.abs(v - 1.0)
    tried = iters >= 1
    stagnant = tried & (jnp.abs(v - prev) <= 1e-6 * prev)
    no_closer = (err >= jnp.abs(prev - 1.0)) | (iters >= max_iters) | stagnant
    codes = [
        (~jnp.isfinite(v), _NONFINITE),
        (err < tol, _OK),
        (v == 0.0, _ZERO),
        # within a few ulps of 1 and no longer improving: float32's limit, not a dead layer
        (tried & (err <= limit) & no_closer, _PRECISION),
        (stagnant, _STAGNANT),
        (iters >= max_iters, _MAXITER),
    ]
    code = jnp.int32(_RESCALE)
    for cond, c in reversed(codes):  # the first true condition wins
        code = jnp.where(cond, jnp.int32(c), code)
    return code


def _loop(variances: Callable, n: int, limits: jax.Array, tol: float, max_iters: int):
    """LSUV on per-layer scales: ``variances(scales) -> (n,)`` output variances."""
    f32 = jnp.float32
    init = {
        "idx": jnp.int32(0),
        "scales": jnp.ones((n,), f32),
        "iters": jnp.zeros((n,), jnp.int32),
        "final": jnp.full((n,), jnp.nan, f32),
        "codes": jnp.full((n,), _RESCALE, jnp.int32),
        "prev": f32(jnp.nan),
        "passes": jnp.int32(0),
    }

    def code_of(s, var):
        i = jnp.minimum(s["idx"], n - 1)
        return _decide(var[i], s["prev"], s["iters"][i], limits[i], tol, max_iters)

    def body(s):
        var = variances(s["scales"]).astype(f32)
        s = {**s, "passes": s["passes"] + 1}

        def finish_cond(s):
            return (s["idx"] < n) & (code_of(s, var) != _RESCALE)

        def finish(s):
            i = s["idx"]
            return {
                **s,
                "final": s["final"].at[i].set(var[i]),
                "codes": s["codes"].at[i].set(code_of(s, var)),
                "idx": i + 1,
                "prev": f32(jnp.nan),
            }

        s = jax.lax.while_loop(finish_cond, finish, s)
        i = jnp.minimum(s["idx"], n - 1)
        more = s["idx"] < n
        v = var[i]
        step = jnp.where(more, jax.lax.rsqrt(jnp.where(more, v, 1.0)), 1.0)
        return {
            **s,
            "scales": s["scales"].at[i].multiply(step),
            "iters": s["iters"].at[i].add(jnp.where(more, 1, 0)),
            "prev": jnp.where(more, v, s["prev"]),
        }

    return jax.lax.while_loop(lambda s: s["idx"] < n, body, init)


def _scaled(kernels: dict[str, jax.Array], order: Sequence[str], scales: jax.Array) -> dict:
    out = {}
    for i, p in enumerate(order):
        k = kernels[p]
        wide = k.astype(jnp.promote_types(k.dtype, jnp.float32))
        out[p] = (wide * scales[i]).astype(k.dtype)
    return out


def _weights_key(kernels: dict[str, jax.Array]) -> jax.Array:
    """A key derived from the kernels' values (on device): models built from different
    seeds get different pre-inits, the same model always the same one."""
    acc = jnp.uint32(0)
    for k in kernels.values():
        bits = jax.lax.bitcast_convert_type(k.astype(jnp.float32), jnp.uint32)
        acc = acc * jnp.uint32(1000003) + jnp.sum(bits, dtype=jnp.uint32)
    return jax.random.fold_in(jax.random.key(0x15C7), acc)


def _plan(kernels: dict[str, jax.Array], axes: dict[str, Any]) -> tuple[list, dict]:
    """Groups of kernels with the same (matrix shape, dtype), and each kernel's permutation."""
    groups: dict[tuple, list[str]] = {}
    perms = {}
    for p, k in kernels.items():
        if axes.get(p) is None:
            continue
        perm, shape3 = _capture.matrix_view(k.shape, axes[p])
        perms[p] = perm
        groups.setdefault((shape3, np.dtype(k.dtype).name), []).append(p)
    return sorted(groups.items()), perms


def _draw(groups: list, key: jax.Array) -> list[jax.Array]:
    """One batched orthogonal draw per group (jinit's jitted sampler: one compile per
    distinct shape, cached across calls). Dispatched asynchronously, no host sync."""
    out = []
    for g, ((shape3, dtype), paths) in enumerate(groups):
        b, r, c = shape3
        init = orthogonal(batch_axis=0)
        out.append(init(jax.random.fold_in(key, g), (len(paths) * b, r, c), dtype))
    return out


def _assemble(kernels: dict, groups: list, perms: dict, draws: list) -> dict:
    """The kernels with each grouped one replaced by its slice of the draws (traced)."""
    out = dict(kernels)
    for ((shape3, _), paths), draw in zip(groups, draws, strict=True):
        b = shape3[0]
        for j, p in enumerate(paths):
            perm, shape = perms[p], kernels[p].shape
            m = draw[j * b : (j + 1) * b].reshape(tuple(shape[a] for a in perm))
            out[p] = jnp.transpose(m, tuple(int(a) for a in np.argsort(perm)))
    return out


def _reason(code: int, var: float, tol: float, max_iters: int, dtype: Any) -> str | None:
    if code == _OK:
        return None
    if code == _NONFINITE:
        return f"output variance is {var} (non-finite); check the upstream layers"
    if code == _ZERO:
        return (
            "output variance is 0: the layer's input is zero/constant on the batch "
            "(e.g. a dead ReLU layer upstream), so rescaling cannot help"
        )
    if code == _PRECISION:
        return (
            f"tol={tol} is below what {np.dtype(dtype).name} arithmetic can reach: the "
            f"variance is 1 within {abs(var - 1):.1e} and rescaling gets no closer; use a "
            "larger tol"
        )
    if code == _STAGNANT:
        return (
            "rescaling the kernel does not change the output variance: the layer's "
            "input is constant on the batch (e.g. a dead ReLU layer upstream) and the "
            "variance comes from the bias"
        )
    return f"|variance - 1| >= tol={tol} after max_iters={max_iters} rescalings"


def _report(
    order: list[str], kinds: dict, dtypes: dict, result: dict, tol: float, max_iters: int, skipped
) -> LSUVReport:
    iters, final, codes = jax.device_get((result["iters"], result["final"], result["codes"]))
    records = []
    for i, p in enumerate(order):
        var, code = float(final[i]), int(codes[i])
        reason = _reason(code, var, tol, max_iters, dtypes[p])
        records.append(LSUVLayer(p, kinds[p], int(iters[i]), var, code == _OK, reason))
    return LSUVReport(records, skipped)


def _run(
    forward: Callable,
    kernels: dict[str, jax.Array],
    axes: dict[str, Any],
    order: list[str],
    key: jax.Array | None,
    *,
    preinit: bool,
    tol: float,
    max_iters: int,
    others: Any,
) -> tuple[dict, dict]:
    """Compiles and runs the whole LSUV program: ``forward(kernels, others) -> {path: var}``."""
    limits = jnp.asarray([_precision_limit(kernels[p].dtype) for p in order], jnp.float32)

    groups: list[Any] = []
    perms: dict[str, Any] = {}
    draws: list[Any] = []
    if preinit:
        groups, perms = _plan(kernels, axes)
        if key is None:
            key = jax.jit(_weights_key)(kernels)
        draws = _draw(groups, key)

    def program(kernels, draws, others):
        kernels = _assemble(kernels, groups, perms, draws)

        def variances(scales):
            v = forward(_scaled(kernels, order, scales), others)
            return jnp.stack([v[p] for p in order])

        s = _loop(variances, len(order), limits, tol, max_iters)
        return _scaled(kernels, order, s["scales"]), s

    return jax.jit(program)(kernels, draws, others)


# --- nnx ------------------------------------------------------------------------------------


def _own_stream_key(model: Any) -> jax.Array | None:
    """A key from the model's own ``params`` RNG stream (``rngs.params()``, which falls back
    to the ``default`` stream), if the model holds an ``nnx.Rngs``; the stream advances."""
    from flax import nnx

    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Rngs):
            return node.params()
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.RngStream) and getattr(node, "tag", None) == "params":
            return node()
    return None


def lsuv(
    model: Any,
    *args: Any,
    tol: float = 0.1,
    max_iters: int = 10,
    orthogonal_preinit: bool = True,
    key: jax.Array | None = None,
    layer_types: Any = None,
    **kwargs: Any,
) -> LSUVReport:
    r"""LSUV-initializes the kernels of a ``flax.nnx`` model, in place.

    The model is called as ``model(*args, **kwargs)``; every layer of ``layer_types`` it
    calls (by default ``nnx.Linear``, ``nnx.LinearGeneral``, ``nnx.Einsum``, ``nnx.Conv``,
    ``nnx.ConvTranspose``, ``nnx.Embed``) is processed in call order (a layer called twice
    is judged by its first call). Biases and other parameters are left as they are; every
    other parameterised layer is listed in ``report.skipped`` with the reason. Run it on
    the model as you will train it (e.g. call ``model.eval()`` first to turn off dropout);
    batch-norm statistics and RNG counts of the forward passes are discarded.

    Args:
      model: an ``nnx.Module``.
      *args: the model's positional inputs (the batch; a few hundred examples are plenty).
      tol: target tolerance, ``|Var(output) - 1| < tol``.
      max_iters: most rescalings per layer.
      orthogonal_preinit: first replace each kernel by an orthonormal one
        (:func:`jinit.orthogonal`, by the layer's fan axes), as in the paper.
      key: PRNG key for the orthogonal pre-init. Default: the model's own RNG stream when
        it holds an ``nnx.Rngs`` (``rngs.params()``; the stream advances), else a key
        derived from the model's kernels, so models built from different seeds get
        different pre-inits and the same model always gets the same one.
      layer_types: the layer classes to process (subclasses of the default ones).
      **kwargs: keyword arguments of the call (array values are traced).

    Returns:
      An :class:`LSUVReport`: per layer the path, iterations, final output variance, a
      converged flag, and the reason when not converged (e.g. a dead ReLU layer upstream
      gives variance 0); ``report.skipped``; ``report.converged`` is True when all
      processed layers converged.

    Raises:
      TypeError: if ``model`` is not an ``nnx.Module``, ``tol`` is not a real number,
        ``max_iters`` not an int or ``key`` not a PRNG key.
      ValueError: for ``tol`` outside (0, 1), a negative ``max_iters``, or a model whose
        forward pass calls no layer of the processed types.

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
    key = _check_key(key)
    types = _capture.check_layer_types(layer_types, _capture.nnx_layer_types(), strict=True)
    layers = _capture.nnx_layers(model, types)
    if not layers:
        type_names = " / ".join(f"nnx.{t.__name__}" for t in types)
        raise ValueError(f"lsuv: the model has no {type_names} layer.")
    graphdef, state = nnx.split(model)
    arrays, rebuild = _capture.split_call(args, kwargs)
    probe: list[_capture.Record] = []

    def forward(kernels, others):
        state, arrays = others
        m = nnx.merge(graphdef, state, copy=True)
        mods = _capture.nnx_layers(m, types)
        for p, k in kernels.items():
            getattr(mods[p], names[p]).set_value(k)
        a, kw = rebuild(arrays)
        with _capture.record_nnx(m, types, activations=False) as rec:
            m(*a, **kw)
        if not probe:
            probe.extend(rec)
        return {r.path: _capture.moments(r.y)[1] for r in rec}

    names: dict[str, str] = {}
    jax.eval_shape(lambda o: forward({}, o), (state, arrays))  # call order, no FLOPs
    order = [r.path for r in probe if r.path in layers]
    if not order:
        raise ValueError("lsuv: the forward pass called none of the model's recorded layers.")
    names.update({r.path: r.param for r in probe if r.param is not None})
    axes = {r.path: r.axes for r in probe}
    kinds = {r.path: r.kind for r in probe}
    kernels = {p: getattr(layers[p], names[p]).get_value() for p in order}
    modules = _capture.nnx_param_modules(model)
    skipped = _capture.nnx_skipped(modules, order, types)
    if orthogonal_preinit and key is None:
        key = _own_stream_key(model)
    new, result = _run(
        forward,
        kernels,
        axes,
        order,
        key,
        preinit=orthogonal_preinit,
        tol=tol,
        max_iters=max_iters,
        others=(state, arrays),
    )
    for p, k in new.items():
        getattr(layers[p], names[p]).set_value(k)
    dtypes = {p: kernels[p].dtype for p in order}
    return _report(order, kinds, dtypes, result, tol, max_iters, skipped)


# --- linen ----------------------------------------------------------------------------------


def lsuv_linen(
    module: Any,
    variables: Any,
    *args: Any,
    tol: float = 0.1,
    max_iters: int = 10,
    orthogonal_preinit: bool = True,
    key: jax.Array | None = None,
    layer_types: Any = None,
    **apply_kwargs: Any,
) -> tuple[Any, LSUVReport]:
    r"""LSUV-initializes the kernels of a ``flax.linen`` model.

    Same algorithm as :func:`lsuv`; the model runs as
    ``module.apply(variables, *args, **apply_kwargs)`` and every layer of ``layer_types``
    (by default ``nn.Dense``, ``nn.DenseGeneral``, ``nn.Einsum``, ``nn.Conv``,
    ``nn.ConvTranspose``, ``nn.Embed``) it calls is processed in call order.

    Args:
      module: a ``flax.linen.Module``.
      variables: its variables, ``{"params": ..., ...}`` (not modified).
      *args: the model's positional inputs (the batch).
      tol: target tolerance, ``|Var(output) - 1| < tol``.
      max_iters: most rescalings per layer.
      orthogonal_preinit: first replace each kernel by an orthonormal one.
      key: PRNG key for the orthogonal pre-init. Default: a key derived from the
        variables' kernels (different seeds give different pre-inits; the same variables
        always the same one).
      layer_types: the layer classes to process (subclasses of the default ones).
      **apply_kwargs: passed to ``module.apply`` (e.g. ``train=False``, ``rngs=...``,
        ``mutable=["batch_stats"]``; mutated collections are discarded).

    Returns:
      ``(new_variables, report)``; see :func:`lsuv` for the report.

    Raises:
      TypeError: if ``module`` is not a linen Module, ``variables`` has no ``"params"``,
        ``tol`` is not a real number, ``max_iters`` not an int or ``key`` not a PRNG key.
      ValueError: for ``tol`` outside (0, 1), a negative ``max_iters``, or a model whose
        forward pass calls no layer of the processed types.

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
    key = _check_key(key)
    types = _capture.check_layer_types(layer_types, _capture.linen_layer_types(), strict=True)
    from flax.core import FrozenDict, freeze, unfreeze

    is_frozen = isinstance(variables, FrozenDict)
    variables = unfreeze(variables) if is_frozen else dict(variables)
    arrays, rebuild = _capture.split_call(args, apply_kwargs)
    calls = _capture.LinenCalls()
    probe: list[_capture.Record] = []
    names: dict[str, str] = {}

    def forward(kernels, others):
        variables, arrays = others
        v = _capture.set_linen_params(variables, kernels, names)
        a, kw = rebuild(arrays)
        with _capture.record_linen(types, calls=None if probe else calls) as rec:
            module.apply(v, *a, **kw)
        if not probe:
            probe.extend(rec)
        return {r.path: _capture.moments(r.y)[1] for r in rec}

    jax.eval_shape(lambda o: forward({}, o), (variables, arrays))
    kernels, skipped = {}, []
    for r in probe:
        k = _capture.unbox(
            _capture.get_in(variables, _capture.linen_param_path(r.path, r.param or "kernel"))
        )
        if k is None or not hasattr(k, "shape"):
            reason = f"its {r.param!r} was not found in variables['params']"
            skipped.append(_capture.Skipped(r.path, r.kind, reason))
        else:
            kernels[r.path] = jnp.asarray(k)
    order = [r.path for r in probe if r.path in kernels]
    measured = {r.path for r in probe}
    for p in _capture.linen_param_modules(variables["params"]):
        if p in measured:
            continue
        cls = calls.kinds.get(p)
        kind = cls.__name__ if cls is not None else "?"
        recordable = cls is not None and issubclass(cls, types)
        reason = _capture.skip_reason(kind, recordable=recordable, lifted=p in calls.lifted)
        skipped.append(_capture.Skipped(p, kind, reason))
    if not order:
        found = "; ".join(f"{s.path} ({s.kind}): {s.reason}" for s in skipped) or "none"
        raise ValueError(
            f"lsuv_linen: module.apply called no layer LSUV can process. Skipped: {found}."
        )
    names.update({r.path: r.param for r in probe if r.param is not None})
    axes = {r.path: r.axes for r in probe}
    kinds = {r.path: r.kind for r in probe}
    new, result = _run(
        forward,
        kernels,
        axes,
        order,
        key,
        preinit=orthogonal_preinit,
        tol=tol,
        max_iters=max_iters,
        others=(variables, arrays),
    )
    variables = _capture.set_linen_params(variables, new, names, keep_box=True)
    if is_frozen:
        variables = freeze(variables)
    dtypes = {p: kernels[p].dtype for p in order}
    return variables, _report(order, kinds, dtypes, result, tol, max_iters, skipped)
