"""The jaxpr rewriter behind :func:`jinit.fast_init`: group identical random draws.

A model's ``init`` traced to a jaxpr holds one copy of the random-number code per
parameter: a ``random_fold_in`` per key derivation, a nested ``jit`` call per sampler
(jax.random's ``_normal``, ``_truncated_normal``, ...; jinit's samplers), each followed by a
few elementwise ops (``* stddev``). XLA compiles every copy separately.

:func:`evaluate` evaluates such a jaxpr under the ambient trace (normally the ``jax.jit``
of :func:`jinit.fast_init`) and emits every set of *independent* draws that share the
same computation, shapes and dtypes as one ``lax.map`` over stacked inputs, sliced back
into the members. Independence comes from the schedule: each random equation gets a
*stage*, one more than the largest stage among its inputs' producers, and only equations
of the same stage are grouped, so a draw whose inputs depend on another draw is never in
that draw's group. Ordinary equations run between the stages, in their original order.

Each group member carries its elementwise follow-up ops (``* stddev``, ``astype``) into
the mapped body, as long as their other operands are the same constants for every
member: XLA then folds the same constants into the same kernel as in plain ``jax.jit``,
which keeps the values bit for bit equal (folding them outside changes the rounding of
``sqrt(2) * erfinv(u) * stddev`` in the last bit).

XLA:CPU facts that shape the emitted code (measured with jax 0.10.2 on a 2-core CPU):

- XLA:CPU compiles every large fusion on its own, identical ones too (its computation
  deduplicator skips computations of more than 128 instructions). A sampler emitted once
  per parameter, even with its key read at a run-time index (the same fused computation
  for every parameter), costs a full compile each (~30 ms for a 256x256 unrolled-hash
  draw). Measured on the 24-layer transformer with jinit's initializers (machine
  shared): every large draw emitted on its own, written straight into its parameter, ran
  at 0.92x and peaked at 0.95x of ``jax.jit(init)`` but compiled in 0.74x of its time;
  one loop per group: compile ~0.15x, run 1.3-1.6x, peak 1.9x. Only a loop body
  (``lax.map``) is compiled once for all its rows, so groups stay loops, and the stack
  and its copy into the parameters are the price.
- The rows are cut out with ``dynamic_slice(stack, i)``, ``i`` a run-time scalar: 146
  such slices of one stack compile in 0.14 s, 146 static slices ``stack[i]`` (a distinct
  kernel each) in 1.34 s. The scalars come out of a ``lax.cond`` on a predicate XLA
  cannot fold (:meth:`_Context.indices`).
- Floors (24-layer transformer, 389 parameters): tracing ``model.init`` takes ~0.45 s
  (as for ``jax.jit``), and a program returning zeros of the same 389 shapes compiles in
  0.20-0.28 s: together ~0.07x of ``jax.jit(model.init)``'s 9.4-11 s. The grouped
  program's XLA time is ~0.13 s of HLO passes and ~0.62 s of LLVM: the loop bodies (one
  unrolled-hash sampler per distinct draw, ~50 ms each), the slices (~0.13 s), the
  bias fills (~0.12 s, in the floor too), draws without a partner (the Embed table and
  the head, ~50 ms each) and the grouped ``fold_in`` hash (~60 ms).
- A draw fused into ``lax.map``'s in-place ``dynamic_update_slice`` runs on one thread
  (plain jit's draws run on both cores); XLA drops an ``optimization_barrier`` and fuses
  anyway. A ``lax.cond`` on the never-true predicate (zeros or the draw) keeps the draw
  a kernel of its own, on both cores: 24-layer transformer with jinit's initializers, run
  1.7x -> 1.35x of plain jit, with Flax's 1.0x -> 0.7x (a zeros kernel per draw shape).
- XLA:CPU runs independent loops first and copies the rows out after, so every group's
  stack was alive at once (peak 1.87x of plain jit with jinit's initializers): each loop
  now starts after the previous one's rows are cut (:func:`_map_after`), one stack alive
  at a time (1.26x). The stack and the copy into the parameters stay: ~1.1-1.35x run
  time for jinit's fast draws, whose plain jit writes straight into the parameters.
- jax lowers ``threefry2x32`` on CPU to a rolled loop: four kernels per draw shape, ~60%
  of a grouped 24-layer transformer's compile time. jinit's unrolled hash
  (``jinit._threefry``, the same bits) is one kernel of ~12 ms, fused with the sampler's
  tail; it replaces ``random_bits`` of threefry keys (partitionable counters) and grouped
  fold-ins. (Drawing every group's bits in one shared hash call compiled slightly
  less but held the bits of a whole stage: peak memory 1.5x, run 1.15x of this.)
- XLA folds a predicate computed from an argument that is a constant to it (nnx's Rngs
  count made inside the outer jit): :meth:`_Context.never` combines several arguments.
- Loop-invariant code motion hoisted the samplers' counters (``iota``) out of the loop
  into arrays read from memory at every iteration; adding a zero that XLA cannot prove
  keeps them in the body.
- Groups of small draws (key derivations) are vmapped: one kernel over the stack.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import core as jcore
from jax._src.interpreters import partial_eval as pe

from jinit._threefry import bits_partitionable, is_supported, partitionable, threefry2x32

# Random primitives that are grouped (one vmapped/mapped call per group).
RANDOM_PRIMITIVES = frozenset(
    {
        "random_fold_in",
        "random_split",
        "random_bits",
        "random_wrap",
        "random_unwrap",
        "random_seed",
        "threefry2x32",
    }
)
# Names of jitted functions that are samplers even without a random primitive inside
# (jinit's unrolled Threefry samplers take raw uint32 key data).
SAMPLER_NAMES = frozenset(
    {"_random_bits_jit", "_uniform_jit", "_normal_jit", "_truncated_normal_jit"}
)
# Elementwise ops a draw's result may pass through and stay in its group's body.
CHAIN_PRIMITIVES = frozenset(
    {
        "mul",
        "add",
        "sub",
        "div",
        "neg",
        "max",
        "min",
        "convert_element_type",
        "copy",
        "copy_p",
        "real",
        "imag",
        "exp",
        "sqrt",
        "abs",
        "sign",
        "select_n",
        "clamp",
        "reshape",
        "broadcast_in_dim",
        "transpose",
    }
)
_CALL_PRIMITIVES = frozenset({"pjit", "jit", "closed_call", "core_call"})
# Constant sub-expressions larger than this are not hashed by value.
_MAX_CONST_ELEMENTS = 64


@dataclasses.dataclass(frozen=True)
class Options:
    """Knobs of the rewriter (see :func:`jinit.fast_init`)."""

    chunk_bytes: int = 64 * 2**20
    method: str = "map"  # "map" (lax.map), "vmap"
    # Groups of small draws (keys: fold_in, split) are vmapped: one kernel over the stack
    # instead of a loop of tiny kernels.
    vmap_bytes: int = 256
    # Carry each draw's elementwise follow-ups into its group's body. On for jitted
    # functions: XLA then folds the constants as in plain jit.
    chain: bool = True
    min_group: int = 2
    # A draw's jax.random bits (partitionable threefry) and a group's fold_ins are
    # computed by jinit's unrolled hash instead of jax's rolled loop (see the notes);
    # vmapped groups (of at most vmap_bytes per member) keep jax's own random_bits.
    unrolled_bits: bool = True


# ------------------------------------------------------------------------------ analysis


def _is_call(eqn: Any) -> bool:
    return eqn.primitive.name in _CALL_PRIMITIVES and "jaxpr" in eqn.params


def _sub_jaxpr(eqn: Any) -> Any:
    j = eqn.params["jaxpr"]
    return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


_RANDOM_CACHE: dict[int, tuple[Any, bool]] = {}


def _contains_random(jaxpr: Any) -> bool:
    """Whether a jaxpr draws random numbers anywhere inside (cached per jaxpr object)."""
    hit = _RANDOM_CACHE.get(id(jaxpr))
    if hit is not None and hit[0] is jaxpr:
        return hit[1]
    found = False
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in RANDOM_PRIMITIVES:
            found = True
        elif _is_call(eqn) and (
            eqn.params.get("name") in SAMPLER_NAMES or _contains_random(_sub_jaxpr(eqn))
        ):
            found = True
        else:
            for sub in jcore.jaxprs_in_params(eqn.params):
                if _contains_random(sub):
                    found = True
                    break
        if found:
            break
    if len(_RANDOM_CACHE) > 4096:
        _RANDOM_CACHE.clear()
    _RANDOM_CACHE[id(jaxpr)] = (jaxpr, found)
    return found


def _is_random_eqn(eqn: Any) -> bool:
    if eqn.effects:
        return False
    name = eqn.primitive.name
    if name in RANDOM_PRIMITIVES:
        return True
    if _is_call(eqn):
        return eqn.params.get("name") in SAMPLER_NAMES or _contains_random(_sub_jaxpr(eqn))
    return False


def _n_random_calls(jaxpr: Any) -> int:
    """How many random-drawing equations sit at the top level of ``jaxpr``."""
    return sum(1 for e in jaxpr.eqns if _is_random_eqn(e) and e.primitive.name != "random_unwrap")


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        if isinstance(value, (list, tuple)):
            return tuple(_hashable(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
        if isinstance(value, np.ndarray):
            return ("nd", value.dtype.str, value.shape, value.tobytes())
        return ("id", id(value))


def _params_key(eqn: Any) -> Any:
    items = sorted(eqn.params.items())
    params = tuple((k, ("jaxpr", id(v)) if k == "jaxpr" else _hashable(v)) for k, v in items)
    return (eqn.primitive.name, *params)


def _literal_key(val: Any) -> Any:
    arr = np.asarray(val)
    return ("lit", arr.dtype.str, arr.shape, arr.tobytes())


def _aval_key(aval: Any) -> Any:
    return (str(aval.dtype), tuple(aval.shape), bool(getattr(aval, "weak_type", False)))


# ------------------------------------------------------------------------------ flatten


def flatten(closed: jcore.ClosedJaxpr) -> jcore.ClosedJaxpr:
    """Inlines every nested call that holds more than one random draw (a user's jitted
    layer init, a whole jitted ``model.init``), so its draws can join the top-level groups.
    Calls with at most one draw (the samplers themselves) stay intact."""
    if not any(_is_call(e) and _n_random_calls(_sub_jaxpr(e)) > 1 for e in closed.jaxpr.eqns):
        return closed

    def run(jaxpr: Any, consts: Sequence[Any], *args: Any) -> list[Any]:
        env: dict[Any, Any] = {}

        def read(v: Any) -> Any:
            return v.val if isinstance(v, jcore.Literal) else env[v]

        for v, x in zip(jaxpr.constvars, consts, strict=True):
            env[v] = x
        for v, x in zip(jaxpr.invars, args, strict=True):
            env[v] = x
        for eqn in jaxpr.eqns:
            invals = [read(v) for v in eqn.invars]
            if _is_call(eqn) and _n_random_calls(_sub_jaxpr(eqn)) > 1:
                sub = eqn.params["jaxpr"]
                outs = _keep_out_shardings(eqn, run(sub.jaxpr, sub.consts, *invals))
            else:
                outs = _bind(eqn, invals)
            for v, x in zip(eqn.outvars, outs, strict=True):
                env[v] = x
        return [read(v) for v in jaxpr.outvars]

    avals = [v.aval for v in closed.jaxpr.invars]
    return jax.make_jaxpr(lambda *a: run(closed.jaxpr, closed.consts, *a))(*avals)


def _keep_out_shardings(eqn: Any, outs: list[Any]) -> list[Any]:
    """The outputs of an inlined ``jax.jit(..., out_shardings=...)`` call, constrained to
    the shardings that call asked for (inlining would otherwise drop them)."""
    shardings = eqn.params.get("out_shardings", ())
    if len(shardings) != len(outs):
        return outs
    return [_constrain(x, s) for x, s in zip(outs, shardings, strict=True)]


def _constrain(x: Any, sharding: Any) -> Any:
    if not isinstance(sharding, jax.sharding.Sharding):
        return x  # unspecified
    types = getattr(getattr(sharding, "mesh", None), "axis_types", ())
    if jax.sharding.AxisType.Explicit in types:
        # Explicit axes: the sharding is part of the values' types, which inlining keeps
        # (jax.jit(fn) itself does not carry such an inner out_shardings to the outputs).
        return x
    return jax.lax.with_sharding_constraint(x, sharding)


def _bind_varying(eqn: Any, invals: Sequence[Any], zero: Any, unrolled: bool = False) -> list[Any]:
    """Binds ``eqn`` with nested calls inlined and ``zero`` added to every ``iota``; with
    ``unrolled``, a ``random_bits`` of a threefry key is jinit's unrolled hash (the same
    bits: element ``i`` hashes the counter ``(0, i)``, jax's partitionable scheme)."""
    if (
        unrolled
        and eqn.primitive.name == "random_bits"
        and _unrollable(eqn)
        and is_supported(invals[0])
    ):
        kd = jax.random.key_data(invals[0])
        shape = tuple(eqn.params["shape"])
        return [bits_partitionable(kd, shape, 32, offset=zero.astype(jnp.uint32))]
    if _is_call(eqn):
        sub = eqn.params["jaxpr"]
        env: dict[Any, Any] = dict(zip(sub.jaxpr.constvars, sub.consts, strict=True))
        env.update(zip(sub.jaxpr.invars, invals, strict=True))
        for e in sub.jaxpr.eqns:
            ins = [v.val if isinstance(v, jcore.Literal) else env[v] for v in e.invars]
            env.update(zip(e.outvars, _bind_varying(e, ins, zero, unrolled), strict=True))
        return [v.val if isinstance(v, jcore.Literal) else env[v] for v in sub.jaxpr.outvars]
    outs = _bind(eqn, invals)
    if eqn.primitive.name == "iota":
        # Not for a sampler that draws under another mesh (jinit's and jax.random's with
        # ``out_sharding`` under an Explicit mesh draw with Auto axes): ``zero`` is typed
        # with the context's mesh. Only a hoisting hint is lost.
        mesh = _mesh_of(eqn.outvars[0].aval)
        if mesh is None or mesh == jax.sharding.get_abstract_mesh():
            outs = [outs[0] + zero.astype(outs[0].dtype)]
    return outs


def _sharded(x: Any) -> bool:
    """Whether ``x`` is typed as sharded over a mesh axis (an Explicit mesh): reading one
    element of it is then an error, so :meth:`_Context.never` does not use it."""
    return _spec_sharded(jax.typeof(x))


def _spec_sharded(aval: Any) -> bool:
    spec = getattr(getattr(aval, "sharding", None), "spec", None)
    return spec is not None and any(p is not None for p in spec)


def _mesh_of(aval: Any) -> Any:
    """The abstract mesh an aval is typed with (None for none or an empty one)."""
    mesh = getattr(getattr(aval, "sharding", None), "mesh", None)
    if isinstance(mesh, jax.sharding.AbstractMesh) and mesh.axis_names:
        return mesh
    return None


def _unrollable(eqn: Any) -> bool:
    """A ``random_bits`` that jinit's unrolled hash reproduces (partitionable counters;
    :func:`jinit._threefry.is_supported` checks the key, backend and jax version)."""
    aval = eqn.invars[0].aval
    return (
        eqn.params.get("bit_width") == 32
        and aval.shape == ()
        and str(aval.dtype) == "key<fry>"
        and math.prod(eqn.params["shape"]) < 2**32
        and partitionable()
    )


def _bind(eqn: Any, invals: Sequence[Any]) -> list[Any]:
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


# ------------------------------------------------------------------------------ planning


@dataclasses.dataclass
class _Member:
    eqns: list[Any]  # the random equation, then its elementwise follow-ups
    outvars: list[Any]  # what the member produces (the chain's end, or all outputs)


@dataclasses.dataclass
class _Plan:
    jaxpr: Any
    # stage -> equations (in original order) that run after that stage's groups
    plain: dict[int, list[Any]]
    # stage -> list of groups (each a list of members)
    groups: dict[int, list[list[_Member]]]
    n_stages: int


def _const_keys(jaxpr: Any) -> dict[Any, Any]:
    """A structural key for every small variable computed from literals only."""
    keys: dict[Any, Any] = {}
    for eqn in jaxpr.eqns:
        if eqn.effects or _is_random_eqn(eqn) or len(eqn.outvars) != 1:
            continue
        ins = []
        for v in eqn.invars:
            if isinstance(v, jcore.Literal):
                ins.append(_literal_key(v.val))
            elif v in keys:
                ins.append(keys[v])
            else:
                break
        else:
            out = eqn.outvars[0]
            if math.prod(out.aval.shape) <= _MAX_CONST_ELEMENTS:
                keys[out] = (_params_key(eqn), tuple(ins), _aval_key(out.aval))
    return keys


def plan(jaxpr: Any, chain: bool = True, out_keys: Sequence[Any] | None = None) -> _Plan:
    """Assigns stages, builds members (draw + follow-ups) and groups them.

    ``out_keys`` (one per output of ``jaxpr``, e.g. its partitioning names) keeps draws
    that end in outputs with different keys in different groups: a group's stack is then
    sharded like every one of its members.
    """
    annotation = {}
    if out_keys is not None:
        for v, k in zip(jaxpr.outvars, out_keys, strict=True):
            if isinstance(v, jcore.Var) and k is not None:
                annotation[v] = _hashable(k)
    consumers: dict[Any, list[Any]] = {}
    for eqn in jaxpr.eqns:
        for v in eqn.invars:
            if isinstance(v, jcore.Var):
                consumers.setdefault(v, []).append(eqn)
    outvars = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    ckeys = _const_keys(jaxpr)
    stage: dict[Any, int] = {}
    absorbed: set[int] = set()
    plain: dict[int, list[Any]] = {}
    groups: dict[int, dict[Any, list[_Member]]] = {}
    n_stages = 0

    def slot_key(v: Any, batchable: bool) -> Any:
        """How an operand enters the group key: constants by value, variables by aval.

        A stackable operand is keyed by dtype and shape only, whether it is a literal or
        a variable (nnx's first ``fold_in(key, 0)`` has a literal, the next ones a count).
        """
        if batchable:
            return ("stack", str(v.aval.dtype), tuple(v.aval.shape))
        if isinstance(v, jcore.Literal):
            return _literal_key(v.val)
        if v in ckeys:
            return ("const", ckeys[v])
        return ("var", _aval_key(v.aval))

    random = {id(e): _is_random_eqn(e) for e in jaxpr.eqns}
    for eqn in jaxpr.eqns:  # pass 1: stages (a draw is one stage after its inputs)
        d_in = max((stage.get(v, 0) for v in eqn.invars if isinstance(v, jcore.Var)), default=0)
        d_out = d_in + 1 if random[id(eqn)] else d_in
        n_stages = max(n_stages, d_out)
        for v in eqn.outvars:
            stage[v] = d_out

    for eqn in jaxpr.eqns:  # pass 2: members (a draw and its follow-ups) and plain equations
        if id(eqn) in absorbed:
            continue
        if not random[id(eqn)]:
            d = max((stage.get(v, 0) for v in eqn.outvars), default=0)
            if not eqn.outvars:
                d = max(
                    (stage.get(v, 0) for v in eqn.invars if isinstance(v, jcore.Var)), default=0
                )
            plain.setdefault(d, []).append(eqn)
            continue
        s = stage[eqn.outvars[0]]
        is_prim = eqn.primitive.name in RANDOM_PRIMITIVES
        parts: list[list[Any]] = [[_params_key(eqn), *(slot_key(v, is_prim) for v in eqn.invars)]]
        eqns = [eqn]
        cur = eqn.outvars[0] if len(eqn.outvars) == 1 else None
        while chain and cur is not None and cur not in outvars and len(consumers.get(cur, ())) == 1:
            nxt = consumers[cur][0]
            if (
                nxt.primitive.name not in CHAIN_PRIMITIVES
                or nxt.effects
                or len(nxt.outvars) != 1
                or sum(1 for v in nxt.invars if v is cur) != 1
            ):
                break
            others = [v for v in nxt.invars if v is not cur]
            ok = all(isinstance(v, jcore.Literal) or v in ckeys for v in others)
            if not ok:
                break
            parts.append(
                [
                    _params_key(nxt),
                    *(("cur",) if v is cur else slot_key(v, False) for v in nxt.invars),
                ]
            )
            eqns.append(nxt)
            cur = nxt.outvars[0]
        # A chain that ends in a reshape (Flax's DenseGeneral draws (256, 256) and reshapes
        # to (256, 4, 64) or (4, 64, 256)) joins the group of the same draw: the reshape runs
        # on each member's slice, as a plain equation after the group (a bitcast in XLA).
        while len(eqns) > 1 and eqns[-1].primitive.name == "reshape" and cur not in annotation:
            eqns.pop()
            parts.pop()
            cur = eqns[-1].outvars[0]
        absorbed.update(id(e) for e in eqns[1:])
        member = _Member(eqns, [cur] if cur is not None else list(eqn.outvars))
        key = [x for part in parts for x in part]
        key.append(tuple(annotation.get(v) for v in member.outvars))
        groups.setdefault(s, {}).setdefault(tuple(key), []).append(member)
    return _Plan(
        jaxpr,
        plain,
        {s: list(g.values()) for s, g in groups.items()},
        n_stages,
    )


# ------------------------------------------------------------------------------ evaluation


def evaluate(
    closed: jcore.ClosedJaxpr,
    args: Sequence[Any],
    options: Options,
    out_keys: Sequence[Any] | None = None,
) -> list[Any]:
    """Evaluates ``closed`` on ``args`` with its random draws grouped (see :func:`plan`)."""
    closed = flatten(closed)
    jaxpr = closed.jaxpr
    used = [True] * len(jaxpr.outvars)
    jaxpr, _ = pe.dce_jaxpr(jaxpr, used, instantiate=True)
    p = plan(jaxpr, options.chain, out_keys)
    ctx = _Context(options)
    ctx.max_chunk = max(
        (len(c) for gs in p.groups.values() for g in gs for c in _chunks(g, options.chunk_bytes)),
        default=0,
    )
    for v, x in zip(jaxpr.constvars, closed.consts, strict=True):
        ctx.env[v] = x
    for v, x in zip(jaxpr.invars, args, strict=True):
        ctx.env[v] = x
    # Run-time values for the index trick: the keys and the smallest arguments. An
    # argument may still be a constant to XLA (nnx's Rngs count, made inside the outer
    # jit), so the predicate combines several (see _Context.never).
    runtime = [x for x in args if hasattr(x, "shape") and hasattr(x, "dtype")]
    runtime = [x for x in runtime if math.prod(x.shape) and not _sharded(x)]
    keys = [x for x in runtime if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)]
    ctx.runtime = keys[:4] + sorted(runtime, key=lambda x: math.prod(x.shape))[:4]
    for s in range(p.n_stages + 1):
        for group in p.groups.get(s, ()):
            for chunk in _chunks(group, options.chunk_bytes):
                if len(chunk) >= options.min_group:
                    _run_chunk(chunk, ctx)
                else:
                    _run_one_by_one(chunk, ctx, unrolled=options.unrolled_bits)
        for eqn in p.plain.get(s, ()):
            ctx.bind(eqn)
    return [ctx.read(v) for v in jaxpr.outvars]


class _Context:
    """The environment of one evaluation: values, stacked sources, slice indices."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.env: dict[Any, Any] = {}
        # var -> (stacked array, position): a member output that is a row of a group's output
        self.rows: dict[Any, tuple[Any, int]] = {}
        self.max_chunk = 0
        self._indices: tuple[Any, ...] | None = None
        self.runtime: list[Any] = []
        self.last_row: Any = None  # a row cut from the last mapped loop

    def read(self, v: Any) -> Any:
        return v.val if isinstance(v, jcore.Literal) else self.env[v]

    def bind(self, eqn: Any) -> None:
        outs = _bind(eqn, [self.read(v) for v in eqn.invars])
        for v, x in zip(eqn.outvars, outs, strict=True):
            self.env[v] = x

    def never(self, source: Any = None) -> Any:
        """A predicate that is always false but that XLA cannot fold: ``x != x and x == x``
        for a float ``x`` read from a run-time value, or-ed over several such values (one
        that XLA sees as a constant folds to false and leaves the others)."""
        sources = self.runtime or ([source] if source is not None else [])
        out = None
        for src in sources:
            x = src.reshape(-1)[0] if src.ndim else src
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
                x = jax.random.key_data(x).reshape(-1)[0]
            f = x.real if jnp.iscomplexobj(x) else x
            f = f.astype(jnp.float32)
            p = jnp.logical_and(f != f, f == f)
            out = p if out is None else jnp.logical_or(out, p)
        return jnp.bool_(False) if out is None else out

    def indices(self, source: Any) -> tuple[Any, ...]:
        """Row indices 0..max_chunk-1 as run-time scalars (one buffer each).

        ``dynamic_slice(stack, i)`` with ``i`` a run-time scalar is the same small fused
        computation for every row (146 of them compile in 0.14 s), while a constant ``i`` (a
        static slice) is a different one per parameter (1.34 s). The scalars come out of a
        ``lax.cond`` on :meth:`never`, a predicate that is always false but that XLA cannot
        fold (read from the function's run-time arguments, or from ``source`` when it has
        none).
        """
        if self._indices is None:
            never = self.never(source)
            n = self.max_chunk
            self._indices = jax.lax.cond(
                never,
                lambda: tuple(jnp.int32(0) for _ in range(n)),
                lambda: tuple(jnp.int32(i) for i in range(n)),
            )
        return self._indices


def _member_bytes(m: _Member) -> int:
    return sum(math.prod(v.aval.shape) * _itemsize(v.aval.dtype) for v in m.outvars)


def _vmap_keeps_bits(m: _Member) -> bool:
    """Whether ``jax.vmap`` of this draw gives the same bits as drawing each member alone:
    true for Threefry keys, not for ``rbg``/``unsafe_rbg`` ones (their batched bits differ)."""
    from jinit._threefry import default_impl_is_threefry

    if not default_impl_is_threefry():  # raw uint32 keys follow the default implementation
        return False
    for eqn in m.eqns:
        for v in (*eqn.invars, *eqn.outvars):
            dtype = getattr(v.aval, "dtype", None)
            if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
                if str(dtype) != "key<fry>":
                    return False
    return True


def _itemsize(dtype: Any) -> int:
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return 8
    return np.dtype(dtype).itemsize


def _chunks(group: list[_Member], limit: int) -> list[list[_Member]]:
    out: list[list[_Member]] = []
    cur: list[_Member] = []
    size = 0
    for m in group:
        b = _member_bytes(m)
        if cur and size + b > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(m)
        size += b
    if cur:
        out.append(cur)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, jcore.Literal) and isinstance(b, jcore.Literal):
        return _literal_key(a.val) == _literal_key(b.val)
    return a is b


def _stack(vs: Sequence[Any], ctx: _Context) -> Any:
    """Stacks the members' values of one operand; reuses a group's output when they are
    its rows in order (keys derived by one group and consumed by the next)."""
    rows = [ctx.rows.get(v) if isinstance(v, jcore.Var) else None for v in vs]
    if all(r is not None for r in rows):
        src = rows[0][0]  # type: ignore[index]
        if all(r[0] is src for r in rows):  # type: ignore[index]
            pos = [r[1] for r in rows]  # type: ignore[index]
            if pos == list(range(src.shape[0])):
                return src
            return jnp.take(src, np.asarray(pos, np.int32), axis=0)
    vals = [ctx.read(v) for v in vs]
    if all(x is vals[0] for x in vals[1:]):  # one value (Flax folds every key from one)
        x = vals[0]
        return jax.lax.broadcast_in_dim(x, (len(vals), *x.shape), tuple(range(1, x.ndim + 1)))
    return jnp.stack(vals)


def _slots(chunk: list[_Member]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The operand slots of a chunk's members, (equation index in the chain, operand
    index), the chain value excepted: those that are the same for every member, and
    those that differ (stacked)."""
    first = chunk[0]
    shared: list[tuple[int, int]] = []
    stacked: list[tuple[int, int]] = []
    for i, eqn in enumerate(first.eqns):
        prev = first.eqns[i - 1].outvars[0] if i else None
        for j, v in enumerate(eqn.invars):
            if i and v is prev:
                continue
            same = all(_same(m.eqns[i].invars[j], v) for m in chunk[1:])
            (shared if same else stacked).append((i, j))
    return shared, stacked


def _fold_in_unrolled(chunk: list[_Member], ctx: _Context) -> Any:
    """A group of ``fold_in(key, data)`` of threefry keys with ``uint32`` data, as jinit's
    unrolled hash: jax computes ``threefry2x32(key, (0, data))`` (``threefry_seed`` of a
    32-bit value has a zero high word) and the two output words are the new key. One
    straight-line kernel instead of jax's rolled loop (three kernels). None if the group
    is anything else."""
    first = chunk[0]
    eqn = first.eqns[0]
    if len(first.eqns) != 1 or eqn.primitive.name != "random_fold_in":
        return None
    key, data = eqn.invars
    if (
        key.aval.shape != ()
        or str(key.aval.dtype) != "key<fry>"
        or data.aval.shape != ()
        or data.aval.dtype != np.uint32
        or not is_supported(ctx.read(key))
    ):
        return None
    keys = jax.random.key_data(_stack([m.eqns[0].invars[0] for m in chunk], ctx))
    counts = _stack([m.eqns[0].invars[1] for m in chunk], ctx).astype(jnp.uint32)
    y0, y1 = threefry2x32(keys[:, 0], keys[:, 1], jnp.zeros_like(counts), counts)
    return jax.random.wrap_key_data(jnp.stack([y0, y1], axis=-1), impl="threefry2x32")


def _foreign_mesh(chunk: list[_Member]) -> bool:
    """Whether the chunk's values are typed with another mesh than the context's:
    ``jax.random``'s samplers called with ``out_sharding`` under an Explicit mesh draw under
    the same mesh with Auto axes, then reshard."""
    for eqn in chunk[0].eqns:
        for v in (*eqn.invars, *eqn.outvars):
            mesh = _mesh_of(v.aval)
            if mesh is not None:
                return mesh != jax.sharding.get_abstract_mesh()
    return False


def _run_one_by_one(chunk: list[_Member], ctx: _Context, *, unrolled: bool) -> None:
    """The chunk's draws evaluated separately, as ``jax.jit`` does (with ``unrolled``, a
    threefry ``random_bits`` is jinit's unrolled hash: the same bits)."""
    for m in chunk:
        for eqn in m.eqns:
            if unrolled:
                ins = [ctx.read(v) for v in eqn.invars]
                outs = _bind_varying(eqn, ins, jnp.int32(0), unrolled=True)
                ctx.env.update(zip(eqn.outvars, outs, strict=True))
            else:
                ctx.bind(eqn)


def _run_chunk(chunk: list[_Member], ctx: _Context) -> None:
    if _foreign_mesh(chunk):
        # Not grouped, evaluated as by ``jax.jit``: grouped, the follow-ups after the
        # reshard left the mapped body (``normal * stddev`` rounded 1 ulp apart) and the
        # row indices were typed with the wrong mesh.
        _run_one_by_one(chunk, ctx, unrolled=False)
        return
    first = chunk[0]
    shared_slots, stacked_slots = _slots(chunk)
    shared = {slot: ctx.read(first.eqns[slot[0]].invars[slot[1]]) for slot in shared_slots}
    stacked = [_stack([m.eqns[i].invars[j] for m in chunk], ctx) for i, j in stacked_slots]
    unrolled = ctx.options.unrolled_bits

    def body(xs: Sequence[Any], zero: Any = None) -> list[Any]:
        vals = dict(shared)
        vals.update(zip(stacked_slots, xs, strict=True))
        cur: list[Any] = []
        for i, eqn in enumerate(first.eqns):
            ins = [vals[(i, j)] if (i, j) in vals else cur[0] for j in range(len(eqn.invars))]
            cur = _bind(eqn, ins) if zero is None else _bind_varying(eqn, ins, zero, unrolled)
        return cur

    if not stacked:  # identical computations on identical inputs: compute once
        outs = body([])
        for m in chunk:
            for v, y in zip(m.outvars, outs, strict=True):
                ctx.env[v] = y
        return
    small = _member_bytes(first) <= ctx.options.vmap_bytes and _vmap_keeps_bits(first)
    folded = _fold_in_unrolled(chunk, ctx) if unrolled else None
    mapped = folded is None and not (ctx.options.method == "vmap" or small)
    if folded is not None:
        outs = [folded]
    elif not mapped:
        outs = jax.vmap(body)(stacked)
    else:

        def step(xs_i: tuple[Sequence[Any], Any]) -> list[Any]:
            xs, i = xs_i
            # A zero XLA cannot prove (nor hoist): keeps the sampler's counters (iota)
            # inside the loop body, computed in registers, as in plain jit. Hoisted, they
            # become arrays read from memory every iteration (2x slower for jinit's).
            zero = jax.lax.optimization_barrier(i) - i
            # XLA:CPU fuses a draw into the loop's in-place dynamic-update-slice and runs
            # that fusion on one thread (2x slower than plain jit's draws on 2 cores); an
            # ``optimization_barrier`` does not stop it (XLA drops it). A ``lax.cond`` on
            # the never-true predicate does: the draw is a kernel of its own, on all cores,
            # at the price of a zeros kernel per draw shape.
            if never is None:
                return jax.lax.optimization_barrier(body(xs, zero))
            return jax.lax.cond(
                never,
                lambda: [jnp.zeros(a.shape, a.dtype) for a in avals],
                lambda: body(xs, zero),
            )

        avals = [v.aval for v in first.outvars]
        keyed = any(jnp.issubdtype(a.dtype, jax.dtypes.prng_key) for a in avals)
        typed = any(_spec_sharded(a) for a in avals)  # zeros would need the sharding too
        plain_draw = keyed or typed
        never = None if plain_draw else ctx.never(stacked[0])
        outs = _map_after(step, stacked, avals, len(chunk), ctx)
    idx = ctx.indices(outs[0])
    cut = {}
    for k, m in enumerate(chunk):
        for v, y in zip(m.outvars, outs, strict=True):
            cut[v] = jax.lax.dynamic_index_in_dim(y, idx[k], keepdims=False)
            ctx.rows[v] = (y, k)
    if mapped:
        last = cut[chunk[-1].outvars[0]]  # the next loop starts after it (_map_after)
        ctx.last_row = last if _readable(last) else None
    ctx.env.update(cut)


def _map_after(
    step: Any, stacked: Sequence[Any], avals: Sequence[Any], n: int, ctx: _Context
) -> list[Any]:
    """``lax.map(step, (stacked, arange(n)))``, started after the previous mapped loop.

    XLA:CPU schedules independent loops first and their slices after, so every group's
    stack would be alive at once (peak memory: the parameters twice). Here the stacked
    buffers start as a fill value that reads one element of a row cut from the previous
    loop, through a cond on the never-true predicate (a select would be fused into the
    fill, which would then read the previous stack while writing this one): each loop
    starts once the previous stack is dead, and XLA gives every stack the same buffer
    (24-layer transformer with jinit's initializers: peak memory 1.26x of
    ``jax.jit(init)`` instead of 1.87x). Falls back to ``lax.map`` for the first loop
    and where the element cannot be read (keys, sharded rows).
    """
    steps = jnp.arange(n, dtype=jnp.int32)
    prev = ctx.last_row
    keys = any(jnp.issubdtype(a.dtype, jax.dtypes.prng_key) for a in avals)
    if prev is None or keys:
        outs = jax.lax.map(step, (stacked, steps))
    else:
        dep = jnp.real(prev[(0,) * prev.ndim]).astype(jnp.float32)
        # A cond, not a select: XLA would fuse the read into the fill, which then reads
        # the previous stack while writing this one (both alive).
        seed = jax.lax.cond(ctx.never(stacked[0]), lambda d: d, jnp.zeros_like, dep)
        init = [jnp.broadcast_to(seed.astype(a.dtype), (n, *a.shape)) for a in avals]

        def loop(i: Any, bufs: list[Any]) -> list[Any]:
            xs = [jax.lax.dynamic_index_in_dim(x, i, keepdims=False) for x in stacked]
            ys = step((xs, i))
            return [
                jax.lax.dynamic_update_index_in_dim(b, y, i, 0)
                for b, y in zip(bufs, ys, strict=True)
            ]

        outs = jax.lax.fori_loop(0, n, loop, init)
    return outs


def _readable(x: Any) -> bool:
    """Whether :func:`_map_after` can read one element of ``x``."""
    return x.size > 0 and not jnp.issubdtype(x.dtype, jax.dtypes.prng_key) and not _sharded(x)
