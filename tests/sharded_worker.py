"""Run in a subprocess with 8 simulated CPU devices by tests/test_sharding.py.

Prints one JSON object: for each initializer and mesh kind, whether sharded values equal
the unsharded ones, the output's sharding spec, and per-device temporaries / shard size.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import jax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jinit

SHAPE = (256, 128)
# One initializer per sampler.
INITS = {
    "he_normal": jinit.he_normal(),  # truncated normal
    "torch.kaiming_normal": jinit.torch.kaiming_normal(),  # normal
    "glorot_uniform": jinit.glorot_uniform(),  # uniform
    "constant": jinit.constant(0.5),
    "orthogonal": jinit.orthogonal(),
    "orthogonal_householder": jinit.orthogonal(method="householder"),
    "sparse": jinit.sparse(0.5),
}


def main():
    key = jax.random.key(0)
    out = {"devices": jax.device_count(), "results": []}
    shard_bytes = SHAPE[0] * SHAPE[1] * 4 / 8
    for kind, axis_type in [("auto", AxisType.Auto), ("explicit", AxisType.Explicit)]:
        mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(axis_type,) * 2)
        sharding = NamedSharding(mesh, P("data", "model"))
        for name, init in INITS.items():
            ref = init(key, SHAPE)
            eager = init(key, SHAPE, out_sharding=sharding)
            with jax.sharding.set_mesh(mesh):
                fn = jax.jit(lambda k, init=init, s=sharding: init(k, SHAPE, out_sharding=s))
                compiled = fn.lower(key).compile()  # one compile: run it and read its memory
                jitted = compiled(key)
                temp = compiled.memory_analysis().temp_size_in_bytes
                spec_p = None
                if name == "he_normal":  # a bare PartitionSpec, resolved by the mesh context
                    spec_p = str(init(key, SHAPE, out_sharding=P("data", None)).sharding.spec)
            out_shardings = jax.jit(lambda k, init=init: init(k, SHAPE), out_shardings=sharding)(
                key
            )
            out["results"].append(
                {
                    "mesh": kind,
                    "init": name,
                    "eager_equal": bool((eager == ref).all()),
                    "jit_equal": bool((jitted == ref).all()),
                    "out_shardings_equal": bool((out_shardings == ref).all()),
                    "out_shardings_max_diff": float(abs(out_shardings - ref).max()),
                    "spec": str(eager.sharding.spec),
                    "jit_spec": str(jitted.sharding.spec),
                    "partition_spec_under_mesh": spec_p,
                    "temp_over_shard": temp / shard_bytes,
                }
            )
    # jax's own he_normal for comparison (auto mesh, jit with out_shardings).
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    sharding = NamedSharding(mesh, P("data", "model"))
    for name, init in [("jinit", jinit.he_normal()), ("jax", jax.nn.initializers.he_normal())]:
        fn = jax.jit(lambda k, init=init: init(k, SHAPE), out_shardings=sharding)
        temp = fn.lower(key).compile().memory_analysis().temp_size_in_bytes
        out[f"{name}_he_normal_out_shardings_temp_over_shard"] = temp / shard_bytes
    print(json.dumps(out))


if __name__ == "__main__":
    main()
