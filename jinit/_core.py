"""The Initializer protocol, argument canonicalization and checks, and fan computation.

Everything a user passes to jinit goes through one of the ``check_*`` / ``canonical_*``
helpers here, so a mistake is reported where the user wrote it, with a message that
names the argument, echoes the value and says what is allowed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any, ClassVar, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

Shape: TypeAlias = tuple[int, ...]
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
AxisSpec: TypeAlias = int | Sequence[int]

__all__ = [
    "Initializer",
    "compute_fans",
]


# --------------------------------------------------------------------------------------
# Argument checks (factory time)
# --------------------------------------------------------------------------------------


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Returns ``value`` if it is one of ``allowed``; raises a ValueError naming them."""
    options = ", ".join(repr(a) for a in allowed)
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {options}; got {value!r}.")
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}.")
    return value


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_real(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False):
    """Validates a real scalar hyperparameter and returns it as a Python float.

    Traced values (a factory called inside ``jax.jit`` with a traced scale) are returned
    unchanged: they cannot be inspected, and jax accepts them too.
    """
    if _is_tracer(value):
        return value
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) or (np.ndim(value) == 0 and _is_real_array(value))
    ):
        raise TypeError(f"`{name}` must be a real number; got {value!r} of type {type(value)}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"`{name}` must not be NaN; got {value!r}.")
    if positive and not value > 0:
        raise ValueError(f"`{name}` must be positive; got {value!r}.")
    if nonnegative and not value >= 0:
        raise ValueError(f"`{name}` must be non-negative; got {value!r}.")
    return value


def _is_real_array(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    return (
        dtype is not None
        and np.issubdtype(np.dtype(dtype), np.number)
        and not (np.issubdtype(np.dtype(dtype), np.complexfloating))
    )


def check_axes(name: str, axes: AxisSpec) -> int | tuple[int, ...]:
    """Validates an axis or a sequence of axes (ints); returns an int or a tuple of ints."""
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        return int(axes)
    if isinstance(axes, Sequence) and not isinstance(axes, str):
        if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            return tuple(int(a) for a in axes)
    raise TypeError(f"`{name}` must be an int or a sequence of ints; got {axes!r}.")


def check_dtype_arg(name: str, dtype: Any) -> np.dtype | None:
    """Validates a ``dtype=`` factory argument (None or a float/complex dtype)."""
    if dtype is None:
        return None
    return canonical_dtype(dtype, name=name, allow_complex=True)


# --------------------------------------------------------------------------------------
# Call-time canonicalization
# --------------------------------------------------------------------------------------


def default_float_dtype() -> np.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on (as in jax)."""
    return np.dtype(jnp.result_type(float))


def canonical_dtype(dtype: Any, *, name: str = "dtype", allow_complex: bool = True) -> np.dtype:
    """Canonicalizes a user dtype to a numpy dtype that jax will use (x64-aware)."""
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"`{name}` must be a floating-point dtype; got {dtype!r}.") from e
    np_dtype = np.dtype(jax.dtypes.canonicalize_dtype(np_dtype))
    is_float = jnp.issubdtype(np_dtype, jnp.floating)
    is_complex = jnp.issubdtype(np_dtype, jnp.complexfloating)
    if not (is_float or (allow_complex and is_complex)):
        kinds = "a floating-point or complex dtype" if allow_complex else "a floating-point dtype"
        raise TypeError(
            f"`{name}` must be {kinds} (e.g. float32, bfloat16); got {np_dtype.name}. "
            "Weights are not initialized as integers or booleans."
        )
    return np_dtype


def canonical_shape(shape: Any) -> Shape:
    """Canonicalizes ``shape`` to a tuple of non-negative Python ints."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        raise TypeError(
            f"`shape` must be a sequence of ints such as ({int(shape)},); got {shape!r}."
        )
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        if not isinstance(shape, np.ndarray):
            raise TypeError(f"`shape` must be a sequence of ints; got {shape!r}.")
    dims = []
    for d in shape:
        if not isinstance(d, (int, np.integer)) or isinstance(d, (bool, np.bool_)):
            try:
                if isinstance(d, (bool, np.bool_)):
                    raise TypeError
                d = operator.index(d)
            except TypeError:
                raise TypeError(
                    f"`shape` must contain only ints; got {shape!r} (element {d!r} of type "
                    f"{type(d).__name__})."
                ) from None
        if d < 0:
            raise ValueError(f"`shape` must contain non-negative ints; got {tuple(shape)!r}.")
        dims.append(int(d))
    return tuple(dims)


@functools.lru_cache(maxsize=8)
def _raw_key_shape(impl_name: str) -> tuple[int, ...]:
    """Shape of a raw key of the default PRNG implementation (``(2,)`` for threefry)."""
    del impl_name  # the cache key: the default implementation is a config option
    return tuple(jax.random.key_data(jax.random.key(0)).shape)


def check_key(key: Any) -> jax.Array:
    """Checks that ``key`` is a single PRNG key (typed, or raw uint32 data)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"`key` must be a single PRNG key; got a key array of shape {key.shape}. "
                "Use jax.vmap to initialize with a batch of keys."
            )
        return key
    if dtype is not None and np.dtype(dtype) == np.uint32 and np.ndim(key) >= 1:
        expected = _raw_key_shape(jax.config.jax_default_prng_impl)
        if tuple(np.shape(key)) != tuple(expected):
            raise ValueError(
                f"`key` must be a single PRNG key; got a raw uint32 key of shape "
                f"{tuple(np.shape(key))}, expected {tuple(expected)}. Use jax.vmap to "
                "initialize with a batch of keys."
            )
        return key
    raise TypeError(
        "`key` must be a PRNG key from jax.random.key(seed) or jax.random.PRNGKey(seed); "
        f"got {key!r} of type {type(key).__name__}."
    )


def check_out_sharding(out_sharding: Any) -> OutSharding:
    if out_sharding is None or isinstance(out_sharding, (NamedSharding, PartitionSpec)):
        return out_sharding
    raise TypeError(
        "`out_sharding` must be a jax.sharding.NamedSharding, a PartitionSpec or None; "
        f"got {out_sharding!r}."
    )


def _spec_axis_names(spec: PartitionSpec) -> list[str]:
    names: list[str] = []
    for entry in spec:
        if entry is None:
            continue
        names.extend(entry if isinstance(entry, tuple) else (entry,))
    return names


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
        return jax.sharding.set_mesh(out_sharding.mesh)
    return contextlib.nullcontext()


def normalize_axis(name: str, axis: int, ndim: int, shape: Shape) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`{name}`={axis} is out of range for a weight of shape {shape} "
            f"(rank {ndim}; allowed {-ndim}..{ndim - 1})."
        )
    return axis % ndim


def _axes_tuple(name: str, axes: int | tuple[int, ...], shape: Shape) -> tuple[int, ...]:
    axes = (axes,) if isinstance(axes, int) else axes
    out = tuple(normalize_axis(name, a, len(shape), shape) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}`={axes!r} repeats an axis (shape {shape}).")
    return out


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
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, np.dtype):
        return ("dtype", value.name)
    if _is_tracer(value):
        return ("id", id(value))
    if isinstance(value, (np.ndarray, jax.Array)):
        arr = np.asarray(value)
        return ("array", arr.shape, arr.dtype.name, arr.tobytes())
    if isinstance(value, Initializer):
        return value
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


_INTERN_LIMIT = 4096
_interned: dict[Any, Any] = {}


class _Interned(type):
    """Metaclass: building an initializer equal to a live one returns that one.

    jax's jit cache holds functions weakly and is hit by equal, hashable functions that
    are still alive; interning keeps one canonical instance of each initializer alive,
    so ``jax.jit(jinit.he_normal())`` compiles once in a process, not once per build.
    The table is bounded; initializers holding tracers are never interned.
    """

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(
            [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        )):  # fmt: skip
            return obj
        existing = _interned.get(obj)
        if existing is not None:
            return existing
        if len(_interned) >= _INTERN_LIMIT:
            del _interned[next(iter(_interned))]
        _interned[obj] = obj
        return obj


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Initializer(metaclass=_Interned):
    """Base class of every jinit initializer: a frozen value implementing the protocol.

    ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``, exactly as in
    :mod:`jax.nn.initializers`. Initializers built with equal arguments are equal and
    hash equally, so ``jax.jit(jinit.he_normal())`` reuses one compiled program however
    many times the initializer is rebuilt.

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
        dtype = default_float_dtype() if dtype is None else canonical_dtype(dtype)
        if not self.supports_complex and jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"{self.name} does not support complex dtypes; got dtype={dtype.name}. "
                "Use a floating-point dtype."
            )
        out_sharding = check_out_sharding(out_sharding)
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
