"""``get(identifier)``: initializers by name, by dict spec, or as given."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinit import _initializers as core
from jinit import _structured, keras, torch
from jinit._core import Initializer


def _table(*modules: Any) -> dict[str, Any]:
    """Every public name of ``modules`` that is an initializer or a factory returning one
    (derived from each module's ``__all__``, so a new catalog entry is found by get)."""
    table: dict[str, Any] = {}
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, Initializer) or _returns_initializer(obj):
                table[name] = obj
    return table


def _returns_initializer(fn: Any) -> bool:
    annotation = getattr(fn, "__annotations__", {}).get("return")
    return annotation in (Initializer, "Initializer")


_CORE = _table(core, _structured)
_KERAS = _table(keras)
# keras.initializers.get's own aliases (Keras 3).
_KERAS.update(
    {
        "orthogonal_initializer": keras.orthogonal,
        "identity_initializer": keras.identity,
        "zeros": core.zeros,
        "zero": core.zeros,
        "ones": core.ones,
        "one": core.ones,
        "constant": core.constant,
    }
)
_NAMESPACES: dict[str, dict[str, Any]] = {
    "": _CORE,
    "torch": {name: getattr(torch, name) for name in torch.__all__},
    "keras": _KERAS,
}
_PREFIXES = {"torch.nn.init.": "torch", "torch.": "torch", "keras.initializers.": "keras"}
_PREFIXES["keras."] = "keras"


def known_names() -> list[str]:
    """Every name :func:`get` accepts in canonical form (``"he_normal"``, ``"torch.eye"``...)."""
    return [
        f"{space}.{name}" if space else name
        for space, table in _NAMESPACES.items()
        for name in sorted(table)
    ]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _lookup(identifier: str) -> Any:
    text = identifier.strip()
    for prefix, space in _PREFIXES.items():
        if text.startswith(prefix):
            name = _snake(text[len(prefix) :]).rstrip("_")
            return _NAMESPACES[space].get(name)
    # Unprefixed: PyTorch's in-place spelling (``kaiming_normal_``) means torch semantics,
    # Keras' class spelling (``HeNormal``) Keras semantics; otherwise the core catalog.
    if text.endswith("_"):
        order = ("torch", "")
    elif text[:1].isupper():
        order = ("keras", "")
    else:
        order = ("", "keras")  # Keras' lowercase aliases ("one", "random_normal")
    name = _snake(text).rstrip("_")
    for space in order:
        if name in _NAMESPACES[space]:
            return _NAMESPACES[space][name]
    return None


def _unknown(identifier: str) -> ValueError:
    names = known_names()
    close = difflib.get_close_matches(_snake(identifier.strip()).rstrip("_"), names, n=5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"Unknown initializer {identifier!r}.{hint} Known names: {', '.join(names)}.")


def _from_keras_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keras' ``{"class_name": ..., "config": {...}}`` as a jinit dict spec."""
    name = config["class_name"]
    kwargs = dict(config.get("config") or {})
    seed = kwargs.pop("seed", None)
    if seed is not None:
        raise ValueError(
            f"Keras config {dict(config)!r} has seed={seed!r}: jinit draws from the key passed "
            "at call time; drop the seed and pass jax.random.key(seed) to the initializer."
        )
    for axes in ("input_axes", "output_axes"):  # Keras 3.1x fan axes: only the default
        if kwargs.pop(axes, None) is not None:
            raise ValueError(
                f"Keras config {dict(config)!r} sets `{axes}`, which jinit.keras does not "
                "take; use jinit.variance_scaling(..., in_axis=..., out_axis=...) instead."
            )
    if isinstance(name, str) and not name.startswith(("keras.", "torch.")) and name[:1].isupper():
        name = f"keras.{name}"
    return {"name": name, **kwargs}


def get(identifier: str | Mapping[str, Any] | Callable | None) -> Callable | None:
    """Returns an initializer from a name, a dict spec, or a callable.

    Names are matched loosely: ``"he_normal"``, ``"HeNormal"`` (Keras spelling),
    ``"kaiming_normal_"`` (PyTorch's in-place spelling, with PyTorch's semantics), and
    prefixed ``"torch.kaiming_uniform"`` / ``"keras.glorot_uniform"``. A name stands for
    the factory called with its defaults. A dict ``{"name": ..., **kwargs}`` calls the
    factory with ``kwargs``; Keras' serialized form ``{"class_name": "HeNormal",
    "config": {...}}`` works too. A callable (an initializer) is returned as is, and None
    gives None (as ``keras.initializers.get``).

    Keras' class names and aliases (``"OrthogonalInitializer"``, ``"GlorotUniform"``,
    ``"one"``) mean Keras semantics. Unprefixed snake-case names mean jinit's (jax's)
    catalog: ``"uniform"`` is ``U[0, 0.01)`` as in jax, not Keras' ``RandomUniform``.

    Args:
      identifier: a name, a dict spec, or a callable.

    Returns:
      An initializer.

    Raises:
      ValueError: for an unknown name (the message lists the closest known names) or a
        dict spec without ``"name"``.
      TypeError: for arguments the factory does not accept, or an identifier of another
        type.

    Examples:
      >>> import jinit
      >>> jinit.get("he_normal") == jinit.he_normal()
      True
      >>> jinit.get("HeNormal") == jinit.keras.he_normal()  # Keras spelling, Keras fans
      True
      >>> jinit.get({"name": "variance_scaling", "scale": 2.0, "mode": "fan_in",
      ...            "distribution": "normal"})
      variance_scaling(scale=2.0, mode='fan_in', distribution='normal')
      >>> jinit.get("kaiming_normal_")  # PyTorch semantics: untruncated
      variance_scaling(scale=2.0, mode='fan_in', distribution='normal')
    """
    if identifier is None:
        return None
    if isinstance(identifier, Mapping) and "class_name" in identifier and "name" not in identifier:
        identifier = _from_keras_config(identifier)
    if isinstance(identifier, Initializer) or (
        callable(identifier) and not isinstance(identifier, (str, Mapping))
    ):
        return identifier
    if isinstance(identifier, str):
        found = _lookup(identifier)
        if found is None:
            raise _unknown(identifier)
        if isinstance(found, Initializer):
            return found
        try:
            return found()
        except TypeError as e:
            raise TypeError(
                f"Initializer {identifier!r} needs arguments ({e}); pass a dict spec such "
                f"as {{'name': {identifier!r}, ...}}."
            ) from None
    if isinstance(identifier, Mapping):
        spec = dict(identifier)
        name = spec.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"A dict spec needs a string 'name'; got {dict(identifier)!r}.")
        found = _lookup(name)
        if found is None:
            raise _unknown(name)
        if isinstance(found, Initializer):
            if spec:
                raise TypeError(f"Initializer {name!r} takes no arguments; got {spec!r}.")
            return found
        try:
            return found(**spec)
        except TypeError as e:
            raise TypeError(f"Bad arguments for initializer {name!r}: {e}") from None
    raise TypeError(
        "`identifier` must be a name, a dict spec {'name': ..., ...} or an initializer; "
        f"got {identifier!r} of type {type(identifier).__name__}."
    )
