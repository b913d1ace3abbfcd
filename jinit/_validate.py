"""Every check of user input, in one place.

A factory validates its hyperparameters with the ``check_*`` helpers when it is called;
an initializer canonicalizes its call arguments with ``canonical_*``/``check_*`` before
anything is traced. Each helper raises where the user wrote the mistake, with one message
that names the argument, echoes the value and says what is allowed: ``TypeError`` for a
wrong kind of value, ``ValueError`` for a wrong value of the right kind.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

Shape: TypeAlias = tuple[int, ...]
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
AxisSpec: TypeAlias = int | Sequence[int]

# Largest |z| a standard normal draw can reach in each compute precision (jax draws
# erfinv of a uniform on a grid of 2^-24 / 2^-53 steps: 5.4 and 8.3 standard deviations),
# with margin. Used to refuse a stddev whose draws could overflow the dtype.
_NORMAL_REACH = {4: 6.0, 8: 9.0}
C = TypeVar("C")


# --------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------


def is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def is_int(value: Any) -> bool:
    """A Python or NumPy integer (bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real_array(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return False
    return (
        np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_) or dtype.kind == "V"
    ) and not np.issubdtype(dtype, np.complexfloating)


def is_key(value: Any) -> bool:
    """A typed PRNG key, or raw ``uint32`` key data of the default implementation's shape."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return np.dtype(dtype) == np.uint32 and tuple(np.shape(value)) == _raw_key_shape()


def _raw_key_shape() -> tuple[int, ...]:
    return _raw_key_shape_for(jax.config.jax_default_prng_impl)  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=8)
def _raw_key_shape_for(impl_name: str) -> tuple[int, ...]:
    del impl_name  # the cache key: the default implementation is a config option
    return tuple(jax.random.key_data(jax.random.key(0)).shape)


# --------------------------------------------------------------------------------------
# Factory-time checks
# --------------------------------------------------------------------------------------


def check_bool(name: str, value: Any) -> bool:
    """Returns ``value`` if it is a bool; raises naming ``name`` otherwise.

    A truthy string such as ``"no"``, a ``None`` or a ``1`` must not silently pick a branch.
    """
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool; got {value!r} of type {type(value).__name__}.")
    return value


def check_choice(name: str, value: C, allowed: Sequence[str]) -> C:
    """Returns ``value`` if it is one of ``allowed``; raises naming them otherwise."""
    options = ", ".join(repr(a) for a in allowed)
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {options}; got {value!r}.")
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}.")
    return value


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An int (Python or NumPy; TypeError otherwise, floats and bools included) within
    ``[minimum, maximum]`` (ValueError otherwise). Returns a Python int."""
    what = "an int" if minimum is None else f"an int >= {minimum}"
    if maximum is not None:
        what += f" and <= {maximum}"
    if not is_int(value):
        raise TypeError(f"`{name}` must be {what}; got {value!r} of type {type(value).__name__}.")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"`{name}` must be {what}; got {_short(value)}.")
    return int(value)


def _as_float(name: str, value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # a Python int beyond float64 (10**400)
        raise ValueError(
            f"`{name}` is too large: {_short(value)} exceeds the float64 range (about 1.8e308)."
        ) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:18]}...{text[-8:]} ({len(text)} digits)"


def check_real(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_inf: bool = False,
) -> Any:
    """Validates a real scalar hyperparameter and returns it as a Python float.

    NaN is refused, and so is ±inf unless ``allow_inf`` (a truncation bound). Traced values
    (a factory called inside ``jax.jit``) are returned unchanged: they cannot be inspected,
    and jax accepts them too.
    """
    if is_tracer(value):
        return value
    if _is_typed_key(value):
        raise TypeError(f"`{name}` must be a real number; got a PRNG key {value!r}.")
    if isinstance(value, (bool, np.bool_)) or not (
        isinstance(value, numbers.Real) or (np.ndim(value) == 0 and _is_real_array(value))
    ):
        raise TypeError(f"`{name}` must be a real number; got {value!r} of type {type(value)}.")
    value = _as_float(name, value)
    if math.isnan(value):
        raise ValueError(f"`{name}` must not be NaN; got {value!r}.")
    if math.isinf(value) and not allow_inf:
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    if positive and not value > 0:
        raise ValueError(f"`{name}` must be positive; got {value!r}.")
    if nonnegative and not value >= 0:
        raise ValueError(f"`{name}` must be non-negative; got {value!r}.")
    return value


def _is_typed_key(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def check_real_or_array(name: str, value: Any, *, allow_inf: bool = False) -> Any:
    """A real scalar (returned as a float) or a real array of any shape (returned as is,
    after checking it holds no NaN, and no inf unless ``allow_inf``); jax broadcasts such
    hyperparameters against the weight's shape."""
    if is_tracer(value) or np.ndim(value) == 0:
        return check_real(name, value, allow_inf=allow_inf)
    if _is_typed_key(value) or not _is_real_array(value):
        raise TypeError(f"`{name}` must be a real number or a real array; got {value!r}.")
    host = np.asarray(value, dtype=np.float64)
    if np.isnan(host).any():
        raise ValueError(f"`{name}` must not contain NaN; got {value!r}.")
    if not allow_inf and np.isinf(host).any():
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    return value


def check_axes(name: str, axes: AxisSpec) -> int | tuple[int, ...]:
    """Validates an axis or a sequence of axes (ints); returns an int or a tuple of ints."""
    if is_int(axes):
        return operator.index(axes)  # type: ignore[arg-type]
    if isinstance(axes, Sequence) and not isinstance(axes, str):
        if all(is_int(a) for a in axes):
            return tuple(int(a) for a in axes)
    raise TypeError(f"`{name}` must be an int or a sequence of ints; got {axes!r}.")


def check_dtype_arg(name: str, dtype: Any, *, allow_int: bool = False) -> np.dtype | None:
    """Validates a ``dtype=`` factory argument (None or a float/complex dtype; integer and
    bool dtypes too for the constant initializers)."""
    if dtype is None:
        return None
    return canonical_dtype(dtype, name=name, allow_int=allow_int)


def check_out_sharding(out_sharding: Any, shape: Shape | None = None) -> OutSharding:
    """A NamedSharding/PartitionSpec that fits ``shape``, or None.

    The spec may not be longer than the weight's rank; a bare PartitionSpec needs a mesh
    in context (``jax.sharding.use_mesh``) and may only name that mesh's axes.
    """
    if out_sharding is None:
        return None
    if not isinstance(out_sharding, (NamedSharding, PartitionSpec)):
        raise TypeError(
            "`out_sharding` must be a jax.sharding.NamedSharding, a PartitionSpec or None; "
            f"got {out_sharding!r}."
        )
    if isinstance(out_sharding, NamedSharding):
        mesh, spec = out_sharding.mesh, out_sharding.spec
    else:
        mesh, spec = jax.sharding.get_abstract_mesh(), out_sharding
        if mesh.empty and spec_axis_names(spec):
            raise ValueError(
                f"`out_sharding`={out_sharding!r} names mesh axes but no mesh is set: pass a "
                "NamedSharding(mesh, spec), or call inside `with jax.sharding.set_mesh(mesh):`."
            )
    if shape is not None and len(spec) > len(shape):
        raise ValueError(
            f"`out_sharding`={out_sharding!r} has {len(spec)} entries, more than the rank of "
            f"the weight's shape {shape} ({len(shape)})."
        )
    unknown = [n for n in spec_axis_names(spec) if n not in mesh.axis_names]
    if unknown and not mesh.empty:
        raise ValueError(
            f"`out_sharding`={out_sharding!r} names axes {unknown} that the mesh does not have "
            f"(its axes: {tuple(mesh.axis_names)})."
        )
    return out_sharding


def spec_axis_names(spec: PartitionSpec) -> list[str]:
    names: list[str] = []
    for entry in spec:
        if entry is None or entry is PartitionSpec.UNCONSTRAINED:
            continue
        names.extend(entry if isinstance(entry, tuple) else (entry,))
    return names


# --------------------------------------------------------------------------------------
# Call-time canonicalization
# --------------------------------------------------------------------------------------


def default_float_dtype() -> np.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on (as in jax)."""
    return _default_float_dtype(bool(jax.config.jax_enable_x64))  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=2)
def _default_float_dtype(x64: bool) -> np.dtype:
    del x64  # the cache key
    return np.dtype(jnp.result_type(float))


def canonical_dtype(
    dtype: Any, *, name: str = "dtype", allow_complex: bool = True, allow_int: bool = False
) -> np.dtype:
    """Canonicalizes a user dtype to the numpy dtype jax will use (x64-aware)."""
    kinds = "a floating-point or complex dtype" if allow_complex else "a floating-point dtype"
    if isinstance(dtype, (np.ndarray, jax.Array)):
        raise TypeError(f"`{name}` must be {kinds}; got an array {dtype!r}.")
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"`{name}` must be {kinds}; got {dtype!r}.") from e
    np_dtype = np.dtype(jax.dtypes.canonicalize_dtype(np_dtype))
    is_float = jnp.issubdtype(np_dtype, jnp.floating)
    is_complex = jnp.issubdtype(np_dtype, jnp.complexfloating)
    is_int_or_bool = jnp.issubdtype(np_dtype, jnp.integer) or np_dtype == np.bool_
    if is_float or (allow_complex and is_complex) or (allow_int and is_int_or_bool):
        return np_dtype
    if is_int_or_bool:
        raise TypeError(
            f"`{name}` must be {kinds} (e.g. float32, bfloat16); got {np_dtype.name}. Random "
            "weights are not drawn as integers or booleans (zeros, ones and constant accept "
            "them)."
        )
    raise TypeError(f"`{name}` must be {kinds} (e.g. float32, bfloat16); got {np_dtype.name}.")


def canonical_shape(shape: Any) -> Shape:
    """Canonicalizes ``shape`` to a tuple of non-negative Python ints, as jax accepts it:
    an int, a sequence of ints (NumPy ints and bools too), or a 1-D integer array."""
    if is_int(shape) or isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    elif hasattr(shape, "dtype") and hasattr(shape, "shape") and not is_tracer(shape):
        if np.ndim(shape) != 1 or not _is_int_dtype(shape.dtype):
            raise TypeError(f"`shape` must be a sequence of ints; got {shape!r}.")
        shape = np.asarray(shape).tolist()
    elif not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise TypeError(f"`shape` must be an int or a sequence of ints; got {shape!r}.")
    dims = []
    for d in shape:
        try:
            if is_tracer(d) or isinstance(d, (float, np.floating)):
                raise TypeError
            d = operator.index(d)
        except TypeError:
            raise TypeError(
                f"`shape` must contain only ints; got {tuple(shape)!r} (element {d!r} of type "
                f"{type(d).__name__})."
            ) from None
        if d < 0:
            raise ValueError(f"`shape` must contain non-negative ints; got {tuple(shape)!r}.")
        dims.append(int(d))
    return tuple(dims)


def _is_int_dtype(dtype: Any) -> bool:
    dtype = np.dtype(dtype)
    return np.issubdtype(dtype, np.integer) or dtype == np.bool_


def check_key(key: Any) -> jax.Array:
    """Checks that ``key`` is a single PRNG key (typed, or raw uint32 data)."""
    kind = type(key)
    if kind.__module__.startswith("flax") and kind.__name__ in ("Rngs", "RngStream"):
        raise TypeError(
            f"`key` must be a PRNG key; got a flax {kind.__name__}. Pass rngs.params() "
            "(or another stream of it, e.g. rngs.dropout()), not the Rngs object."
        )
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"`key` must be a single PRNG key; got a key array of shape {key.shape}. "
                "Use jax.vmap to initialize with a batch of keys."
            )
        return key
    if dtype is not None and np.dtype(dtype) == np.uint32 and np.ndim(key) >= 1:
        expected = _raw_key_shape()
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


def normalize_axis(name: str, axis: int, ndim: int, shape: Shape) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`{name}`={axis} is out of range for a weight of shape {shape} "
            f"(rank {ndim}; allowed {-ndim}..{ndim - 1})."
        )
    return axis % ndim


def axes_tuple(name: str, axes: int | tuple[int, ...], shape: Shape) -> tuple[int, ...]:
    axes = (axes,) if isinstance(axes, int) else axes
    out = tuple(normalize_axis(name, a, len(shape), shape) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}`={axes!r} repeats an axis (shape {shape}).")
    return out


def check_broadcastable(name: str, value: Any, shape: Shape) -> None:
    """An array hyperparameter must broadcast to the weight's shape (jax broadcasts it)."""
    src = tuple(np.shape(value))
    ok = len(src) <= len(shape) and all(
        s in (1, d) for s, d in zip(reversed(src), reversed(shape), strict=False)
    )
    if not ok:
        raise ValueError(
            f"`{name}` of shape {src} cannot be broadcast to the requested shape {shape}."
        )


# --------------------------------------------------------------------------------------
# Overflow: no initializer returns NaN or inf
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def dtype_max(dtype: np.dtype) -> float:
    """The largest finite value of a float/complex dtype (of its real part)."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = np.dtype(np.array(0, dtype).real.dtype)
    return float(jnp.finfo(dtype).max)


def normal_reach(dtype: np.dtype) -> float:
    """A bound on |z| for a standard normal drawn for ``dtype`` (in its compute precision)."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = np.dtype(np.array(0, dtype).real.dtype)
    return _NORMAL_REACH[8] if dtype.itemsize >= 8 else _NORMAL_REACH[4]


def magnitude(value: Any) -> float:
    """``max |value|`` of a host scalar or array (0 for an empty array)."""
    if isinstance(value, (int, float)):
        return abs(float(value)) if abs(value) < 1e308 else math.inf
    host = np.abs(np.asarray(value, dtype=np.float64))
    return float(host.max()) if host.size else 0.0


def check_fits(
    name: str,
    value: Any,
    dtype: np.dtype,
    *,
    reach: float,
    detail: str = "",
    what: str = "weights could reach",
) -> None:
    """Refuses a hyperparameter that would make weights of ``dtype`` overflow to ±inf/NaN.

    ``reach`` is the largest |w| the hyperparameter can produce (e.g. ``6 * stddev``);
    traced hyperparameters are not checked (their values are not known).
    """
    if is_tracer(value) or is_tracer(reach):
        return
    limit = dtype_max(dtype)
    if not reach <= limit:
        how = f" ({detail})" if detail else ""
        raise ValueError(
            f"`{name}`={_short(value)} would overflow {np.dtype(dtype).name}: {what} "
            f"{reach:.4g}{how}, beyond the dtype's range ±{limit:.4g}. Use a smaller "
            f"`{name}` or a wider dtype."
        )


def check_int_value_fits(name: str, value: Any, dtype: np.dtype) -> None:
    """A constant written into an integer or bool dtype must be representable exactly."""
    dtype = np.dtype(dtype)
    host = np.asarray(value)
    if dtype == np.bool_:
        return
    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        if host.size and (np.iscomplexobj(host) or np.isnan(host.astype(np.float64)).any()):
            raise ValueError(f"`{name}`={_short(value)} cannot be stored as {dtype.name}.")
        lo = host.min() if host.size else 0
        hi = host.max() if host.size else 0
        if lo < info.min or hi > info.max:
            raise ValueError(
                f"`{name}`={_short(value)} is outside the range of {dtype.name} "
                f"[{info.min}, {info.max}]."
            )


# --------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def factory(public_name: str) -> Callable[[F], F]:
    """Marks a public factory: a factory passed uncalled as an initializer is reported.

    ``kernel_init=jinit.he_normal`` (instead of ``jinit.he_normal()``) makes a layer call
    ``he_normal(key, shape, dtype)``: the key lands in the first hyperparameter. That is
    caught here, before any hyperparameter check, with a message saying what to write.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if args and _looks_like_init_call(args):
                raise TypeError(
                    f"{public_name} is a factory, not an initializer: it was called with a "
                    f"PRNG key ({public_name}(key, shape, ...)). Call it first and pass the "
                    f"result: kernel_init={public_name}(), not kernel_init={public_name}."
                )
            return fn(*args, **kwargs)

        checked.__jinit_factory__ = public_name  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return wrap


def _looks_like_init_call(args: tuple) -> bool:
    first = args[0]
    if _is_typed_key(first):
        return True
    # A raw uint32[2] key followed by a shape: the protocol's (key, shape, ...).
    return (
        len(args) >= 2 and is_key(first) and (is_int(args[1]) or isinstance(args[1], (tuple, list)))
    )
