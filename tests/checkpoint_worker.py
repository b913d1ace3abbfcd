"""Run in a subprocess with 8 simulated CPU devices by tests/test_checkpoints.py.

Saves small orbax checkpoints, transfers them into targets sharded over a (4, 2) mesh (nnx
and linen) and reads one array with from_checkpoint(out_sharding=...). Prints one JSON
object: whether values and shardings match, and which shardings orbax was asked for.
"""

import json
import os
import sys
import tempfile

# Nothing runs at import: pytest's --doctest-modules imports this file in the test process.


def _case(arrays, shardings, expected, requested):
    import numpy as np

    equal = all(np.array_equal(np.asarray(arrays[k]), expected[k]) for k in expected)
    same = all(arrays[k].sharding.is_equivalent_to(shardings[k], arrays[k].ndim) for k in expected)
    out = {"equal": bool(equal), "same_sharding": bool(same), "requested": list(requested)}
    requested.clear()
    return out


def main():
    import flax.linen as nn
    import jax
    import numpy as np
    import orbax.checkpoint as ocp
    from flax import nnx
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import jinit
    from jinit.tools import _ckpt_orbax

    requested: list[str] = []
    read_many = _ckpt_orbax.OrbaxCheckpoint.read_many

    def recording(self, requests):
        requested.extend(type(s).__name__ for s in requests.values() if s is not None)
        return read_many(self, requests)

    _ckpt_orbax.OrbaxCheckpoint.read_many = recording

    mesh = jax.make_mesh((4, 2), ("data", "model"))
    k_sharding, b_sharding = (
        NamedSharding(mesh, P("data", "model")),
        NamedSharding(mesh, P("model")),
    )
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((16, 8)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    root = tempfile.mkdtemp()
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(os.path.join(root, "nnx"), {"kernel": {"value": kernel}, "bias": {"value": bias}})
    ckptr.save(
        os.path.join(root, "linen"), {"params": {"Dense_0": {"kernel": kernel, "bias": bias}}}
    )
    ckptr.wait_until_finished()
    out = {"devices": jax.device_count()}

    model = nnx.Linear(16, 8, rngs=nnx.Rngs(0))
    state = nnx.state(model)
    state["kernel"].set_value(jax.device_put(state["kernel"].get_value(), k_sharding))
    state["bias"].set_value(jax.device_put(state["bias"].get_value(), b_sharding))
    nnx.update(model, state)
    model, report = jinit.transfer(model, os.path.join(root, "nnx"))
    assert report.ok, str(report)
    got = {"kernel": model.kernel.get_value(), "bias": model.bias.get_value()}
    want = {"kernel": kernel, "bias": bias}
    out["nnx"] = _case(got, {"kernel": k_sharding, "bias": b_sharding}, want, requested)

    variables = nn.Dense(8).init(jax.random.key(0), np.ones((1, 16), np.float32))
    variables = {
        "params": {
            "kernel": jax.device_put(variables["params"]["kernel"], k_sharding),
            "bias": jax.device_put(variables["params"]["bias"], b_sharding),
        }
    }
    variables = {"params": {"Dense_0": variables["params"]}}
    new, report = jinit.transfer(variables, os.path.join(root, "linen"))
    assert report.ok, str(report)
    shardings = {"kernel": k_sharding, "bias": b_sharding}
    out["linen"] = _case(new["params"]["Dense_0"], shardings, want, requested)

    init = jinit.from_checkpoint(os.path.join(root, "linen"), "params/Dense_0/kernel")
    arr = init(jax.random.key(0), (16, 8), out_sharding=k_sharding)
    out["from_checkpoint"] = _case(
        {"kernel": arr}, {"kernel": k_sharding}, {"kernel": kernel}, requested
    )
    print(json.dumps(out))


if __name__ == "__main__":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    main()
