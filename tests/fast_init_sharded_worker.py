"""Run in a subprocess with 8 simulated CPU devices by tests/test_fast_init.py.

Prints one JSON object: for each model, whether ``jax.jit(fast_init(init),
out_shardings=...)`` gives the unsharded values and the requested shardings, and its
per-device temporaries next to those of ``jax.jit(init, out_shardings=...)``.
"""

import json
import math
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jinit


class Block(nn.Module):
    d: int
    kernel_init: object
    partitioned: bool = True

    @nn.compact
    def __call__(self, x):
        def part(*names):
            if not self.partitioned:
                return self.kernel_init
            return nn.with_partitioning(self.kernel_init, names)

        h = nn.Dense(4 * self.d, kernel_init=part("data", "model"))(nn.LayerNorm()(x))
        h = nn.Dense(self.d, kernel_init=part("model", "data"))(nn.gelu(h))
        # Two kernels of one shape with transposed shardings: grouped apart.
        h = nn.Dense(self.d, kernel_init=part("data", "model"))(h)
        h = nn.Dense(self.d, kernel_init=part("model", "data"))(h)
        return x + h


class Net(nn.Module):
    depth: int
    d: int
    kernel_init: object
    partitioned: bool = True

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = Block(self.d, self.kernel_init, self.partitioned)(x)
        return x


def main():
    mesh = jax.make_mesh((4, 2), ("data", "model"))
    key = jax.random.key(0)
    x = jnp.ones((1, 32))
    out = {"devices": jax.device_count(), "cases": []}
    for name, kinit in [
        ("flax_defaults", nn.initializers.lecun_normal()),
        ("jinit", jinit.he_normal()),
    ]:
        model = Net(depth=2, d=32, kernel_init=kinit)
        shapes = jax.eval_shape(model.init, key, x)
        specs = nn.get_partition_spec(shapes)
        shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)
        ref = jax.jit(model.init)(key, x)
        plain = jax.jit(model.init, out_shardings=shardings).lower(key, x).compile()
        fast = jax.jit(jinit.fast_init(model.init), out_shardings=shardings).lower(key, x).compile()
        got, want = fast(key, x), plain(key, x)
        leaves = jax.tree.leaves(nn.meta.unbox(got))
        shard_bytes = [
            math.prod(a.sharding.shard_shape(a.shape)) * a.dtype.itemsize for a in leaves
        ]
        out["cases"].append(
            {
                "init": name,
                "values_equal": all(
                    bool(np.array_equal(np.asarray(a), np.asarray(b)))
                    for a, b in zip(
                        jax.tree.leaves(nn.meta.unbox(got)),
                        jax.tree.leaves(nn.meta.unbox(ref)),
                        strict=True,
                    )
                ),
                "shardings_equal": all(
                    a.sharding.is_equivalent_to(b.sharding, a.ndim)
                    for a, b in zip(
                        jax.tree.leaves(nn.meta.unbox(got)),
                        jax.tree.leaves(nn.meta.unbox(want)),
                        strict=True,
                    )
                ),
                "fast_temp": fast.memory_analysis().temp_size_in_bytes,
                "plain_temp": plain.memory_analysis().temp_size_in_bytes,
                "largest_shard": max(shard_bytes),
                "output_shard_bytes": sum(shard_bytes),
            }
        )
    out["explicit"] = explicit_cases()
    out["inner_out_shardings"] = inner_out_shardings()
    print(json.dumps(out))


def inner_out_shardings():
    """A jitted layer init with its own ``out_shardings`` (Auto axes), called inside ``fn``:
    inlined into the grouped program, its outputs keep the shardings it asked for."""
    from jax.sharding import AxisType
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    rows = NamedSharding(mesh, P("data"))

    def layer(key):
        k1, k2 = jax.random.split(key)
        return jinit.he_normal()(k1, (16, 8)), jax.random.normal(k2, (16, 8))

    inner = jax.jit(layer, out_shardings=(rows, rows))

    def fn(key):
        return [inner(jax.random.fold_in(key, i)) for i in range(3)]

    want = jax.tree.leaves(jax.jit(fn)(jax.random.key(0)))
    got = jax.tree.leaves(jinit.fast_init(fn)(jax.random.key(0)))
    return {
        "values_equal": all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)),
        "shardings": sorted({str(getattr(a.sharding, "spec", a.sharding)) for a in got}),
        "shardings_equal": all(a.sharding == b.sharding for a, b in zip(got, want, strict=True)),
    }


def explicit_cases():
    """``fast_init`` under ``jax.set_mesh`` of a mesh with Explicit axes: draws with an
    ``out_sharding`` (jax.random's and jinit's draw under the mesh with Auto axes, then
    reshard) and a model whose input is sharded over the batch."""
    from jax.sharding import AxisType
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    spec = P("data", "model")

    def draws(key):
        keys = [jax.random.fold_in(key, i) for i in range(6)]
        out = {
            f"jax{i}": jax.random.normal(k, (32, 16), out_sharding=spec)
            for i, k in enumerate(keys[:3])
        }
        for i, k in enumerate(keys[3:]):
            out[f"jinit{i}"] = jinit.he_normal()(k, (32, 16), out_sharding=spec)
        return out

    def split_keys(key):  # the first group to cut rows is a draw under the Auto mesh
        keys = jax.random.split(key, 6)
        draws = [jax.random.uniform(k, (64, 64), out_sharding=P("data")) for k in keys]
        return [*draws, jax.random.normal(keys[0], (16, 8)), jax.random.normal(keys[1], (16, 8))]

    def scaled(key):  # a follow-up after the reshard: normal * stddev rounds with it
        init = jax.nn.initializers.normal(0.02)
        return [
            init(jax.random.fold_in(key, i), (64, 64), out_sharding=P("data")) for i in range(6)
        ]

    # (Flax's partitioning metadata under an Explicit mesh asserts the initializer's
    # sharding: not used here.)
    model = Net(depth=2, d=32, kernel_init=jinit.he_normal(), partitioned=False)
    cases = []
    with jax.set_mesh(mesh):
        key = jax.random.key(0)
        x = jax.device_put(jnp.ones((8, 32)), NamedSharding(mesh, P("data")))
        for name, fn, args in [
            ("out_sharding draws", draws, (key,)),
            ("out_sharding draws from split keys", split_keys, (key,)),
            ("normal(0.02) with out_sharding", scaled, (key,)),
            ("sharded input", model.init, (key, x)),
        ]:
            want = jax.tree.leaves(nn.meta.unbox(jax.jit(fn)(*args)))
            got = jax.tree.leaves(nn.meta.unbox(jinit.fast_init(fn)(*args)))
            cases.append(
                {
                    "case": name,
                    "values_equal": len(got) == len(want)
                    and all(
                        np.array_equal(np.asarray(a), np.asarray(b))
                        for a, b in zip(got, want, strict=False)
                    ),
                    "shardings_equal": all(
                        a.sharding == b.sharding for a, b in zip(got, want, strict=False)
                    ),
                }
            )
    return cases


if __name__ == "__main__":
    main()
