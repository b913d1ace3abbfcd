"""``get(identifier)``: initializers by name, by dict spec, or as given."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinit import _initializers as core
from jinit import _structured, keras, torch
from jinit._core import Initializer

_CORE: dict[str, Any] = {
    name: getattr(core, name)
    for name in (
        "zeros",
        "ones",
        "constant",
        "uniform",
        "normal",
        "truncated_normal",
        "variance_scaling",
        "glorot_uniform",
        "glorot_normal",
        "xavier_uniform",
        "xavier_normal",
        "lecun_uniform",
        "lecun_normal",
        "he_uniform",
        "he_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "orthogonal",
        "delta_orthogonal",
    )
}
_CORE.update(
    {
        name: getattr(_structured, name)
        for name in ("identity", "dirac", "sparse", "uniform_unit_scaling")
    }
)
_NAMESPACES: dict[str, dict[str, Any]] = {
    "": _CORE,
    "torch": {name: getattr(torch, name) for name in torch.__all__},
    "keras": {name: getattr(keras, name) for name in keras.__all__},
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
        order = ("",)
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


def get(identifier: str | Mapping[str, Any] | Callable) -> Callable:
    """Returns an initializer from a name, a dict spec, or a callable.

    Names are matched loosely: ``"he_normal"``, ``"HeNormal"`` (Keras spelling),
    ``"kaiming_normal_"`` (PyTorch's in-place spelling, with PyTorch's semantics), and
    prefixed ``"torch.kaiming_uniform"`` / ``"keras.glorot_uniform"``. A name stands for
    the factory called with its defaults. A dict ``{"name": ..., **kwargs}`` calls the
    factory with ``kwargs``. A callable (an initializer) is returned as is.

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
