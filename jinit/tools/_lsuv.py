r"""Layer-sequential unit-variance (LSUV) initialization (Mishkin & Matas, 2016).

1. Pre-initialize every kernel with a Haar-random orthonormal matrix, viewing it as a
   stack of ``(fan_in, fan_out)`` matrices by the layer's own axes: a Dense kernel
   ``(in, out)`` as is, a conv kernel ``(*k, in, out)`` as a ``(prod(k) * in, out)``
   matrix, a ``DenseGeneral``/``LinearGeneral`` kernel by its contracted and feature axes
   (its batch axes give independent matrices), an ``Einsum`` kernel by its ``einsum_str``
   (kernel axes absent from the output are fan-in, those only in the output are fan-out,
   those also in the input are batch axes). An ``Embed`` table is a lookup, not a map: it
   keeps its values and is only rescaled.
2. For each layer, in the order the forward pass calls them, rescale the kernel (the
   table, for Embed) until the output variance on the batch is within ``tol`` of one:

.. math::
    W_l \leftarrow W_l / \sqrt{\mathrm{Var}(y_l)} \quad \text{until} \quad
    |\mathrm{Var}(y_l) - 1| < \mathrm{tol} \ \text{or} \ \texttt{max\_iters} \text{ rescalings},

where :math:`\mathrm{Var}(y_l)` is the variance over all batch elements and units of the
layer's output (biases included; for Embed, over the looked-up vectors of the batch's ids).

Speed: one jitted program and one forward pass. When layer ``l`` is processed its input
is fixed (the layers before it are final), and every processed layer is linear in its
kernel, ``y = f(W) + b`` (``b``: the bias as the layer adds it; none for Embed). With
the kernel ``s W`` the output is ``s u + b``, ``u = y - b``, of variance
``s^2 Var(u) + 2 s Cov(u, b) + Var(b)``: so the forward pass, at each processed layer's
first call, computes these statistics of its output, runs the rescalings on them (a few
scalar float32 operations, called back on the host: XLA compiles a loop per layer far
more slowly), and continues with the rescaled output ``s u + b``, which is what the layer
outputs with the kernel ``s W`` (within float rounding). The later calls of a layer use
its final scale. Compile time and run time are those of about one forward pass, not one
per layer; the kernels are multiplied by their scales on the host at the end (in the
program, the products would cost as much compile time as the forward pass).

The orthogonal draws are made on the host with NumPy (no XLA compilation), while the
program compiles: per (matrix shape, dtype) group one stack of standard Gaussian
matrices, from a NumPy generator seeded by the key's data and the group's index, and
their Q factors with a positive-diagonal R (Haar-distributed, as for
:func:`jinit.orthogonal`, though not the same values), computed by Cholesky QR.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl

from jinit._core import check_key, check_real
from jinit._table import format_table
from jinit._validate import check_bool
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
    LSUV did not process (normalization layers, layers called only inside a transform...);
    the printed table shows one line per kind and reason, with the count and the paths
    abbreviated.
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
        return text + _capture.skipped_text(self.skipped)

    def __repr__(self) -> str:
        return f"LSUVReport({list(self)!r}, skipped={list(self.skipped)!r})"


def _check_args(tol: Any, max_iters: Any, orthogonal_preinit: Any) -> tuple[float, int]:
    """``tol``: a real number in (0, 1); ``max_iters``: an int >= 0; ``orthogonal_preinit``: a
    bool. TypeError for other kinds."""
    check_bool("orthogonal_preinit", orthogonal_preinit)
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


# --- the rescalings -------------------------------------------------------------------------

_RESULTS = ("scales", "iters", "final", "codes")  # per layer, from the program
_RESCALE, _OK, _NONFINITE, _ZERO, _PRECISION, _STAGNANT, _MAXITER = range(-1, 6)


def _precision_limit(dtype: Any) -> float:
    """How close to 1 a rescaled variance can be pinned: a few float32 ulps of the variance
    (computed in float32), or the kernel's own rounding for 16-bit kernels."""
    eps = float(jnp.finfo(jnp.promote_types(dtype, jnp.float32)).eps)
    own = float(jnp.finfo(dtype).eps) if jnp.issubdtype(dtype, jnp.floating) else eps
    return max(16 * eps, 2 * own)


def _decide(v, prev, iters, limit, tol, max_iters) -> int:
    """What to do with a layer whose output variance is ``v`` after ``iters`` rescalings
    (``prev``: the variance before the last one, NaN before the first); NumPy scalars."""
    err = abs(v - 1.0)
    tried = iters >= 1
    stagnant = bool(tried and abs(v - prev) <= 1e-6 * prev)
    no_closer = bool(err >= abs(prev - 1.0) or iters >= max_iters or stagnant)
    if not np.isfinite(v):
        return _NONFINITE
    if err < tol:
        return _OK
    if v == 0.0:
        return _ZERO
    if tried and err <= limit and no_closer:
        # within a few ulps of 1 and no longer improving: float32's limit, not a dead layer
        return _PRECISION
    if stagnant:
        return _STAGNANT
    if iters >= max_iters:
        return _MAXITER
    return _RESCALE


def _rescalings_host(var_u, cov, var_b, *, limit: float, tol: float, max_iters: int):
    """The rescalings ``s <- s / sqrt(v(s))``, ``v(s) = s^2 Var(u) + 2 s Cov(u, b) +
    Var(b)``, on one layer's statistics (in its float32-or-wider dtype): a few scalar
    operations, on the host, called back from the program (a ``lax.while_loop`` per layer
    made the program's compile time about 1.6x longer on ResNet18)."""
    wide = np.asarray(var_u).dtype.type
    var_u, cov, var_b = wide(var_u), wide(cov), wide(var_b)

    def var(s):
        return max(wide(0), wide(s * s * var_u + wide(2) * s * cov + var_b))  # a variance

    s, it, prev = wide(1), 0, wide(np.nan)
    v = var(s)
    code = _decide(v, prev, it, limit, tol, max_iters)
    while code == _RESCALE:
        with np.errstate(all="ignore"):
            s = s * (wide(1) / np.sqrt(v))
        prev, v, it = v, var(s), it + 1
        code = _decide(v, prev, it, limit, tol, max_iters)
    return np.asarray(s, wide), np.int32(it), np.asarray(v, wide), np.int32(code)


def _solve(y: jax.Array, b: jax.Array | None, limit: float, tol: float, max_iters: int):
    """LSUV on one layer's output ``y = f(W) + b``, linear in the kernel ``W``.

    The layer's input is fixed (the layers before it are final), so its output with the
    kernel ``s * W`` is ``s * u + b`` with ``u = y - b``, of variance
    ``s^2 Var(u) + 2 s Cov(u, b) + Var(b)`` (over all elements of ``y``): the rescalings
    ``s <- s / sqrt(Var(s * u + b))`` need three statistics of the output, not the layer.
    Returns ``(s, iterations, variance, code, output)``, ``output`` being the layer's
    output with the kernel ``s * W`` (in ``y``'s dtype), which the rest of the forward
    pass sees.
    """
    wide = jnp.promote_types(y.dtype, jnp.float32)
    u = y.astype(wide)
    if b is None:
        var_u, cov, var_b = jnp.var(u), jnp.zeros((), wide), jnp.zeros((), wide)
    else:
        bw = jnp.broadcast_to(b.astype(wide), y.shape)
        u = u - bw
        du, db = u - jnp.mean(u), bw - jnp.mean(bw)
        var_u, cov, var_b = jnp.mean(du * du), jnp.mean(du * db), jnp.mean(db * db)
    shapes = [jax.ShapeDtypeStruct((), t) for t in (wide, jnp.int32, wide, jnp.int32)]
    host = functools.partial(_rescalings_host, limit=limit, tol=tol, max_iters=max_iters)
    s, it, v, code = jax.pure_callback(host, shapes, var_u, cov, var_b)
    return s, it, v, code, _with_scale(y, b, s)


def _with_scale(y: jax.Array, b: jax.Array | None, s: jax.Array) -> jax.Array:
    """The layer's output ``y = f(W) + b`` as it is with the kernel ``s * W``:
    ``s * (y - b) + b``, computed in float32 or wider, in ``y``'s dtype."""
    wide = jnp.promote_types(y.dtype, jnp.float32)
    u, s = y.astype(wide), s.astype(wide)
    if b is None:
        return (s * u).astype(y.dtype)
    bw = b.astype(wide)
    return (s * (u - bw) + bw).astype(y.dtype)


class _Solver:
    """The ``rescale`` hook of the recording (``_capture.record_*``): LSUV of each layer in
    the order the forward pass calls them, during that one forward pass.

    ``results[path] = (scale, iterations, variance, code)``. ``set_kernel(path, module,
    scale)``, if given, rescales the kernel of the (traced) module after its first call, so
    that its later calls need nothing more (nnx); otherwise the later calls' outputs are
    rescaled the same way as the first one's (linen).
    """

    def __init__(self, limits: dict[str, float], tol: float, max_iters: int, set_kernel=None):
        self.limits, self.tol, self.max_iters = limits, tol, max_iters
        self.set_kernel = set_kernel
        self.results: dict[str, tuple] = {}

    def __call__(self, path, module, x, y, kwargs, first):
        if path not in self.limits or (not first and path not in self.results):
            return y
        if not first and self.set_kernel is not None:  # nnx: the kernel is already scaled
            return y
        b = _capture.bias_term(path, module, x, y, kwargs)
        if not first:
            return _with_scale(y, b, self.results[path][0])
        s, it, v, code, out = _solve(y, b, self.limits[path], self.tol, self.max_iters)
        self.results[path] = (s, it, v, code)
        if self.set_kernel is not None:
            self.set_kernel(path, module, s)
        return out


def _scaled_kernel(k: jax.Array, s: jax.Array) -> jax.Array:
    return (k.astype(jnp.promote_types(k.dtype, jnp.float32)) * s).astype(k.dtype)


# --- the orthogonal pre-init, on the host -----------------------------------------------------


def _weights_seed(kernels: dict[str, jax.Array]) -> list[int]:
    """A seed derived from the kernels' values: models built from different seeds get
    different pre-inits, the same model always the same one."""
    acc = 0
    for k in kernels.values():
        bits = np.asarray(k, np.float32).view(np.uint32)
        acc = (acc * 1000003 + int(bits.sum(dtype=np.uint64))) % 2**64
    return [0x15C7, acc]


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


def _host_dtype(dtype: Any) -> np.dtype:
    return np.dtype(np.float64 if np.dtype(dtype).itemsize > 4 else np.float32)


def _haar(g: np.ndarray) -> np.ndarray:
    """The Q factor, with a positive diagonal R, of each tall Gaussian matrix of the stack
    ``g`` (..., n, m), n >= m: Haar-distributed on the n x m Stiefel manifold.

    Computed as ``Q = G R^-1`` with ``R^T R = G^T G`` (Cholesky QR: two matrix products
    and an m x m Cholesky factorization, faster than Householder QR), whose loss of
    orthogonality grows as ``cond(G)^2``: in float32 for a matrix at least 4 times taller
    than wide (``cond(G) < 3`` with high probability), else twice in float64; LAPACK's
    Householder QR where the Cholesky factorization fails.
    """

    def once(q):
        gram = np.swapaxes(q, -1, -2) @ q
        lower = np.linalg.cholesky(gram)
        return q @ np.swapaxes(np.linalg.inv(lower), -1, -2)

    n, m = g.shape[-2:]
    try:
        q = once(g) if n >= 4 * m else once(once(g.astype(np.float64)))
        if np.all(np.isfinite(q)):
            return q
    except np.linalg.LinAlgError:
        pass
    q, r = np.linalg.qr(g.astype(np.float64))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def _draw(groups: list, seed: list[int]) -> list[np.ndarray]:
    """Haar-orthogonal draws, on the host (NumPy: no XLA compilation), one stack per group:
    ``(len(paths) * batch, rows, cols)``, from a Gaussian stream seeded by ``(seed, group)``.
    A wide matrix (rows < cols) has orthonormal rows: the transpose of a tall draw."""
    out = []
    for g, ((shape3, dtype), paths) in enumerate(groups):
        b, r, c = shape3
        host = _host_dtype(dtype)
        rng = np.random.default_rng([*seed, g])
        q = _haar(rng.standard_normal((len(paths) * b, max(r, c), min(r, c)), host))
        if r < c:
            q = np.swapaxes(q, -1, -2)
        out.append(np.ascontiguousarray(q, host))
    return out


def _assemble(kernels: dict, groups: list, perms: dict, draws: list) -> dict:
    """The kernels with each grouped one replaced by its slice of the draws, on the host
    (NumPy arrays in the kernel's dtype)."""
    out = {}
    for ((shape3, _), paths), draw in zip(groups, draws, strict=True):
        b = shape3[0]
        for j, p in enumerate(paths):
            perm, shape = perms[p], kernels[p].shape
            m = draw[j * b : (j + 1) * b].reshape(tuple(shape[a] for a in perm))
            m = np.transpose(m, tuple(int(a) for a in np.argsort(perm)))
            out[p] = np.ascontiguousarray(m, np.dtype(kernels[p].dtype))
    return out


def _preinit(kernels: dict, groups: list, perms: dict, seed: list[int]) -> dict:
    """The draws, on one BLAS thread: they run next to the XLA compilation, and a
    multi-threaded BLAS on a busy CPU mostly spins (LSUV of a ResNet18 on a loaded 2-core
    machine: 5x the baseline instead of 2x)."""
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        return _assemble(kernels, groups, perms, _draw(groups, seed))


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


def _key_seed(key: jax.Array) -> list[int]:
    return [int(w) for w in np.asarray(jax.random.key_data(key)).ravel()]


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
    nnx_kernels: bool,
) -> tuple[dict, dict]:
    """Compiles and runs the whole LSUV program, one forward pass:
    ``forward(kernels, others, rescale)`` runs the model with those kernels, recording
    with the ``rescale`` hook. The orthogonal draws are made on the host while the program
    compiles."""
    limits = {p: _precision_limit(kernels[p].dtype) for p in order}
    groups, perms = _plan(kernels, axes) if preinit else ([], {})

    def program(kernels, others):
        def set_kernel(path, module, s):
            param = getattr(module, _capture.param_name(module))
            param.set_value(_scaled_kernel(param.get_value(), s))

        solver = _Solver(limits, tol, max_iters, set_kernel if nnx_kernels else None)
        forward(kernels, others, solver)
        missing = [p for p in order if p not in solver.results]
        if missing:
            raise RuntimeError(f"lsuv: layers {missing} were not called by the forward pass.")
        res = [solver.results[p] for p in order]
        return {k: jnp.stack([r[i] for r in res]) for i, k in enumerate(_RESULTS)}

    jitted = jax.jit(program)
    start = dict(kernels)
    if not groups:
        result = jitted(kernels, others)
    else:
        seed = _key_seed(key) if key is not None else _weights_seed(kernels)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(_preinit, kernels, groups, perms, seed)
            specs = {p: jax.ShapeDtypeStruct(k.shape, k.dtype) for p, k in kernels.items()}
            compiled = jitted.lower(specs, others).compile()
            start.update(future.result())
        result = compiled(start, others)
    # The final kernels, on the host: in the program, 21 kernel products cost as much
    # compile time as a ResNet18 forward pass.
    scales = np.asarray(result["scales"])
    new = {}
    for i, p in enumerate(order):
        k = np.asarray(start[p])
        wide = np.promote_types(k.dtype, np.float32)
        value = (k.astype(wide) * scales[i].astype(wide)).astype(k.dtype)
        sharding = getattr(kernels[p], "sharding", None)
        new[p] = jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value)
    return new, result


# --- nnx ------------------------------------------------------------------------------------


def _own_stream_key(model: Any) -> jax.Array | None:
    """A key from the model's own ``params`` RNG stream (``rngs.params()``, which falls back
    to the ``default`` stream), if the model holds an ``nnx.Rngs`` with one of these
    streams (not, e.g., one with only a ``dropout`` stream); the stream advances."""
    from flax import nnx

    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Rngs) and ("params" in node or "default" in node):
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
    is judged by its first call; its later calls use the final kernel). Biases and other
    parameters are left as they are; every other parameterised layer is listed in
    ``report.skipped`` with the reason. Run it on
    the model as you will train it (e.g. call ``model.eval()`` first to turn off dropout);
    batch-norm statistics and RNG counts of the forward passes are discarded.

    Args:
      model: an ``nnx.Module``.
      *args: the model's positional inputs (the batch; a few hundred examples are plenty).
      tol: target tolerance, ``|Var(output) - 1| < tol``.
      max_iters: most rescalings per layer.
      orthogonal_preinit: first replace each kernel by a Haar-random orthonormal one (by
        the layer's fan axes; drawn with NumPy from ``key``, see the module notes), as in
        the paper.
      key: PRNG key for the orthogonal pre-init. Default: the model's own RNG stream when
        it holds an ``nnx.Rngs`` with a ``params`` or ``default`` stream
        (``rngs.params()``; the stream advances), else a key
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
        ``max_iters`` not an int, ``orthogonal_preinit`` not a bool or ``key`` not a PRNG
        key.
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
    tol, max_iters = _check_args(tol, max_iters, orthogonal_preinit)
    key = _check_key(key)
    types = _capture.check_layer_types(layer_types, _capture.nnx_layer_types(), strict=True)
    layers = _capture.nnx_layers(model, types)
    if not layers:
        type_names = " / ".join(f"nnx.{t.__name__}" for t in types)
        raise ValueError(f"lsuv: the model has no {type_names} layer.")
    graphdef, state = nnx.split(model)
    arrays, rebuild = _capture.split_call(args, kwargs)
    probe: list[_capture.Record] = []

    def forward(kernels, others, rescale=None):
        state, arrays = others
        m = nnx.merge(graphdef, state, copy=True)
        mods = _capture.nnx_layers(m, types)
        for p, k in kernels.items():
            getattr(mods[p], names[p]).set_value(k)
        a, kw = rebuild(arrays)
        with _capture.record_nnx(m, types, activations=False, rescale=rescale) as rec:
            m(*a, **kw)
        if not probe:
            probe.extend(rec)

    names: dict[str, str] = {}
    jax.eval_shape(lambda o: forward({}, o), (state, arrays))  # call order, no FLOPs
    names.update({r.path: r.param for r in probe if r.param is not None})
    axes = {r.path: r.axes for r in probe}
    kinds = {r.path: r.kind for r in probe}
    # a kernel Variable held by several layers (tied weights) is processed once, at the
    # first call of the first of them; the others' calls use its final value
    owners: dict[int, str] = {}
    shared: list[_capture.Skipped] = []
    order = []
    for r in probe:
        if r.path not in layers:
            continue
        first = owners.setdefault(id(getattr(layers[r.path], names[r.path])), r.path)
        if first == r.path:
            order.append(r.path)
        else:
            reason = f"shares its {names[r.path]} with {first!r}, processed at that layer's call"
            shared.append(_capture.Skipped(r.path, r.kind, reason))
    if not order:
        raise ValueError("lsuv: the forward pass called none of the model's recorded layers.")
    kernels = {p: getattr(layers[p], names[p]).get_value() for p in order}
    modules = _capture.nnx_param_modules(model)
    done = {*order, *(s.path for s in shared)}
    skipped = shared + _capture.nnx_skipped(modules, done, types)
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
        nnx_kernels=True,
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
    ``nn.ConvTranspose``, ``nn.Embed``) it calls is processed in call order. (A processed
    layer called again inside a lifted transform, ``nn.scan``, ``nn.remat``..., runs there
    with its kernel from before LSUV during the pass: the layers after that call are
    judged on its output.)

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
        ``tol`` is not a real number, ``max_iters`` not an int, ``orthogonal_preinit`` not a
        bool or ``key`` not a PRNG key.
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
    tol, max_iters = _check_args(tol, max_iters, orthogonal_preinit)
    key = _check_key(key)
    types = _capture.check_layer_types(layer_types, _capture.linen_layer_types(), strict=True)
    from flax.core import FrozenDict, freeze, unfreeze

    is_frozen = isinstance(variables, FrozenDict)
    variables = unfreeze(variables) if is_frozen else dict(variables)
    arrays, rebuild = _capture.split_call(args, apply_kwargs)
    calls = _capture.LinenCalls()
    probe: list[_capture.Record] = []
    names: dict[str, str] = {}

    def forward(kernels, others, rescale=None):
        variables, arrays = others
        v = _capture.set_linen_params(variables, kernels, names)
        a, kw = rebuild(arrays)
        with _capture.record_linen(types, calls=None if probe else calls, rescale=rescale) as rec:
            module.apply(v, *a, **kw)
        if not probe:
            probe.extend(rec)

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
    skipped += _capture.linen_skipped(variables["params"], measured, calls, types)
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
        nnx_kernels=False,
    )
    variables = _capture.set_linen_params(variables, new, names, keep_box=True)
    if is_frozen:
        variables = freeze(variables)
    dtypes = {p: kernels[p].dtype for p in order}
    return variables, _report(order, kinds, dtypes, result, tol, max_iters, skipped)
