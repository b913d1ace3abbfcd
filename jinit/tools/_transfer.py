"""Pretrained and transfer initialization: arrays from checkpoints into Flax models.

- :func:`from_checkpoint` is an initializer: ``kernel_init=jinit.from_checkpoint(path, name)``
  makes a layer start from a stored array instead of a random one.
- :func:`transfer` copies a whole checkpoint (or a dict/pytree of arrays) into an existing
  Flax parameter tree, mapping PyTorch names and layouts when asked, and reports what it did.

Sources are ``.safetensors`` files, sharded safetensors checkpoints, orbax checkpoints
and ``.npz`` files (see :mod:`jinit.tools._checkpoint`); nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from jinit._core import Initializer, Shape, check_choice, check_dtype_arg
from jinit._validate import check_bool
from jinit.tools import _checkpoint as ckpt
from jinit.tools._capture import rebox as _rebox
from jinit.tools._capture import unbox as _unbox
from jinit.tools._ckpt_common import ArrayInfo, Reader

Layout = Literal["jax", "torch"]
LAYOUTS: tuple[str, ...] = ("jax", "torch")

__all__ = ["TransferReport", "from_checkpoint", "transfer"]


# --------------------------------------------------------------------------------------
# from_checkpoint
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class FromCheckpoint(Initializer):
    """Initializer returning a stored array; see :func:`from_checkpoint`."""

    path: str
    tensor: str
    # The array as stored when from_checkpoint was called: its shape, dtype and a content
    # digest. Part of the value, so a rewritten file gives a different initializer (and
    # jit cache entry), and the call refuses data that no longer matches.
    stored_shape: tuple[int, ...]
    stored_dtype: np.dtype
    fingerprint: bytes
    layout: str = "jax"
    casting: str = "same_kind"
    dtype: np.dtype | None = None

    name: ClassVar[str] = "from_checkpoint"

    def _changed(self, why: str) -> ValueError:
        return ValueError(
            f"from_checkpoint: {self.path!r} changed since "
            f"from_checkpoint({self.path!r}, {self.tensor!r}) was called ({why}). "
            "The initializer stands for the file as it was then and never returns other "
            "values; call jinit.from_checkpoint again to use the file as it is now."
        )

    def _init(self, key, shape: Shape, dtype: np.dtype, out_sharding) -> jax.Array:
        del key  # deterministic: the values come from the file
        what = f"from_checkpoint: parameter {self.tensor!r} in {self.path!r}"
        try:
            reader = ckpt.open_checkpoint(self.path, only=self.tensor)
            info = reader.infos().get(self.tensor)
        except (OSError, ValueError) as e:
            raise self._changed(f"it can no longer be read: {e}") from None
        if info is None or (info.shape, info.dtype) != (self.stored_shape, self.stored_dtype):
            raise self._changed(f"its array {self.tensor!r} is gone or has another shape/dtype")
        # the request is checked against the header before any data is read
        stored = _layout_shape(self.stored_shape, self.layout)
        if stored != tuple(shape):
            note = " (after the PyTorch -> JAX kernel transpose)" if self.layout == "torch" else ""
            raise ValueError(
                f"{what} has shape {stored}{note}, but shape {tuple(shape)} was requested. "
                "Check the layer's size, or pass layout='torch' for a PyTorch (out, in, *k) "
                "weight."
            )
        if not ckpt.can_cast(self.stored_dtype, dtype, self.casting):
            raise ckpt.cast_error(what, self.stored_dtype, dtype, self.casting)
        # A read error names the file and the array (a corrupt .npz member is found here:
        # its digest is of the stored bytes, checked before they are inflated).
        arr = reader.read_verified(self.tensor, self.fingerprint)
        if arr is None:
            raise self._changed("the array's content differs")
        if self.layout == "torch":
            arr = ckpt.torch_to_jax_kernel(arr)
        arr = ckpt.cast_checked(np.asarray(arr, order="C"), dtype, self.casting, what)
        if isinstance(out_sharding, NamedSharding):
            return jax.device_put(arr, out_sharding)
        out = jnp.asarray(arr)
        if out_sharding is not None:
            out = jax.sharding.reshard(out, out_sharding)
        return out


def _layout_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout == "torch" and len(shape) >= 2:
        return (*shape[2:], shape[1], shape[0])
    return tuple(shape)


def from_checkpoint(
    path: str | os.PathLike,
    name: str,
    *,
    layout: Layout = "jax",
    casting: ckpt.Casting = "same_kind",
    dtype: Any = None,
) -> Initializer:
    r"""Initializer that returns the array ``name`` stored in a checkpoint file.

    The key is ignored; the requested shape must equal the stored shape (after the
    PyTorch -> JAX transpose when ``layout="torch"``), and is compared with the file's
    header before any data is read.

    The initializer stands for the array as stored when ``from_checkpoint`` is called:
    the factory reads it once and keeps its shape, dtype and a content digest (SHA-256;
    for ``.npz``, of the member's stored bytes), not the data, so the initializer stays
    a small hashable value. Each call reads the array again and returns it only if the
    digest still matches; a rewritten file (even one of the same size, within one
    timestamp tick, or with its modification time restored) makes the call raise
    ``ValueError`` instead of returning other values. ``from_checkpoint`` on the
    rewritten file gives a new initializer, unequal to the old one, that jax traces
    afresh. A program jax has already compiled does not run Python again: it returns
    the values the file held when ``from_checkpoint`` was called.

    dtype policy: the stored array is cast to the requested dtype (the call's ``dtype``,
    else this factory's ``dtype``, else the default float dtype) under ``casting``:

    - ``"same_kind"`` (default): any float precision to any other (float64 -> float32,
      float32 -> bfloat16, bfloat16 -> float32), float -> complex, int -> int. Flax always
      requests ``param_dtype`` explicitly and NumPy saves float64 by default, so a precision
      change inside the float kind is what users expect (PyTorch's ``load_state_dict``
      casts too). Kind changes (int -> float, float -> int, complex -> float) raise
      ``TypeError``. The values must fit: a finite value beyond the target's largest
      (float64 ``1e300`` -> float32 would be ``inf``) or an integer outside its range
      (int64 ``2**62 + 5`` -> int32 would wrap to ``5``) raises ``ValueError`` naming the
      parameter and the value. Rounding to the target's precision, and tiny values
      flushing towards zero, are what a precision change means and happen silently.
    - ``"safe"``: only value-preserving casts (bfloat16 -> float32, float32 -> float64).
    - ``"no"``: the stored dtype must equal the requested one.
    - ``"unsafe"``: any cast, with NumPy's conversion (integers wrap, floats overflow to
      ``inf``); for when that is what you want.

    Args:
      path: a ``.safetensors`` file; a sharded safetensors checkpoint (its
        ``*.safetensors.index.json``, or the folder holding it); an orbax checkpoint
        folder (``StandardCheckpointer``/``PyTreeCheckpointer`` output, a
        ``CheckpointManager`` step folder, or its root, read at the latest step); or a
        ``.npz`` file. Nothing is unpickled; ``.npz`` object arrays are refused.
      name: the array's name: ``"fc.weight"`` in a safetensors or npz file, the tree path
        joined with ``/`` in an orbax checkpoint (``"params/Dense_0/kernel"``; nnx's
        ``value`` level is left out: ``"fc/kernel"``).
      layout: ``"jax"`` (stored as ``(*spatial, in, out)``) or ``"torch"`` (stored as
        PyTorch's Linear/Conv ``(out, in, *spatial)``, transposed on load; a PyTorch
        ``ConvTranspose`` weight ``(in, out, *spatial)`` needs another conversion, which
        :func:`transfer` into an nnx model does).
      casting: ``"same_kind"``, ``"safe"``, ``"no"`` or ``"unsafe"`` (see above).
      dtype: default dtype when the call passes none.

    Returns:
      An :class:`jinit.Initializer`.

    Raises:
      FileNotFoundError: if ``path`` does not exist (at factory time).
      KeyError: if ``name`` is not in the file; the message lists the available names.
      ValueError: for an unsupported or malformed file (the message names the file and,
        where known, the array), an object array, a bad ``layout``/``casting`` (factory
        time); a shape mismatch (call time; the message names the parameter, the stored
        shape and the requested shape), a value that does not fit the requested dtype, or
        a file whose array changed since ``from_checkpoint`` was called (call time).
      ImportError: for a safetensors or orbax checkpoint when the ``safetensors`` /
        ``orbax-checkpoint`` package is not installed.
      TypeError: if the stored dtype cannot be cast under ``casting`` (call time).

    Examples:
      >>> import os, tempfile, jax, numpy as np, jinit
      >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
      >>> np.savez(path, w=np.ones((3, 4)))
      >>> init = jinit.from_checkpoint(path, "w")
      >>> w = init(jax.random.key(0), (3, 4))
      >>> w.shape, w.dtype, bool((w == 1).all())
      ((3, 4), dtype('float32'), True)
      >>> init == jinit.from_checkpoint(path, "w")
      True
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str; got {name!r} of type {type(name).__name__}.")
    check_choice("layout", layout, LAYOUTS)
    ckpt.check_casting(casting)
    dtype = check_dtype_arg("dtype", dtype)
    reader = ckpt.open_checkpoint(path)  # format, header and object arrays, at factory time
    infos = reader.infos()
    if name not in infos:
        raise ckpt.missing_error(reader.path, name, list(infos))
    info = infos[name]
    fingerprint = reader.fingerprint(name)  # the content the initializer stands for
    return FromCheckpoint(
        reader.path, name, info.shape, info.dtype, fingerprint, layout, casting, dtype
    )


# --------------------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class TransferReport:
    """What :func:`transfer` did, by target parameter name (``"fc/kernel"``).

    Attributes:
      copied: target name -> source name, for every copied array.
      transposed: target names whose array was converted from the PyTorch layout.
      missing: target names that no source array matched (left unchanged).
      mismatched: target name -> reason (shape, dtype, or a layout jinit cannot convert),
        for matched but not copied arrays.
      unused: source name -> reason, for source arrays that were not copied anywhere.
      warnings: target name -> what to check, for copied arrays whose layout jinit could
        not verify (a square conv kernel in a tree without module types, which could
        belong to a ``ConvTranspose``).
      source: what was read (e.g. ``"orbax checkpoint '/ckpt/5/default' (latest of steps
        1, 5)"``).
    """

    copied: dict[str, str] = dataclasses.field(default_factory=dict)
    transposed: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    mismatched: dict[str, str] = dataclasses.field(default_factory=dict)
    unused: dict[str, str] = dataclasses.field(default_factory=dict)
    warnings: dict[str, str] = dataclasses.field(default_factory=dict)
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when every target parameter was copied."""
        return not self.missing and not self.mismatched

    def __str__(self) -> str:
        lines = [
            f"transfer: {len(self.copied)} copied ({len(self.transposed)} transposed), "
            f"{len(self.missing)} missing, {len(self.mismatched)} mismatched, "
            f"{len(self.unused)} unused source arrays"
            + (f", {len(self.warnings)} warnings" if self.warnings else "")
        ]
        for t, s in self.copied.items():
            flag = "  [transposed]" if t in self.transposed else ""
            lines.append(f"  copied     {t} <- {s}{flag}")
        lines += [f"  missing    {t}" for t in self.missing]
        lines += [f"  mismatched {t}: {r}" for t, r in self.mismatched.items()]
        lines += [f"  unused     {s}: {r}" for s, r in self.unused.items()]
        lines += [f"  warning    {t}: {w}" for t, w in self.warnings.items()]
        if self.source:
            lines.append(f"  source     {self.source}")
        return "\n".join(lines)


_TORCH_SUFFIXES: dict[str, tuple[str, ...]] = {
    "weight": ("kernel", "scale", "embedding"),
    "bias": ("bias",),
    "running_mean": ("mean",),
    "running_var": ("var",),
}
_TORCH_IGNORED = ("num_batches_tracked",)


def _is_collections_dict(tree: Mapping) -> bool:
    """A linen variables dict: {'params': {...}, 'batch_stats': {...}, ...}."""
    return "params" in tree and all(isinstance(v, Mapping) for v in tree.values())


def _flatten_mapping(tree: Mapping) -> dict[tuple, Any]:
    out: dict[tuple, Any] = {}

    def visit(prefix: tuple, node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                visit((*prefix, k), v)
        else:
            out[prefix] = node

    visit((), tree)
    return out


class _Arrays(Reader):
    """Arrays already in memory (a dict, an nnx.State or Module) as a checkpoint reader."""

    kind = "in-memory"

    def __init__(self, arrays: dict[str, Any], path: str):
        self.path, self._arrays = path, arrays
        self._infos = {n: ArrayInfo(n, tuple(np.shape(a)), _dtype_of(a)) for n, a in arrays.items()}

    def infos(self) -> dict[str, ArrayInfo]:
        return self._infos

    def describe(self) -> str:
        return ""  # the caller holds it; nothing to report

    def read(self, name: str) -> Any:
        a = self._arrays[name]
        return a if isinstance(a, (np.ndarray, jax.Array)) else np.asarray(a)


class _Renamed(Reader):
    """A checkpoint whose ``params/``/``batch_stats/`` collection level is dropped from names
    (a linen variables dict or TrainState saved with orbax)."""

    def __init__(self, reader: Reader):
        self.inner, self.path, self.kind = reader, reader.path, reader.kind
        self._names: dict[str, str] = {}
        for n in reader.infos():
            head, _, rest = n.partition("/")
            self._names[rest if head in _COLLECTIONS and rest else n] = n
        if len(self._names) != len(reader.infos()):
            self._names = {n: n for n in reader.infos()}  # ambiguous: keep full names
        inner = reader.infos()
        self._infos = {n: dataclasses.replace(inner[o], name=n) for n, o in self._names.items()}

    def infos(self) -> dict[str, ArrayInfo]:
        return self._infos

    def read_many(self, requests: dict[str, Any]) -> dict[str, Any]:
        out = self.inner.read_many({self._names[n]: s for n, s in requests.items()})
        return {n: out[self._names[n]] for n in requests}

    def read(self, name: str) -> Any:
        return self.read_many({name: None})[name]

    def describe(self) -> str:
        return self.inner.describe()


_COLLECTIONS = ("params", "batch_stats")


def _source_reader(source: Any) -> Reader:
    """Any supported source -> a reader; names with '/' separators."""
    from flax import nnx

    if isinstance(source, (str, os.PathLike)):
        reader = ckpt.open_checkpoint(source)
        if any(n.startswith("params/") for n in reader.infos()):
            return _Renamed(reader)
        return reader
    if isinstance(source, nnx.Module):
        source = nnx.state(source, nnx.Any(nnx.Param, nnx.BatchStat))
    if isinstance(source, nnx.State):
        arrays = {
            "/".join(str(p) for p in path): var.get_value()
            for path, var in nnx.to_flat_state(source)
            if not isinstance(var, nnx.RngState)
        }
        return _Arrays(arrays, "an nnx.State")
    if isinstance(source, Mapping):
        flat = _flatten_mapping(source)
        drop = 1 if _is_collections_dict(source) else 0
        arrays = {"/".join(str(p) for p in k[drop:]): _unbox(v) for k, v in flat.items()}
        return _Arrays(arrays, "a dict")
    raise TypeError(
        "`source` must be a checkpoint path (.safetensors, a sharded safetensors index or "
        "folder, an orbax checkpoint folder, .npz), a dict or nested dict of arrays, an "
        f"nnx.State or an nnx.Module; got {type(source).__name__}."
    )


def _normalize(name: str) -> str:
    return name.replace(".", "/")


def _candidates(name: str, layout: str) -> list[str]:
    """Target names a source name may refer to, most specific first."""
    *module, leaf = _normalize(name).split("/")
    leaves = _TORCH_SUFFIXES.get(leaf, (leaf,)) if layout == "torch" else (leaf,)
    bases = [module]
    # linen names list submodules "layers_0" where torch / nnx say "layers.0"
    underscored: list[str] = []
    for p in module:
        if p.isdigit() and underscored:
            underscored[-1] = f"{underscored[-1]}_{p}"
        else:
            underscored.append(p)
    if underscored != module:
        bases.append(underscored)
    return ["/".join([*b, leaf]) for b in bases for leaf in leaves]


def _resolve(
    name: str, layout: str, targets: Mapping[str, Any], *, suffix: bool = True
) -> str | None:
    cands = _candidates(name, layout)
    for c in cands:
        if c in targets:
            return c
    if not suffix:
        return None
    # unique suffix match: torch "0.weight" -> nnx.Sequential "layers/0/kernel"
    for c in cands:
        hits = [t for t in targets if t.endswith("/" + c)]
        if len(hits) == 1:
            return hits[0]
    return None


def _target_leaves(
    target: Any,
) -> tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any], dict[str, Any] | None]:
    """Returns (kind, {name: current array}, rebuild(new_values) -> result, owners).

    ``owners`` maps each name to the module holding it, for nnx modules; None for trees
    that carry no module types (nnx.State, linen dicts).
    """
    from flax import nnx

    if isinstance(target, nnx.Module):
        state = nnx.state(target, nnx.Any(nnx.Param, nnx.BatchStat))
        flat = list(nnx.to_flat_state(state))
        names = {"/".join(str(p) for p in path): (path, var) for path, var in flat}
        modules = {"/".join(str(k) for k in p): m for p, m in nnx.iter_modules(target)}
        owners = {n: modules.get(n.rpartition("/")[0]) for n in names}

        def rebuild_module(new: dict[str, Any]) -> Any:
            for n, value in new.items():
                names[n][1].set_value(value)
            nnx.update(target, state)
            return target

        current = {n: v.get_value() for n, (_, v) in names.items()}
        return "an nnx.Module", current, rebuild_module, owners

    if isinstance(target, nnx.State):
        flat = [(p, v) for p, v in nnx.to_flat_state(target) if not isinstance(v, nnx.RngState)]
        others = [(p, v) for p, v in nnx.to_flat_state(target) if isinstance(v, nnx.RngState)]
        names = {"/".join(str(p) for p in path): (path, var) for path, var in flat}

        def rebuild_state(new: dict[str, Any]) -> Any:
            items = [
                (path, var.replace(new[n]) if n in new else var) for n, (path, var) in names.items()
            ]
            return nnx.from_flat_state(items + others)

        current = {n: v.get_value() for n, (_, v) in names.items()}
        return "an nnx.State", current, rebuild_state, None

    if isinstance(target, Mapping):
        from flax.core import FrozenDict, freeze

        frozen = isinstance(target, FrozenDict)
        leaves = _flatten_mapping(target)
        drop = 1 if _is_collections_dict(target) else 0
        keys: dict[str, tuple] = {}
        for k in leaves:
            n = "/".join(str(p) for p in k[drop:])
            if n in keys:
                raise ValueError(
                    f"transfer: target name {n!r} occurs in two collections "
                    f"({keys[n][0]!r} and {k[0]!r}); transfer into one collection at a time."
                )
            keys[n] = k

        def rebuild_dict(new: dict[str, Any]) -> Any:
            out: dict = {}
            for n, k in keys.items():
                node = out
                for p in k[:-1]:
                    node = node.setdefault(p, {})
                node[k[-1]] = _rebox(leaves[k], new[n]) if n in new else leaves[k]
            return freeze(out) if frozen else out

        current = {n: _unbox(leaves[k]) for n, k in keys.items()}
        return "a dict", current, rebuild_dict, None

    raise TypeError(
        "`target` must be an nnx.Module, an nnx.State, or a linen variables/params dict; "
        f"got {type(target).__name__}."
    )


_LINEN_CONV_TRANSPOSE = re.compile(r"(^|/)ConvTranspose_\d+$")  # linen's automatic names


def _torch_kernel(
    arr: np.ndarray, t_name: str, t_shape: tuple[int, ...], owners: dict[str, Any] | None
) -> tuple[np.ndarray, str, str | None, str | None]:
    """A PyTorch ``weight`` for the Flax kernel ``t_name``: (array, how, refusal, warning).

    nnx modules say which layer owns the kernel: an ``nnx.ConvTranspose`` gets the
    ConvTranspose conversion, anything else the Linear/Conv transpose. Trees without
    module types (linen dicts, nnx.State) get the Linear/Conv transpose, except a kernel
    linen named ``ConvTranspose_<n>``, which is refused (``refusal``); a square conv kernel
    there is copied with a ``warning``, since a ConvTranspose one would fit it too.
    """
    from flax import nnx

    if owners is not None:
        owner = owners.get(t_name)
        if isinstance(owner, nnx.ConvTranspose):
            transpose_kernel = bool(owner.transpose_kernel)
            out = ckpt.torch_to_jax_conv_transpose_kernel(arr, transpose_kernel=transpose_kernel)
            how = (
                " after the PyTorch ConvTranspose (in, out, *k) -> Flax ConvTranspose "
                f"conversion for transpose_kernel={transpose_kernel}"
            )
            return out, how, None, None
        out = ckpt.torch_to_jax_kernel(arr)
        return out, " after the PyTorch -> JAX transpose" + _hint(arr, t_shape), None, None
    owner_name = t_name.rpartition("/")[0]
    if arr.ndim >= 3 and _LINEN_CONV_TRANSPOSE.search(owner_name):
        refusal = (
            f"looks like the kernel of a linen nn.ConvTranspose (automatic name "
            f"{owner_name!r}) and was not transposed: PyTorch "
            "stores ConvTranspose weights as (in, out, *k), flipped spatially relative to "
            "Flax, and a variables dict does not say whether the layer sets transpose_kernel. "
            "Transfer into the nnx model instead (jinit converts nnx.ConvTranspose kernels), "
            "or convert the array yourself and pass it with layout='jax'"
        )
        return arr, "", refusal, None
    out = ckpt.torch_to_jax_kernel(arr)
    warning = None
    if arr.ndim >= 3 and tuple(out.shape) == t_shape and t_shape[-2] == t_shape[-1]:
        warning = (
            "was transposed as a PyTorch Conv weight (out, in, *k) -> (*k, in, out). If this "
            "layer is a ConvTranspose, PyTorch stored it as (in, out, *k) and the copied values "
            "are wrong although the shapes agree; jinit can tell the two apart only in an "
            "nnx.Module target"
        )
    return out, " after the PyTorch -> JAX transpose" + _hint(arr, t_shape), None, warning


def _hint(arr: np.ndarray, t_shape: tuple[int, ...]) -> str:
    """For a shape mismatch: a hint when the source would fit as a ConvTranspose weight."""
    if arr.ndim < 3 or (*arr.shape[2:], *arr.shape[:2]) != t_shape:
        return ""
    return (
        " (a PyTorch ConvTranspose weight? Those are stored as (in, out, *k); jinit converts "
        "them into the nnx.ConvTranspose layers of an nnx.Module target)"
    )


def transfer(
    target: Any,
    source: Any,
    *,
    mapping: Mapping[str, str | None] | Callable[[str], str | None] | None = None,
    layout: Layout = "jax",
    strict: bool = True,
    casting: ckpt.Casting = "same_kind",
) -> tuple[Any, TransferReport]:
    """Copies matching arrays from a checkpoint or pytree into a Flax parameter tree.

    Target names are the parameter paths joined with ``/``: ``"fc/kernel"``,
    ``"layers/0/bias"`` (nnx), ``"Dense_0/kernel"`` (linen; the collection level of a
    variables dict, ``params``/``batch_stats``, is dropped). Source names are matched with
    ``.`` read as ``/``, then with ``layers/0`` read as linen's ``layers_0``, then by a
    unique suffix (so PyTorch ``nn.Sequential``'s ``0.weight`` finds ``layers/0/kernel``).

    With ``layout="torch"`` the last name component is translated: ``weight`` -> ``kernel``
    (transposed: Linear ``(out, in)`` -> ``(in, out)``, Conv ``(out, in, *k)`` ->
    ``(*k, in, out)``), or ``scale`` (norm layers) or ``embedding`` (``nn.Embedding``, not
    transposed), whichever the target has; ``bias`` -> ``bias``; ``running_mean`` /
    ``running_var`` -> ``mean`` / ``var``; ``num_batches_tracked`` is ignored. Inputs stay
    your job: a PyTorch conv expects NCHW, a Flax conv NHWC.

    PyTorch stores ``ConvTranspose`` weights as ``(in, out, *k)`` and applies them
    spatially flipped relative to Flax. In an ``nnx.Module`` target jinit sees which
    kernels belong to an ``nnx.ConvTranspose`` and converts them so the layer computes
    what PyTorch's does (``(*k, in, out)`` with the spatial axes reversed, or the plain
    ``(*k, out, in)`` transpose when the layer sets ``transpose_kernel=True``; PyTorch
    ``padding=0`` is Flax ``padding="VALID"``). Linen dicts and ``nnx.State`` carry no
    module types: a kernel linen named ``ConvTranspose_<n>`` is not transposed but
    reported as mismatched, and any other conv kernel gets the Conv transpose, with an
    entry in ``report.warnings`` when it is square in its channels (``in == out``), the one
    case where a ConvTranspose weight would pass the shape check with wrong values.

    Args:
      target: an ``nnx.Module`` (updated in place), an ``nnx.State``, or a linen
        variables dict / params dict (a new dict is returned; the input is not modified).
        nnx targets cover ``nnx.Param`` and ``nnx.BatchStat`` variables.
      source: a checkpoint path (a ``.safetensors`` file; a sharded safetensors
        checkpoint: its ``*.safetensors.index.json`` or its folder; an orbax checkpoint
        folder, a ``CheckpointManager`` step or root (latest step, named in
        ``report.source``); a ``.npz`` file), a flat dict ``{"fc.weight": array}``, a
        nested dict of arrays, a linen variables dict, an ``nnx.State`` or ``nnx.Module``.
        Names, shapes and dtypes are matched from the checkpoint's header first; only the
        arrays that are copied are read. An orbax checkpoint restores each array straight
        into the target array's sharding (no host round trip, no device holding a full
        copy) when no layout conversion is needed. A ``params/``/``batch_stats/`` level
        in an orbax tree (a linen variables dict or ``TrainState``) is dropped from the
        names, as for a variables dict source.
      mapping: explicit ``source name -> target name``: a dict (names it does not cover
        are matched automatically) or a function called on every source name. A target
        of ``None`` drops that source array. A target name that is not a parameter is
        read like a source name (without the suffix rule), so ``"encoder.weight"`` works.
        With ``layout="torch"`` a mapped array is transposed when its target ends in
        ``kernel``.
      layout: ``"jax"`` (arrays already in Flax layout) or ``"torch"``.
      strict: raise ``ValueError`` if any target parameter is missing from the source or
        any matched array has the wrong shape or dtype; with ``strict=False`` those
        parameters keep their values and the report lists them.
      casting: dtype policy when the source dtype differs from the target's; see
        :func:`from_checkpoint` (default ``"same_kind"``: precision changes within a kind,
        and the values must fit the target dtype: no integer wrap-around, no overflow to
        ``inf``; an array that does not fit is reported as mismatched).

    Returns:
      ``(result, report)``: the same module (nnx, updated in place), or a new ``nnx.State``
      or dict; and a :class:`TransferReport`.

    Raises:
      ValueError: with ``strict=True``, on missing or mismatched parameters (the message is
        the report; nothing is read from the source then); always, if two source arrays
        map to the same target, or for a malformed checkpoint (naming the file and entry).
      TypeError: for an unsupported target or source, a ``strict`` that is not a bool, or a
        ``mapping`` that is not a dict of ``str -> str | None``, a callable returning those,
        or None.

    Examples:
      >>> import numpy as np, jinit
      >>> from flax import nnx
      >>> model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
      >>> weights = {"weight": np.ones((2, 3)), "bias": np.zeros(2)}  # torch layout
      >>> model, report = jinit.transfer(model, weights, layout="torch")
      >>> model.kernel.shape, report.ok, report.transposed
      ((3, 2), True, ['kernel'])
    """
    check_choice("layout", layout, LAYOUTS)
    check_bool("strict", strict)
    ckpt.check_casting(casting)
    lookup = _check_mapping(mapping)
    kind, targets, rebuild, owners = _target_leaves(target)
    reader = _source_reader(source)
    report = TransferReport(source=reader.describe())
    used_by: dict[str, str] = {}
    plan: dict[str, tuple[str, bool, str | None]] = {}  # source -> (target, transposed, warning)

    # 1. names, shapes and dtypes only: nothing is read yet
    for s_name, info in reader.infos().items():
        leaf = _normalize(s_name).split("/")[-1]
        explicit, t_name = lookup(s_name)
        if explicit and t_name is None:
            report.unused[s_name] = "mapped to None"
            continue
        if not explicit:
            if layout == "torch" and leaf in _TORCH_IGNORED:
                report.unused[s_name] = "PyTorch bookkeeping buffer; no Flax counterpart"
                continue
            t_name = _resolve(s_name, layout, targets)
            if t_name is None:
                report.unused[s_name] = "no matching target parameter"
                continue
        elif t_name not in targets:
            assert t_name is not None
            resolved = _resolve(t_name, layout, targets, suffix=False)
            if resolved is None:
                report.unused[s_name] = f"mapped to {t_name!r}, which is not a target parameter"
                continue
            t_name = resolved
        if t_name in used_by:
            raise ValueError(
                f"transfer: source arrays {used_by[t_name]!r} and {s_name!r} both map to "
                f"target {t_name!r}; fix `mapping`."
            )
        used_by[t_name] = s_name

        if info.dtype.hasobject:
            report.mismatched[t_name] = f"source {s_name!r} is an object array"
            continue
        current = targets[t_name]
        t_dtype = _dtype_of(current)
        t_shape = tuple(np.shape(current))
        # a zero-strided stand-in: layout conversions on it cost nothing
        stand_in = np.broadcast_to(np.zeros((), info.dtype), info.shape)
        transposed = layout == "torch" and t_name.split("/")[-1] == "kernel" and stand_in.ndim >= 2
        how, warning = "", None
        if transposed:
            stand_in, how, refusal, warning = _torch_kernel(stand_in, t_name, t_shape, owners)
            if refusal is not None:
                report.mismatched[t_name] = f"source {s_name!r} {refusal}"
                continue
        if tuple(stand_in.shape) != t_shape:
            report.mismatched[t_name] = (
                f"source {s_name!r} has shape {tuple(stand_in.shape)}{how}, target has {t_shape}"
            )
            continue
        if not ckpt.can_cast(info.dtype, t_dtype, casting):
            report.mismatched[t_name] = (
                f"source {s_name!r} has dtype {info.dtype.name}, target has {t_dtype.name} "
                f"(not allowed under casting={casting!r})"
            )
            continue
        plan[s_name] = (t_name, transposed, warning)

    report.missing = [t for t in targets if t not in used_by]
    _raise_if_strict(strict, report, kind)

    # 2. read what is copied: straight into the target's sharding where the reader can
    # (orbax) and no conversion on the host is needed
    requests = {}
    for s_name, (t_name, transposed, _) in plan.items():
        current, info = targets[t_name], reader.infos()[s_name]
        direct = (
            isinstance(current, jax.Array)
            and not transposed
            and np.dtype(jax.dtypes.canonicalize_dtype(info.dtype)) == info.dtype
        )
        requests[s_name] = current.sharding if direct else None
    loaded = reader.read_many(requests)

    # 3. convert, cast (values must fit) and place
    new: dict[str, Any] = {}
    for s_name, (t_name, transposed, warning) in plan.items():
        arr, current = loaded.pop(s_name), targets[t_name]
        if transposed:
            arr, _, _, _ = _torch_kernel(np.asarray(arr), t_name, tuple(np.shape(current)), owners)
        if not isinstance(arr, jax.Array):
            arr = np.asarray(arr, order="C")  # ascontiguousarray makes a 0-d array 1-d
        try:
            value = ckpt.cast_checked(arr, _dtype_of(current), casting, f"source {s_name!r}")
        except ValueError as e:
            report.mismatched[t_name] = str(e)
            continue
        if isinstance(current, jax.Array):  # keep the target's placement and sharding
            value = jax.device_put(value, current.sharding)
        else:
            value = jnp.asarray(value)
        new[t_name] = value
        report.copied[t_name] = s_name
        if transposed:
            report.transposed.append(t_name)
        if warning is not None:
            report.warnings[t_name] = f"source {s_name!r} {warning}"
    _raise_if_strict(strict, report, kind)
    return rebuild(new), report


def _dtype_of(current: Any) -> np.dtype:
    t_dtype = getattr(current, "dtype", None)
    return np.dtype(np.asarray(current).dtype if t_dtype is None else t_dtype)


def _raise_if_strict(strict: bool, report: TransferReport, kind: str) -> None:
    if strict and not report.ok:
        raise ValueError(
            f"transfer(strict=True) into {kind}: not every target parameter could be "
            "copied (pass strict=False to copy what matches, or `mapping=` to name the "
            f"sources).\n{report}"
        )


def _check_mapping(mapping: Any) -> Callable[[str], tuple[bool, str | None]]:
    """Validates ``mapping``; returns ``lookup(source) -> (explicit, target or None)``."""
    if mapping is None:
        return lambda s: (False, None)
    if isinstance(mapping, Mapping):
        for k, v in mapping.items():
            if not isinstance(k, str) or not (v is None or isinstance(v, str)):
                raise TypeError(
                    "`mapping` must map source names (str) to target names (str) or None; "
                    f"got {k!r}: {v!r} ({type(k).__name__} -> {type(v).__name__})."
                )
        return lambda s: (s in mapping, mapping.get(s))
    if callable(mapping):

        def lookup(s: str) -> tuple[bool, str | None]:
            t = mapping(s)
            if not (t is None or isinstance(t, str)):
                raise TypeError(
                    "`mapping` must return a target name (str) or None for every source "
                    f"name; it returned {t!r} ({type(t).__name__}) for {s!r}."
                )
            return True, t

        return lookup
    raise TypeError(
        "`mapping` must be a dict {source name: target name or None}, a callable or None; "
        f"got {mapping!r} of type {type(mapping).__name__}."
    )
