"""fast_init with static arguments that cannot key a cache (unhashable configs).

Flax's own Gemma example passes a ``TransformerConfig`` dataclass holding a list
(``attention_types``); ``fast_init(Transformer)(config, rngs=...)`` refused it.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jinit


@dataclasses.dataclass
class Config:  # eq=True without frozen=True: unhashable, like Gemma's config
    widths: list[int]
    scale: float = 1.0


class Model(nnx.Module):
    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        dims = config.widths
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(dims)])


def _params(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_nnx_constructor_with_an_unhashable_config():
    config = Config([4, 8, 8, 2])
    fast = jinit.fast_init(Model)(config, rngs=nnx.Rngs(3))
    want = nnx.jit(lambda: Model(config, rngs=nnx.Rngs(3)))()
    got, ref = _params(fast), _params(want)
    assert len(got) == len(ref) == 6
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    # a changed config is honoured: nothing cached on the old value is reused
    config.widths.append(3)
    bigger = jinit.fast_init(Model)(config, rngs=nnx.Rngs(3))
    assert bigger.layers[-1].kernel.shape == (2, 3)


def test_function_with_an_unhashable_static_argument():
    def init(key, config):
        keys = jax.random.split(key, len(config.widths))
        return [
            jinit.he_normal()(k, (w, w)) * config.scale
            for k, w in zip(keys, config.widths, strict=True)
        ]

    fast = jinit.fast_init(init)
    config = Config([4, 4, 6], scale=2.0)
    got = fast(jax.random.key(0), config)
    want = jax.jit(lambda k: init(k, config))(jax.random.key(0))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    config.scale = 0.0
    assert all(float(jnp.abs(w).max()) == 0.0 for w in fast(jax.random.key(0), config))
