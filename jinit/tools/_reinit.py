"""Re-initialize the parameters of an existing model by patterns on their paths.

PyTorch users write ``model.apply(_init_weights)``; :func:`reinit` is the JAX/Flax
equivalent for models whose initializers are not exposed: an ordered list of
``path pattern -> initializer`` rules applied to a linen params/variables dict, an
``nnx.Module`` or an ``nnx.State``.

Every new value is drawn from a key derived from the user's key and the parameter's path
(:func:`path_key`), so adding or removing a parameter never changes the others. All the
draws of one call are made by one program compiled with :func:`jinit.fast_init`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core import check_key
from jinit._registry import get
from jinit._table import format_table
from jinit.tools import _capture

__all__ = ["ReinitReport", "path_key", "reinit"]


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def _path_words(path: str) -> tuple[np.uint32, np.uint32]:
    digest = hashlib.sha256(path.encode("utf-8")).digest()
    return (
        np.uint32(int.from_bytes(digest[0:4], "big")),
        np.uint32(int.from_bytes(digest[4:8], "big")),
    )


def path_key(key: jax.Array, path: str) -> jax.Array:
    """The key :func:`reinit` uses for the parameter at ``path``.

    ``fold_in(fold_in(key, w0), w1)``, where ``w0`` and ``w1`` are the first two big-endian
    32-bit words of the SHA-256 digest of the UTF-8 path string. The key depends only on
    ``key`` and the path (64 bits of it), never on the other parameters.

    Args:
      key: a typed (``jax.random.key``) or raw (``jax.random.PRNGKey``) key.
      path: the parameter path, ``"/"``-separated (``"blocks_0/attn/out/kernel"``).

    Returns:
      A key of the same kind as ``key``.

    Examples:
      >>> import jax
      >>> from jinit.tools._reinit import path_key
      >>> k = path_key(jax.random.key(0), "head/kernel")
      >>> bool((jax.random.key_data(k) == jax.random.key_data(
      ...     path_key(jax.random.key(0), "head/kernel"))).all())
      True
    """
    w0, w1 = _path_words(path)
    return jax.random.fold_in(jax.random.fold_in(key, w0), w1)


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern:
    """``a/*/kernel``, ``**/bias`` -> a regex matched against ``"/" + path``."""
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append("(?:/[^/]+)*")
            continue
        if "**" in segment:
            raise ValueError(
                f"reinit: rule {pattern!r}: `**` must be a whole path segment ('a/**/kernel'); "
                f"got the segment {segment!r}. Use `*` inside a segment."
            )
        if not segment:
            raise ValueError(
                f"reinit: rule {pattern!r}: empty path segment; patterns are '/'-separated names "
                "such as 'encoder/*/kernel', without leading, trailing or doubled '/'."
            )
        body = "".join(
            "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment
        )
        parts.append("/" + body)
    return re.compile("".join(parts))


@dataclasses.dataclass(frozen=True)
class _Rule:
    label: str  # how the report and errors name the rule
    regex: re.Pattern
    glob: bool  # glob regexes match "/" + path; user regexes match path
    init: Callable | None  # None: keep the matched parameters as they are

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch("/" + path if self.glob else path) is not None


def _parse_rules(rules: Any) -> list[_Rule]:
    if isinstance(rules, Mapping):
        pairs = list(rules.items())
    elif isinstance(rules, Sequence) and not isinstance(rules, (str, bytes)):
        pairs = []
        for i, item in enumerate(rules):
            if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
                raise TypeError(
                    "`rules` must be a mapping {pattern: initializer} or a sequence of "
                    f"(pattern, initializer) pairs; item {i} is {item!r}."
                )
            pairs.append(tuple(item))
    else:
        raise TypeError(
            "`rules` must be a mapping {pattern: initializer} or a sequence of "
            f"(pattern, initializer) pairs; got {rules!r} of type {type(rules).__name__}."
        )
    parsed = []
    for pattern, spec in pairs:
        if isinstance(pattern, re.Pattern):
            label, regex, glob = f"re.compile({pattern.pattern!r})", pattern, False
        elif isinstance(pattern, str):
            if not pattern:
                raise ValueError(
                    "reinit: rule '': a pattern must not be empty; '**' matches every path."
                )
            label, regex, glob = pattern, _glob_to_regex(pattern), True
        else:
            raise TypeError(
                "reinit: rule patterns must be glob strings ('blocks_*/attn/out/kernel') or "
                f"compiled regexes (re.compile(...)); got {pattern!r} of type "
                f"{type(pattern).__name__}."
            )
        try:
            init = None if spec is None else get(spec)
        except (TypeError, ValueError) as e:
            raise type(e)(f"reinit: rule {label!r}: bad initializer {spec!r}: {e}") from None
        parsed.append(_Rule(label, regex, glob, init))
    return parsed


# --------------------------------------------------------------------------------------
# Targets: {path: leaf} and how to rebuild them
# --------------------------------------------------------------------------------------


def _is_collections_dict(tree: Mapping) -> bool:
    """A linen variables dict ``{'params': {...}, 'batch_stats': {...}}``, not a params dict."""
    return "params" in tree and all(isinstance(v, Mapping) for v in tree.values())


def _flatten(tree: Mapping, prefix: tuple = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, (*prefix, k)))
        else:
            out["/".join(str(p) for p in (*prefix, k))] = v
    return out


def _replace(tree: Mapping, new: Mapping[str, Any], prefix: tuple = ()) -> Any:
    """A copy of the nested mapping ``tree`` with the leaves at the paths of ``new`` replaced
    (a FrozenDict stays a FrozenDict, metadata boxes are kept)."""
    from flax.core import FrozenDict

    items = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            items[k] = _replace(v, new, (*prefix, k))
        else:
            path = "/".join(str(p) for p in (*prefix, k))
            items[k] = _capture.rebox(v, new[path]) if path in new else v
    return FrozenDict(items) if isinstance(tree, FrozenDict) else items


def _target_params(target: Any) -> tuple[dict[str, Any], Callable[[dict[str, Any]], Any]]:
    """``({path: array or ShapeDtypeStruct}, rebuild(new_values) -> result)``."""
    from flax import nnx

    if isinstance(target, nnx.Module):
        flat = list(nnx.to_flat_state(nnx.state(target, nnx.Param)))
        names = {"/".join(str(p) for p in path): (path, var) for path, var in flat}

        def rebuild_module(new: dict[str, Any]) -> Any:
            items = [(path, var.replace(new[n])) for n, (path, var) in names.items() if n in new]
            if items:
                nnx.update(target, nnx.from_flat_state(items))
            return target

        return {n: v.get_value() for n, (_, v) in names.items()}, rebuild_module

    if isinstance(target, nnx.State):
        flat = list(nnx.to_flat_state(target))
        names = {
            "/".join(str(p) for p in path): (path, var)
            for path, var in flat
            if isinstance(var, nnx.Param) or not isinstance(var, nnx.Variable)
        }

        def rebuild_state(new: dict[str, Any]) -> Any:
            items = []
            for path, var in flat:
                n = "/".join(str(p) for p in path)
                if n in new and n in names:
                    var = var.replace(new[n]) if isinstance(var, nnx.Variable) else new[n]
                items.append((path, var))
            return nnx.from_flat_state(items)

        current = {
            n: v.get_value() if isinstance(v, nnx.Variable) else v for n, (_, v) in names.items()
        }
        return current, rebuild_state

    if isinstance(target, Mapping):
        from flax.core import FrozenDict

        if _is_collections_dict(target):
            params = target["params"]

            def rebuild_variables(new: dict[str, Any]) -> Any:
                items = {k: (_replace(v, new) if k == "params" else v) for k, v in target.items()}
                return FrozenDict(items) if isinstance(target, FrozenDict) else items

            leaves = _flatten(params)
            return {n: _capture.unbox(v) for n, v in leaves.items()}, rebuild_variables

        leaves = _flatten(target)
        return {n: _capture.unbox(v) for n, v in leaves.items()}, lambda new: _replace(target, new)

    raise TypeError(
        "`target` must be a linen variables or params dict, an nnx.Module or an nnx.State; "
        f"got {type(target).__name__}."
    )


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _describe(init: Any) -> str:
    """A jinit initializer's repr (``normal(stddev=0.02)``), or a function's qualified name."""
    name = getattr(init, "__qualname__", None)
    if init is None:
        return "(keep)"
    if not isinstance(name, str) or isinstance(init, jax.tree_util.Partial):
        return repr(init)
    return name.replace(".<locals>", "")


@dataclasses.dataclass
class ReinitReport:
    """What :func:`reinit` did, by parameter path (``"blocks_0/attn/out/kernel"``).

    Attributes:
      by_rule: rule -> the parameter paths it initialized, in the target's order. Rules are
        named as written (a glob string, or ``re.compile('...')`` for a regex).
      initializers: rule -> the initializer it resolved to (through :func:`jinit.get`), or
        None for a rule that keeps its parameters.
      kept: parameter paths whose values were kept: matched by no rule or by a ``None``
        rule.
      shapes: parameter path -> ``(shape, dtype name)``, for every parameter.

    ``print(report)`` gives a one-line summary and a small table with one row per rule
    (its initializer, how many parameters it matched and the first of them) and one for
    the parameters no rule matched; :meth:`details` has one row per initialized parameter.

    Examples:
      >>> import jax, jinit
      >>> params = {"fc": {"kernel": jax.numpy.ones((4, 3)), "bias": jax.numpy.ones(3)}}
      >>> params, report = jinit.reinit(params, {"fc/bias": "zeros"}, jax.random.key(0))
      >>> report.by_rule, report.kept
      ({'fc/bias': ['fc/bias']}, ['fc/kernel'])
      >>> print(report)
      reinit: 1 of 2 parameters re-initialized by 1 rule; 1 kept
      rule         initializer  count  parameters
      -----------  -----------  -----  ----------
      fc/bias      zeros        1      fc/bias
      (unmatched)  (keep)       1      fc/kernel
      >>> print(report.details())
      parameter  shape  dtype    rule     initializer
      ---------  -----  -------  -------  -----------
      fc/bias    (3,)   float32  fc/bias  zeros
    """

    by_rule: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    initializers: dict[str, Any] = dataclasses.field(default_factory=dict)
    kept: list[str] = dataclasses.field(default_factory=list)
    shapes: dict[str, tuple[tuple[int, ...], str]] = dataclasses.field(default_factory=dict)

    @property
    def initialized(self) -> dict[str, str]:
        """Parameter path -> the rule that initialized it (``None`` rules excluded)."""
        return {
            p: rule
            for rule, paths in self.by_rule.items()
            if self.initializers[rule] is not None
            for p in paths
        }

    def details(self) -> str:
        """A table with one row per initialized parameter: path, shape, dtype, rule,
        initializer."""
        rows = [
            [p, str(self.shapes[p][0]), self.shapes[p][1], rule, _describe(self.initializers[rule])]
            for rule, paths in self.by_rule.items()
            if self.initializers[rule] is not None
            for p in paths
        ]
        return format_table(["parameter", "shape", "dtype", "rule", "initializer"], rows)

    def __str__(self) -> str:
        n_init = len(self.initialized)
        n_rules = len(self.by_rule)
        head = (
            f"reinit: {n_init} of {len(self.shapes)} parameters re-initialized by "
            f"{n_rules} rule{'' if n_rules == 1 else 's'}; {len(self.kept)} kept"
        )
        rows = [
            [rule, _describe(self.initializers[rule]), len(paths), _first(paths)]
            for rule, paths in self.by_rule.items()
        ]
        matched = {p for paths in self.by_rule.values() for p in paths}
        unmatched = [p for p in self.kept if p not in matched]
        if unmatched:
            rows.append(["(unmatched)", "(keep)", len(unmatched), _first(unmatched)])
        table = format_table(["rule", "initializer", "count", "parameters"], rows)
        return head + "\n" + table


def _first(paths: list[str], n: int = 2) -> str:
    more = f", ... (+{len(paths) - n})" if len(paths) > n else ""
    return ", ".join(paths[:n]) + more


# --------------------------------------------------------------------------------------
# reinit
# --------------------------------------------------------------------------------------


def _nothing_matched(rule: _Rule, paths: list[str], taken: dict[str, str]) -> ValueError:
    shadowed = [p for p in paths if rule.matches(p)]
    if shadowed:
        by = sorted({taken[p] for p in shadowed})
        return ValueError(
            f"reinit: rule {rule.label!r} initializes no parameter: every path it matches "
            f"({', '.join(repr(p) for p in shadowed[:5])}{', ...' if len(shadowed) > 5 else ''}) "
            f"is taken by an earlier rule ({', '.join(repr(r) for r in by)}); the first "
            "matching rule wins. Move it before those rules or remove it."
        )
    close = difflib.get_close_matches(rule.label, paths, n=5, cutoff=0.3) or paths[:5]
    return ValueError(
        f"reinit: rule {rule.label!r} matches no parameter. Nearest parameter paths: "
        f"{', '.join(repr(p) for p in close)}. A glob pattern matches the whole "
        "'/'-separated path: `*` stands for one segment (or part of one), `**` for any "
        "number of segments ('**/kernel' matches every kernel)."
    )


def reinit(target: Any, rules: Any, key: Any) -> tuple[Any, ReinitReport]:
    r"""Re-initializes a model's parameters by patterns on their paths.

    The JAX/Flax counterpart of PyTorch's ``model.apply(_init_weights)``, for models whose
    initializers are not exposed (or a pretrained model whose head is to be reset).

    **Paths.** A parameter's path is its keys joined with ``/``: ``"Dense_0/kernel"`` in a
    linen params dict, ``"layers/0/kernel"`` in an nnx model. In a linen variables dict
    (``{"params": ..., "batch_stats": ...}``) only the ``params`` collection is considered
    and the collection name is not part of the path (so a variables dict and its
    ``["params"]`` give the same values); in nnx, only ``nnx.Param`` variables.

    **Patterns.** A string is a glob matched against the whole path: ``*`` matches any
    characters within one segment (``"blocks_*/mlp/*/kernel"``), ``?`` one character,
    ``**`` (a whole segment) any number of segments, none included (``"**/bias"`` is every
    bias, ``"encoder/**"`` everything under ``encoder``); other characters are literal. A
    compiled regex (``re.compile(r"h_\d+/attn/.*")``) is matched with ``fullmatch``. Rules are
    tried in order and the first match wins; parameters no rule matches keep their values.
    A rule that initializes nothing is an error (the message lists the nearest paths), so
    a typo cannot pass silently.

    **Keys.** The parameter at ``path`` is drawn with ``init(path_key(key, path), shape,
    dtype)``, where ``path_key(key, path) = fold_in(fold_in(key, w0), w1)`` with ``w0, w1``
    the first two 32-bit words of the SHA-256 of the path. A parameter's values depend only
    on ``key``, its path, shape, dtype and the rule that matches it: adding, removing or
    renaming other parameters, or rules that match only other parameters, never changes
    them.

    **Dtypes and placement.** The new value has the old one's shape and dtype (the
    initializer is called with that dtype; a callable returning another dtype is cast) and
    is placed with the old array's sharding; under a mesh each device draws only its own
    shards. An abstract target (``jax.ShapeDtypeStruct`` leaves, from ``jax.eval_shape``
    or ``nnx.eval_shape``) gets concrete values for every parameter a rule matches. All
    draws of one call are made by one program compiled with :func:`jinit.fast_init`; a
    later call with the same rules on a model of the same structure reuses it, whatever
    the key.

    Args:
      target: a linen variables or params dict (``dict`` or ``FrozenDict``; a new one of the
        same kind is returned, the input is not modified), an ``nnx.Module`` (updated in
        place) or an ``nnx.State`` (a new State is returned).
      rules: an ordered mapping ``{pattern: initializer}`` or a sequence of
        ``(pattern, initializer)`` pairs. An initializer is anything :func:`jinit.get`
        accepts: a name (``"zeros"``, ``"torch.linear_default"``), a dict spec
        (``{"name": "normal", "stddev": 0.02}``), an initializer
        (``jinit.gpt2_residual_normal(12)``) or any ``init(key, shape, dtype)`` callable;
        ``None`` keeps the matched parameters as they are (and so shields them from later
        rules: ``{"backbone/**": None, "**": "he_normal"}``).
      key: a typed (``jax.random.key``) or raw (``jax.random.PRNGKey``) key.

    Returns:
      ``(result, report)``: the new dict or State (the same module for an ``nnx.Module``)
      and a :class:`ReinitReport` listing which parameters each rule initialized.

    Raises:
      TypeError: for a ``target``, ``rules``, pattern or ``key`` of the wrong kind, or an
        initializer spec of the wrong kind (the message names the rule).
      ValueError: for an unknown initializer or bad spec (naming the rule), a rule that
        initializes no parameter (naming the rule and the nearest paths), or a parameter
        the rule's initializer cannot take (e.g. ``orthogonal`` on a 1-D bias; naming the
        path, its shape and the rule).

    Examples:
      >>> import jax, jinit
      >>> from flax import linen as nn
      >>> model = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(4)])
      >>> variables = model.init(jax.random.key(0), jax.numpy.ones((1, 8)))
      >>> variables, report = jinit.reinit(
      ...     variables,
      ...     {"layers_2/kernel": "zeros", "**/kernel": jinit.orthogonal()},
      ...     jax.random.key(1),
      ... )
      >>> report.by_rule
      {'layers_2/kernel': ['layers_2/kernel'], '**/kernel': ['layers_0/kernel']}
      >>> bool((variables["params"]["layers_2"]["kernel"] == 0).all())
      True
    """
    parsed = _parse_rules(rules)
    key = check_key(key)
    current, rebuild = _target_params(target)
    paths = list(current)

    report = ReinitReport()
    specs = {p: (tuple(np.shape(v)), _dtype(v)) for p, v in current.items()}
    report.shapes = {p: (shape, dtype.name) for p, (shape, dtype) in specs.items()}
    plan: dict[str, _Rule] = {}
    for rule in parsed:
        hits = [p for p in paths if p not in plan and rule.matches(p)]
        if not hits:
            raise _nothing_matched(rule, paths, {p: r.label for p, r in plan.items()})
        for p in hits:
            plan[p] = rule
        report.by_rule[rule.label] = hits
        report.initializers[rule.label] = rule.init
    plan = {p: plan[p] for p in paths if p in plan and plan[p].init is not None}  # in order
    report.kept = [p for p in paths if p not in plan]
    if not plan:
        return rebuild({}), report

    shardings = {p: _placement(current[p]) for p in plan}
    if any(s is not None for s in shardings.values()):
        default = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = {p: default if s is None else s for p, s in shardings.items()}
    else:
        shardings = {}
    program = tuple(
        (p, rule.label, rule.init, *specs[p], shardings.get(p)) for p, rule in plan.items()
    )
    try:
        draw = _compiled(program)  # the same rules on the same model: no new compile
    except TypeError:  # an unhashable initializer
        draw = _compiled.__wrapped__(program)
    return rebuild(draw(key)), report


@functools.lru_cache(maxsize=16)
def _compiled(program: tuple) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """One function drawing every parameter of ``program`` from the user's key.

    ``program`` holds ``(path, rule label, initializer, shape, dtype, sharding or None)``
    per parameter.
    """
    from jinit.tools._fast_init import fast_init

    words = np.array([_path_words(entry[0]) for entry in program], np.uint32)

    def draw(key: jax.Array) -> dict[str, jax.Array]:
        # Every path's key in one vectorized fold_in pair (equal to path_key per path):
        # the key derivation compiles to the same code for 10 parameters or 10,000.
        keys = jax.vmap(lambda w: jax.random.fold_in(jax.random.fold_in(key, w[0]), w[1]))(words)
        out = {}
        for i, (p, label, init, shape, dtype, _) in enumerate(program):
            try:
                value = init(keys[i], shape, dtype)
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"reinit: rule {label!r} ({_describe(init)}) cannot initialize "
                    f"parameter {p!r} of shape {shape} and dtype {dtype.name}: {e}"
                ) from e
            if tuple(np.shape(value)) != shape:
                raise ValueError(
                    f"reinit: rule {label!r} ({_describe(init)}) returned shape "
                    f"{tuple(np.shape(value))} for parameter {p!r} of shape {shape}."
                )
            out[p] = value.astype(dtype) if value.dtype != dtype else value
        return out

    if all(entry[-1] is None for entry in program):
        return fast_init(draw)
    out_shardings = {entry[0]: entry[-1] for entry in program}
    return jax.jit(fast_init(draw), out_shardings=out_shardings)


def _placement(value: Any) -> jax.sharding.Sharding | None:
    """The sharding to give a new value replacing ``value``; None for the default device."""
    if isinstance(value, jax.core.Tracer):
        return None
    sharding = getattr(value, "sharding", None)
    if not isinstance(sharding, jax.sharding.Sharding):
        return None
    if isinstance(sharding, jax.sharding.SingleDeviceSharding) and sharding.device_set == {
        jax.devices()[0]
    }:
        return None
    return sharding


def _dtype(value: Any) -> np.dtype:
    dtype = getattr(value, "dtype", None)
    return np.dtype(np.asarray(value).dtype if dtype is None else dtype)
