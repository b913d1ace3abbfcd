"""Recording the inputs and outputs of a model's layers during a forward pass.

Shared by :func:`jinit.lsuv` and :func:`jinit.diagnose`, so both see the same layers in
the same (call) order, with the same notion of each layer's fan-in/fan-out axes.

Supported layer types (``layer_types=None``), each with its own kernel view:

============================  ==============  ==================================================
nnx / linen                   parameter       kernel axes (batch | fan-in | fan-out)
============================  ==============  ==================================================
Linear / Dense                ``kernel``      - | in | out
LinearGeneral / DenseGeneral  ``kernel``      batch axes | contracted input axes | features
Einsum                        ``kernel``      from ``einsum_str``: kernel axes also in the
                                              input and the output are batch axes, those not
                                              in the output are fan-in, the rest fan-out
Conv                          ``kernel``      - | spatial + in | out
ConvTranspose                 ``kernel``      same (``transpose_kernel=True``: in/out swapped)
Embed                         ``embedding``   no matrix view: a lookup table
============================  ==============  ==================================================

Scoping: nothing is patched process-wide.

- nnx: for the duration of the recording, each layer instance of the (traced copy of the)
  model gets its own recording subclass (``instance.__class__``), restored afterwards;
  other instances of the same class, in any thread, are untouched. Activation functions
  held in an ``nnx.Sequential`` are wrapped in that instance's list, also restored.
- linen: :func:`flax.linen.intercept_methods` (a thread-local interceptor stack). Calls
  made inside a lifted transform (``nn.scan``, ``nn.remat``...) run in another trace and
  are not recorded; the layer is reported as skipped.

A layer called several times (weight sharing) is recorded at its first call. A
``rescale`` hook (LSUV) may replace the output of every call of a recorded layer (and,
in linen, of a recorded ``Embed``'s ``attend`` after its first call; nnx rescales the
table itself);
:func:`bias_term` gives the part of a layer's output its bias adds (each recorded type is
linear in its kernel plus that term).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

# flax is imported inside the functions: `import jinit` stays light.

Axes = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # (batch, fan-in, fan-out)


class Skipped(NamedTuple):
    """A parameterised layer that was not measured, and why."""

    path: str
    kind: str
    reason: str


@dataclasses.dataclass
class Record:
    """One recorded call: the layer's first call, or an activation function's output."""

    path: str
    kind: str
    x: Any
    y: Any
    param: str | None = None  # "kernel" / "embedding"; None for activations
    axes: Axes | None = None  # None: no matrix view (Embed) or an activation
    activation: bool = False
    module: Any = None  # the (traced) nnx module; None in linen


def nnx_layer_types() -> tuple[type, ...]:
    from flax import nnx

    return (nnx.Linear, nnx.LinearGeneral, nnx.Einsum, nnx.Conv, nnx.ConvTranspose, nnx.Embed)


def linen_layer_types() -> tuple[type, ...]:
    from flax import linen as nn

    return (nn.Dense, nn.DenseGeneral, nn.Einsum, nn.Conv, nn.ConvTranspose, nn.Embed)


def check_layer_types(layer_types: Any, supported: tuple[type, ...], *, strict: bool) -> tuple:
    """``layer_types``: None (all supported) or a sequence of classes.

    With ``strict`` (LSUV) every class must be (a subclass of) a supported type, since
    LSUV must know which parameter to rescale; without, any class is recorded.
    """
    if layer_types is None:
        return supported
    if isinstance(layer_types, type):
        layer_types = (layer_types,)
    if not isinstance(layer_types, Sequence) or not all(isinstance(t, type) for t in layer_types):
        raise TypeError(
            "`layer_types` must be None or a sequence of layer classes (e.g. "
            f"(nnx.Linear, nnx.Conv)); got {layer_types!r}."
        )
    if not layer_types:
        raise ValueError("`layer_types` must name at least one layer class; got ().")
    if strict:
        bad = [t.__name__ for t in layer_types if not issubclass(t, supported)]
        if bad:
            names = ", ".join(t.__name__ for t in supported)
            raise ValueError(
                f"`layer_types` must be (subclasses of) {names}: LSUV must know which "
                f"parameter to rescale; got {bad}."
            )
    return tuple(layer_types)


def param_name(module: Any) -> str | None:
    """The parameter LSUV rescales / diagnose reports the gradient of."""
    from flax import linen as nn
    from flax import nnx

    if isinstance(module, (nnx.Embed, nn.Embed)):
        return "embedding"
    return "kernel"


def _einsum_axes(spec: str, ndim: int) -> Axes | None:
    spec = spec.replace(" ", "")
    if "->" not in spec or spec.count(",") != 1 or "." in spec:
        return None
    ops, out = spec.split("->")
    lhs, rhs = ops.split(",")
    if len(rhs) != ndim:
        return None
    batch = tuple(i for i, c in enumerate(rhs) if c in lhs and c in out)
    fan_in = tuple(i for i, c in enumerate(rhs) if c not in out)
    fan_out = tuple(i for i, c in enumerate(rhs) if c in out and c not in lhs)
    return batch, fan_in, fan_out


def kernel_axes(module: Any, ndim: int, call_kwargs: Mapping[str, Any]) -> Axes | None:
    """(batch, fan-in, fan-out) axes of ``module``'s kernel of rank ``ndim`` (None: Embed)."""
    from flax import linen as nn
    from flax import nnx

    last = (ndim - 1,)
    default: Axes = ((), tuple(range(ndim - 1)), last)
    if isinstance(module, (nnx.Embed, nn.Embed)) or ndim < 2:
        return None
    if isinstance(module, (nnx.ConvTranspose, nn.ConvTranspose)):
        if getattr(module, "transpose_kernel", False):
            return (), (*range(ndim - 2), ndim - 1), (ndim - 2,)
        return default
    if isinstance(module, (nnx.LinearGeneral, nn.DenseGeneral)):
        if isinstance(module, nnx.LinearGeneral):
            nb, ni = len(module.batch_axis), len(module.in_features)
        else:
            dims, axis = module.batch_dims, module.axis
            nb = len(dims) if isinstance(dims, Sequence) else 1
            ni = len(axis) if isinstance(axis, Sequence) else 1
        if nb + ni >= ndim:
            return default
        return tuple(range(nb)), tuple(range(nb, nb + ni)), tuple(range(nb + ni, ndim))
    if isinstance(module, (nnx.Einsum, nn.Einsum)):
        spec = call_kwargs.get("einsum_str") or module.einsum_str
        axes = _einsum_axes(spec, ndim) if isinstance(spec, str) else None
        return axes if axes is not None and axes[1] and axes[2] else default
    return default


def _axes_tuple(axes: Any, ndim: int) -> tuple[int, ...]:
    axes = tuple(axes) if isinstance(axes, Sequence) else (axes,)
    return tuple(int(a) % ndim for a in axes)


def _bias_shape(module: Any, x: Any, y: Any, bias: Any, kwargs: Mapping[str, Any]) -> tuple:
    """The shape ``module`` reshapes its bias to before adding it to its output ``y``."""
    from flax import linen as nn
    from flax import nnx

    if isinstance(module, (nnx.Einsum, nn.Einsum)):
        import opt_einsum

        if isinstance(module, nnx.Einsum):
            kernel = module.kernel[...]
        else:
            kernel = unbox(module.variables["params"]["kernel"])
        spec = kwargs.get("einsum_str") or module.einsum_str
        operands, result, _ = opt_einsum.parser.parse_einsum_input((spec, x, kernel))
        rhs = operands.split(",")[1]
        return tuple(kernel.shape[rhs.index(c)] if c in rhs else 1 for c in result)
    if isinstance(module, (nnx.LinearGeneral, nn.DenseGeneral)):
        batch: Any
        features: Any
        if isinstance(module, nnx.LinearGeneral):
            batch, features = tuple(module.batch_axis), module.out_features
        else:
            batch, features = module.batch_dims, module.features
        axis = _axes_tuple(module.axis, x.ndim)
        batch = _axes_tuple(batch, x.ndim)
        features = tuple(features) if isinstance(features, Sequence) else (features,)
        kept = tuple(x.shape[a] if a in batch else 1 for a in range(x.ndim) if a not in axis)
        return (*kept, *features)
    return (1,) * (y.ndim - bias.ndim) + tuple(bias.shape)


def bias_term(path: str, module: Any, x: Any, y: Any, kwargs: Mapping[str, Any]) -> Any:
    """What ``module``'s bias adds to its output ``y`` (broadcastable to ``y``), or None.

    Every recorded layer type is linear in its kernel plus this term, ``y = f(W) + b``
    (Embed: a lookup, no bias).
    """
    from flax import linen as nn
    from flax import nnx

    if isinstance(module, (nnx.Embed, nn.Embed)):
        return None
    if isinstance(module, nnx.Module):
        bias = getattr(module, "bias", None)
        bias = None if bias is None else bias[...]
    else:
        bias = unbox(module.variables.get("params", {}).get("bias"))
    if bias is None:
        return None
    bias = jnp.asarray(bias)
    shape = _bias_shape(module, x, y, bias, kwargs)
    if math.prod(shape) != bias.size or jnp.broadcast_shapes(shape, y.shape) != y.shape:
        raise NotImplementedError(
            f"{type(module).__name__} layer {path!r}: cannot tell how its bias of shape "
            f"{tuple(bias.shape)} is added to its output of shape {tuple(y.shape)}."
        )
    return bias.reshape(shape).astype(y.dtype)


def path_str(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def _first_arg(args: tuple, kwargs: Mapping[str, Any]) -> Any:
    return args[0] if args else next(iter(kwargs.values()), None)


def _is_array(y: Any) -> bool:
    return hasattr(y, "shape") and hasattr(y, "dtype")


def _perturbed(y: Any, perturb: Mapping[str, Any] | None, path: str) -> Any:
    if perturb is not None and path in perturb and _is_array(y):
        return y + perturb[path].astype(y.dtype)
    return y


# ---------------------------------------------------------------------------------------
# nnx: per-instance recording subclasses


# rescale(path, module, x, y, kwargs, first) -> the output the forward pass continues with
Rescale = Callable[[str, Any, Any, Any, Mapping[str, Any], bool], Any]


def _current_trace() -> Any:
    from flax.core import tracers

    return tracers.current_trace()


class _Frame:
    def __init__(self, perturb: Mapping[str, Any] | None, rescale: Rescale | None = None):
        self.base = _current_trace()  # calls under another trace (jax.vmap...): not recorded
        self.records: list[Record] = []
        self.perturb = perturb
        self.rescale = rescale
        self.calls: dict[str, int] = {}


class _Entry:
    __slots__ = ("busy", "frame", "kind", "module", "path")

    def __init__(self, module: Any, path: str, kind: str, frame: _Frame):
        self.module, self.path, self.kind, self.frame, self.busy = module, path, kind, frame, False


_active: dict[int, _Entry] = {}  # id(instance) -> entry, for the instances being recorded
_subclass_lock = threading.Lock()
_subclasses: dict[type, type] = {}


def _recording_call(self, *args, **kwargs):
    original = type(self)._jinit_original
    entry = _active.get(id(self))
    if (
        entry is None
        or entry.module is not self
        or entry.busy
        or _current_trace() != entry.frame.base
    ):
        # another copy (e.g. made by an nnx transform inside the forward pass), or a call
        # inside a jax transform (jax.vmap...), whose values cannot leave it: no record
        return original.__call__(self, *args, **kwargs)
    entry.busy = True
    try:
        out = original.__call__(self, *args, **kwargs)
    finally:
        entry.busy = False
    frame = entry.frame
    n = frame.calls.get(entry.path, 0)
    frame.calls[entry.path] = n + 1
    x = _first_arg(args, kwargs)
    if frame.rescale is not None:
        out = frame.rescale(entry.path, self, x, out, kwargs, n == 0)
    if n == 0:
        out = _perturbed(out, frame.perturb, entry.path)
        name = param_name(self)
        param = getattr(self, name, None)
        ndim = len(param.shape) if param is not None and hasattr(param, "shape") else 0
        axes = kernel_axes(self, ndim, kwargs)
        frame.records.append(Record(entry.path, entry.kind, x, out, name, axes, module=self))
    return out


def _recording_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``__call__`` records (created once per class)."""
    with _subclass_lock:
        sub = _subclasses.get(cls)
        if sub is None:
            namespace = {
                "__call__": _recording_call,
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "_jinit_original": cls,
            }
            sub = type(cls)(cls.__name__, (cls,), namespace)
            _subclasses[cls] = sub
        return sub


class _Activation:
    """Wraps a function held in an ``nnx.Sequential``: records its output once."""

    def __init__(self, fn: Callable, path: str, frame: _Frame):
        self.fn, self.path, self.frame = fn, path, frame
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        n = self.frame.calls.get(self.path, 0)
        self.frame.calls[self.path] = n + 1
        if n == 0 and _is_array(out):
            out = _perturbed(out, self.frame.perturb, self.path)
            x = _first_arg(args, kwargs)
            self.frame.records.append(
                Record(self.path, self.__name__, x, out, activation=True)  # type: ignore[arg-type]
            )
        return out


@contextlib.contextmanager
def record_nnx(
    model: Any,
    types: tuple[type, ...] | None = None,
    *,
    perturb: Mapping[str, Any] | None = None,
    activations: bool = True,
    rescale: Rescale | None = None,
) -> Iterator[list[Record]]:
    """Within the block, the first call of each of ``model``'s layers is recorded.

    Yields the list of :class:`Record` (call order), filled during the block. Use it inside
    a traced function on a copy of the model (``nnx.merge``). With ``perturb``
    (``{path: zeros like the output}``), a recorded output is returned as ``y + perturb``,
    so that the gradient with respect to ``perturb[path]`` is d(loss)/d(output). With
    ``rescale``, every call of a recorded layer (``first``: its first call) continues with
    ``rescale(path, module, x, y, kwargs, first)`` in place of its output ``y``.
    """
    from flax import nnx

    types = nnx_layer_types() if types is None else types
    frame = _Frame(perturb, rescale)
    swapped: list[tuple[Any, type]] = []
    wrapped: list[tuple[Any, int, Any]] = []
    try:
        for p, m in nnx.iter_modules(model):
            path = path_str(p)
            if isinstance(m, types) and id(m) not in _active:
                cls = type(m)
                _active[id(m)] = _Entry(m, path, cls.__name__, frame)
                object.__setattr__(m, "__class__", _recording_class(cls))
                swapped.append((m, cls))
            if activations and isinstance(m, nnx.Sequential):
                for i, f in enumerate(list(m.layers)):
                    if callable(f) and not isinstance(f, nnx.Module):
                        sub = f"{path}/layers/{i}" if path else f"layers/{i}"
                        m.layers[i] = _Activation(f, sub, frame)
                        wrapped.append((m, i, f))
        yield frame.records
    finally:
        for m, i, f in reversed(wrapped):
            m.layers[i] = f
        for m, cls in reversed(swapped):
            object.__setattr__(m, "__class__", cls)
            _active.pop(id(m), None)


def nnx_param_modules(model: Any) -> dict[str, Any]:
    """Modules of an nnx model that hold an ``nnx.Param`` directly, by path (graph order)."""
    from flax import nnx

    out = {}
    for p, m in nnx.iter_modules(model):
        if any(isinstance(v, nnx.Param) for v in vars(m).values()):
            out[path_str(p)] = m
    return out


def nnx_skipped(modules: dict[str, Any], measured: Any, types: tuple[type, ...]) -> list:
    """A :class:`Skipped` entry for each module of ``modules`` (``nnx_param_modules``) whose
    path is not in ``measured``, with the reason."""
    return [
        Skipped(p, type(m).__name__, skip_reason(type(m).__name__, recordable=isinstance(m, types)))
        for p, m in modules.items()
        if p not in measured
    ]


def linen_skipped(
    params: Any, measured: Any, calls: LinenCalls, types: tuple[type, ...]
) -> list[Skipped]:
    """A :class:`Skipped` entry for each parameterised module of ``params``
    (``linen_param_modules``) whose path is not in ``measured``, with the reason; ``calls``
    (from :func:`record_linen`) tells the class of each module the forward pass called."""
    out = []
    for p in linen_param_modules(params):
        if p in measured:
            continue
        cls = calls.kinds.get(p)
        if cls is None:
            kind = "?"
            reason = "not called through __call__ by the forward pass (or only inside a transform)"
        else:
            kind = cls.__name__
            recordable = issubclass(cls, types)
            reason = skip_reason(kind, recordable=recordable, lifted=p in calls.lifted)
        out.append(Skipped(p, kind, reason))
    return out


def _abbreviated(paths: Sequence[str], keep: int = 3) -> str:
    names = [p or "(top)" for p in paths]
    if len(names) > keep:
        names = [*names[: keep - 1], "...", names[-1]]
    return ", ".join(names)


def skipped_text(skipped: Sequence[Skipped]) -> str:
    """The ``skipped`` section of a report's table: one line per (kind, reason), ``path
    (kind): reason`` for a single layer, ``first, second, ..., last [count layers] (kind):
    reason`` for several (ResNet's 20 BatchNorms: one line); the report's ``skipped``
    attribute keeps each layer. Empty for no skipped layer."""
    if not skipped:
        return ""
    groups: dict[tuple[str, str], list[str]] = {}
    for path, kind, reason in skipped:
        groups.setdefault((kind, reason), []).append(path)
    lines = [
        f"  {_abbreviated(ps)}{f' [{len(ps)} layers]' if len(ps) > 1 else ''} ({kind}): {reason}"
        for (kind, reason), ps in groups.items()
    ]
    return "\nskipped:\n" + "\n".join(lines)


def nnx_layers(model: Any, types: tuple[type, ...] | None = None) -> dict[str, Any]:
    """Recordable layers of an nnx model by path (graph order, not call order)."""
    from flax import nnx

    types = nnx_layer_types() if types is None else types
    return {path_str(p): m for p, m in nnx.iter_modules(model) if isinstance(m, types)}


# ---------------------------------------------------------------------------------------
# linen: nn.intercept_methods (thread-local)


@dataclasses.dataclass
class LinenCalls:
    """Which modules a linen forward pass called (path -> class), and which recorded
    layers ran inside a lifted transform (not recordable)."""

    kinds: dict[str, type] = dataclasses.field(default_factory=dict)
    lifted: set[str] = dataclasses.field(default_factory=set)


@contextlib.contextmanager
def record_linen(
    types: tuple[type, ...] | None = None,
    *,
    perturb: Mapping[str, Any] | None = None,
    calls: LinenCalls | None = None,
    rescale: Rescale | None = None,
) -> Iterator[list[Record]]:
    """Within the block, the first ``__call__`` of every linen layer of ``types`` is recorded.

    Yields a list of :class:`Record` (call order); the path is the module's scope path
    joined with ``/``, e.g. ``"Dense_0"``. ``perturb`` and ``rescale`` as in
    :func:`record_nnx` (calls inside a lifted transform are neither recorded nor rescaled).
    """
    from flax import linen as nn
    from flax.core import tracers

    types = linen_layer_types() if types is None else types
    records: list[Record] = []
    seen: set[str] = set()
    base = tracers.current_trace()

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        mod = context.module
        if context.method_name != "__call__":
            # a tied embedding's ``attend`` (linear in the table, no bias) after the
            # table's first call: rescaled like its later calls (before it: the scale is
            # not known yet, and the output is left as is)
            if (
                rescale is not None
                and context.method_name == "attend"
                and isinstance(mod, nn.Embed)
                and isinstance(mod, types)
                and tracers.current_trace() == base
            ):
                p = path_str(tuple(mod.path))
                if p in seen:
                    return rescale(p, mod, _first_arg(args, kwargs), out, kwargs, False)
            return out
        p = path_str(tuple(mod.path))
        if calls is not None:
            calls.kinds.setdefault(p, type(mod))
        if not isinstance(mod, types):
            return out
        if tracers.current_trace() != base:
            if calls is not None and p not in seen:
                calls.lifted.add(p)
            return out
        x = _first_arg(args, kwargs)
        if p in seen:
            return out if rescale is None else rescale(p, mod, x, out, kwargs, False)
        seen.add(p)
        if rescale is not None:
            out = rescale(p, mod, x, out, kwargs, True)
        out = _perturbed(out, perturb, p)
        name = param_name(mod)
        param = unbox(mod.variables.get("params", {}).get(name))
        ndim = len(param.shape) if param is not None and hasattr(param, "shape") else 0
        axes = kernel_axes(mod, ndim, kwargs)
        records.append(Record(p, type(mod).__name__, x, out, name, axes))
        return out

    with nn.intercept_methods(interceptor):
        yield records


def linen_param_path(path: str, name: str = "kernel") -> tuple[str, ...]:
    """Where parameter ``name`` of the linen layer at ``path`` lives in the variables."""
    return ("params", *path.split("/"), name) if path else ("params", name)


def linen_kernel_path(path: str) -> tuple[str, ...]:
    return linen_param_path(path, "kernel")


def set_linen_params(
    variables: Any, values: Mapping[str, Any], names: Mapping[str, str], *, keep_box: bool = False
):
    """A copy of ``variables`` with parameter ``names[path]`` of each layer set to
    ``values[path]``; with ``keep_box``, a boxed parameter (``nn.with_partitioning``) stays
    in its box."""
    for p, k in values.items():
        where = linen_param_path(p, names.get(p, "kernel"))
        if keep_box:
            k = rebox(get_in(variables, where), k)
        variables = set_in(variables, where, k)
    return variables


def set_linen_kernels(variables: Any, kernels: Mapping[str, Any], *, keep_box: bool = False):
    return set_linen_params(variables, kernels, {}, keep_box=keep_box)


def linen_param_modules(params: Any, prefix: tuple = ()) -> list[str]:
    """Paths of the nested ``params`` dicts that hold arrays directly (parameterised
    modules), in dict order."""
    out: list[str] = []
    if not hasattr(params, "items"):
        return out
    if any(not hasattr(v, "items") for v in params.values()):
        out.append(path_str(prefix))
    for k, v in params.items():
        if hasattr(v, "items"):
            out.extend(linen_param_modules(v, (*prefix, k)))
    return out


def skip_reason(kind: str, *, recordable: bool, lifted: bool = False) -> str:
    """Why a parameterised layer of class ``kind`` was not measured."""
    if lifted:
        return (
            "called inside a lifted transform (nn.scan / nn.vmap / nn.remat), whose "
            "intermediate values cannot be recorded"
        )
    if recordable:
        return (
            "not called through __call__ by the forward pass (not called at all, called "
            "only inside a transform such as nnx.scan / nnx.vmap / nnx.remat / jax.vmap, or "
            "only "
            "through another method such as Embed.attend)"
        )
    if "Norm" in kind:
        return "normalization layer: not a recorded layer type (its parameters are kept)"
    return f"{kind} is not among the recorded layer types (see layer_types)"


def _is_boxed(x: Any) -> bool:
    if not type(x).__module__.startswith("flax"):
        return False
    from flax.core import meta

    return isinstance(x, meta.AxisMetadata)


def unbox(x: Any) -> Any:
    """The array inside a linen metadata box (``nn.with_partitioning``), else ``x``."""
    return x.unbox() if _is_boxed(x) else x


def rebox(old: Any, new: Any) -> Any:
    """``new`` in ``old``'s metadata box, if ``old`` was boxed."""
    return old.replace_boxed(new) if _is_boxed(old) else new


def get_in(tree: Any, path: tuple) -> Any:
    for p in path:
        if not hasattr(tree, "__getitem__") or p not in tree:
            return None
        tree = tree[p]
    return tree


def set_in(tree: Any, path: tuple, value: Any) -> Any:
    """Returns a copy of the nested dict ``tree`` with ``tree[path] = value``."""
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = set_in(tree[path[0]], path[1:], value)
    return out


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and (population) variance over all elements, computed in float32 or wider."""
    x = jnp.asarray(x)
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        x = jnp.abs(x)
    x = x.astype(dtype)
    return jnp.mean(x), jnp.var(x)


def matrix_view(shape: tuple[int, ...], axes: Axes) -> tuple[tuple[int, ...], tuple[int, int, int]]:
    """The permutation bringing ``axes`` to (batch, fan-in, fan-out) order, and the
    (batch, rows, cols) shape of the kernel seen as a stack of matrices."""
    batch, fan_in, fan_out = axes
    rest = tuple(i for i in range(len(shape)) if i not in (*batch, *fan_in, *fan_out))
    perm = (*batch, *fan_in, *rest, *fan_out)  # stray axes count as fan-in
    size = lambda ax: math.prod(shape[i] for i in ax)
    return perm, (size(batch), size(fan_in) * size(rest), size(fan_out))


def split_call(args: tuple, kwargs: Mapping[str, Any]) -> tuple[list, Callable]:
    """Splits a call's arguments into array leaves (to trace) and the rest (kept static).

    Returns ``(arrays, rebuild)`` with ``rebuild(arrays) -> (args, kwargs)``: flags such as
    ``train=True`` stay Python values inside a jitted function.
    """
    import numpy as np

    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    dynamic = [isinstance(v, (jax.Array, np.ndarray)) for v in leaves]
    arrays = [v for v, d in zip(leaves, dynamic, strict=True) if d]

    def rebuild(traced: Sequence[Any]) -> tuple[tuple, dict]:
        it = iter(traced)
        full = [next(it) if d else v for v, d in zip(leaves, dynamic, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, full)

    return arrays, rebuild
