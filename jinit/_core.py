"""The Initializer protocol, argument canonicalization and checks, and fan computation.

Everything a user passes to jinit goes through one of the ``check_*`` / ``canonical_*``
helpers here, so a mistake is reported where the user wrote it, with a message that
names the argument, echoes the value and says what is allowed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jinit._validate import (
    AxisSpec,
    OutSharding,
    Shape,
    axes_tuple,
    canonical_dtype,
    canonical_shape,
    check_axes,
    check_choice,
    check_dtype_arg,
    check_int,
    check_key,
    check_out_sharding,
    check_real,
    default_float_dtype,
    is_tracer,
    normalize_axis,
    spec_axis_names,
)

# Names kept for modules that import them from here (jinit.tools, jinit.train).
_is_tracer = is_tracer
_spec_axis_names = spec_axis_names
_axes_tuple = axes_tuple

__all__ = [
    "AxisSpec",
    "Initializer",
    "OutSharding",
    "Shape",
    "canonical_dtype",
    "canonical_shape",
    "check_axes",
    "check_choice",
    "check_dtype_arg",
    "check_int",
    "check_key",
    "check_out_sharding",
    "check_real",
    "compute_fans",
    "default_float_dtype",
    "normalize_axis",
]


def uses_explicit_axes(out_sharding: OutSharding) -> bool:
    """Whether ``out_sharding`` names an Explicit mesh axis (sharding in types)."""
    if out_sharding is None:
        return False
    if isinstance(out_sharding, NamedSharding):
        mesh, spec = out_sharding.mesh, out_sharding.spec
    else:
        mesh, spec = jax.sharding.get_abstract_mesh(), out_sharding
    types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
    return any(types.get(n) == jax.sharding.AxisType.Explicit for n in _spec_axis_names(spec))


def constrain(x: jax.Array, out_sharding: OutSharding) -> jax.Array:
    """Lays ``x`` out as ``out_sharding`` asks, for Explicit and Auto mesh axes alike.

    Explicit axes (sharding in types) use ``jax.sharding.reshard``; Auto axes a sharding
    constraint, which XLA propagates backward so each device computes only its shard.
    """
    if out_sharding is None:
        return x
    if uses_explicit_axes(out_sharding):
        return jax.sharding.reshard(x, out_sharding)
    return jax.lax.with_sharding_constraint(x, out_sharding)


def replicated(out_sharding: OutSharding) -> OutSharding:
    """The fully replicated sharding on ``out_sharding``'s mesh (None stays None)."""
    if out_sharding is None:
        return None
    if isinstance(out_sharding, NamedSharding):
        return NamedSharding(out_sharding.mesh, PartitionSpec())
    return PartitionSpec()


def mesh_context(key: Any, out_sharding: OutSharding) -> contextlib.AbstractContextManager:
    """The mesh to enter for an eager call that produces an explicitly sharded array.

    jax needs the mesh in context for a computation whose output type carries Explicit
    axes; inside a trace the user's context applies, so nothing is entered there.
    """
    if (
        isinstance(out_sharding, NamedSharding)
        and not _is_tracer(key)
        and uses_explicit_axes(out_sharding)
        and jax.sharding.get_abstract_mesh().empty
    ):
        return jax.sharding.set_mesh(out_sharding.mesh)  # type: ignore[arg-type]
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------
# Fans
# --------------------------------------------------------------------------------------


def compute_fans(
    shape: Sequence[int],
    in_axis: AxisSpec = -2,
    out_axis: AxisSpec = -1,
    batch_axis: AxisSpec = (),
) -> tuple[float, float]:
    r"""Computes ``(fan_in, fan_out)`` of a weight, as jax.nn.initializers does.

    Axes that are in none of ``in_axis``, ``out_axis`` and ``batch_axis`` form the
    receptive field (a convolution's spatial axes):

    .. math::
        \mathrm{fan\_in} = \prod_{i \in in} s_i \cdot \prod_{r \in rf} s_r, \qquad
        \mathrm{fan\_out} = \prod_{o \in out} s_o \cdot \prod_{r \in rf} s_r

    Args:
      shape: the weight's shape, e.g. ``(3, 3, 64, 128)`` for a JAX conv kernel.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes that are ignored (stacked layers).

    Returns:
      ``(fan_in, fan_out)`` as floats (a zero-size shape gives a zero fan; jax divides
      by zero there).

    Raises:
      ValueError: if the shape has fewer than 2 dimensions with the default ``in_axis``,
        or an axis is out of range or repeated within one argument.

    Examples:
      >>> import jinit
      >>> jinit.compute_fans((3, 3, 64, 128))
      (576.0, 1152.0)
      >>> jinit.compute_fans((8, 256, 512), batch_axis=0)
      (256.0, 512.0)
    """
    shape = canonical_shape(shape)
    in_axis = check_axes("in_axis", in_axis)
    out_axis = check_axes("out_axis", out_axis)
    batch_axis = check_axes("batch_axis", batch_axis)
    if in_axis == -2 and len(shape) < 2:
        raise ValueError(
            f"Cannot compute fans of a {len(shape)}-D weight of shape {shape} with the default "
            "`in_axis`=-2: the weight must be at least 2-D, or pass `in_axis`/`out_axis`."
        )
    ins = _axes_tuple("in_axis", in_axis, shape)
    outs = _axes_tuple("out_axis", out_axis, shape)
    batch = _axes_tuple("batch_axis", batch_axis, shape)
    in_size = math.prod(shape[i] for i in ins)
    out_size = math.prod(shape[i] for i in outs)
    batch_size = math.prod(shape[i] for i in batch)
    if in_size and out_size and batch_size:
        # jax's definition, kept exactly: the receptive field is what the named axes leave
        # of the size. Axes may overlap; Flax's Embed relies on it (in_axis = out_axis = 0
        # on (vocab, features) gives fan_in = features).
        receptive_field = math.prod(shape) / in_size / out_size / batch_size
    else:  # a zero-size weight: jax divides by zero here
        named = set(ins + outs + batch)
        receptive_field = math.prod(s for i, s in enumerate(shape) if i not in named)
    fan_in = in_size * receptive_field
    fan_out = out_size * receptive_field
    return float(fan_in), float(fan_out)


# --------------------------------------------------------------------------------------
# The Initializer base class
# --------------------------------------------------------------------------------------


def _hashable(value: Any) -> Any:
    """The identity of a field value for equality and hashing: cheap, and exact.

    Arrays compare by identity (the initializer holds the array; hashing its bytes cost
    O(size) on every use), floats keep the sign of zero (``constant(-0.0)`` fills with
    -0.0), dtypes compare by name.
    """
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, np.dtype):
        return ("dtype", value.name)
    if isinstance(value, float):
        return ("float", value, math.copysign(1.0, value)) if value == 0 else value
    if is_tracer(value) or isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return ("id", id(value))
    if isinstance(value, Initializer):
        return value
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def _holds_objects(obj: Initializer) -> bool:
    """Whether a field holds an array, a tracer or another unhashable object.

    Such initializers are never interned: the intern table must not keep a user's array
    alive, and identity-compared fields would make interning pointless anyway.
    """
    for f in dataclasses.fields(obj):
        for leaf in jax.tree_util.tree_leaves(getattr(obj, f.name)):
            if isinstance(leaf, (np.ndarray, jax.Array, np.generic)) or is_tracer(leaf):
                return True
            try:
                hash(leaf)
            except TypeError:
                return True
    return False


_INTERN_LIMIT = 4096
_interned: dict[Any, Any] = {}
_intern_lock = threading.Lock()


class _Interned(type):
    """Metaclass: building an initializer equal to a live one returns that one.

    jax's jit cache holds functions weakly and is hit by equal, hashable functions that
    are still alive; interning keeps one canonical instance of each initializer alive,
    so ``jax.jit(jinit.he_normal())`` compiles once in a process, not once per build.
    Only initializers made of plain scalars, strings and dtypes are interned (never one
    holding an array or a tracer); the table is bounded (oldest entry evicted first) and
    guarded by a lock, so factories may be called from several threads.
    """

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        if _holds_objects(obj):
            return obj
        with _intern_lock:
            existing = _interned.get(obj)
            if existing is not None:
                return existing
            while len(_interned) >= _INTERN_LIMIT:
                del _interned[next(iter(_interned))]
            _interned[obj] = obj
        return obj


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Initializer(metaclass=_Interned):
    """Base class of every jinit initializer: a frozen value implementing the protocol.

    ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``, exactly as in
    :mod:`jax.nn.initializers`. Initializers built with equal arguments are equal and
    hash equally, so ``jax.jit(jinit.he_normal())`` reuses one compiled program however
    many times the initializer is rebuilt (array-valued arguments compare by identity).

    Subclasses implement :meth:`_init` and receive canonical arguments: a checked key, a
    tuple of ints, a numpy dtype (the call's, else the factory's, else the default float
    dtype) and a checked sharding.

    Examples:
      >>> import jax, jinit
      >>> jinit.he_normal() == jinit.he_normal()
      True
      >>> w = jinit.he_normal()(jax.random.key(0), (3, 4))
      >>> w.shape, w.dtype
      ((3, 4), dtype('float32'))
    """

    supports_complex: ClassVar[bool] = True
    supports_int: ClassVar[bool] = False  # integer and bool dtypes: the constants only
    name: ClassVar[str] = "initializer"

    def __call__(
        self,
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: OutSharding = None,
    ) -> jax.Array:
        key = check_key(key)
        shape = canonical_shape(shape)
        if dtype is None:
            dtype = getattr(self, "dtype", None)
        if dtype is None:
            dtype = default_float_dtype()
        else:
            dtype = canonical_dtype(dtype, allow_int=self.supports_int)
        if not self.supports_complex and jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"{self.name} does not support complex dtypes; got dtype={dtype.name}. "
                "Use a floating-point dtype."
            )
        out_sharding = check_out_sharding(out_sharding, shape)
        with mesh_context(key, out_sharding):
            return self._init(key, shape, dtype, out_sharding)

    def _init(
        self, key: jax.Array, shape: Shape, dtype: np.dtype, out_sharding: OutSharding
    ) -> jax.Array:
        raise NotImplementedError

    def _fields_key(self) -> tuple:
        return tuple(_hashable(getattr(self, f.name)) for f in dataclasses.fields(self))

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return self._fields_key() == other._fields_key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._fields_key()))

    def __repr__(self) -> str:
        args = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and _hashable(value) == _hashable(f.default):
                continue
            if isinstance(value, np.dtype):
                value = value.name
            args.append(f"{f.name}={value!r}")
        return f"{self.name}({', '.join(args)})"
