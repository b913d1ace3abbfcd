"""jinit initializers inside Flax: nnx and linen layers, partitioning, abstract init."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import jinit


def test_nnx_linear_conv_embed_take_jinit_initializers():
    rngs = nnx.Rngs(0)
    linear = nnx.Linear(
        8, 16, kernel_init=jinit.he_normal(), bias_init=jinit.torch.bias_default(8), rngs=rngs
    )
    conv = nnx.Conv(3, 8, (3, 3), kernel_init=jinit.orthogonal(), rngs=rngs)
    embed = nnx.Embed(100, 32, embedding_init=jinit.normal(0.02), rngs=rngs)
    assert linear.kernel[...].shape == (8, 16)
    assert np.abs(np.asarray(linear.bias[...])).max() <= 1 / np.sqrt(8)
    assert conv.kernel[...].shape == (3, 3, 3, 8)
    assert embed.embedding[...].shape == (100, 32)
    y = conv(jnp.ones((1, 5, 5, 3)))
    assert y.shape == (1, 5, 5, 8)


def test_nnx_values_equal_a_direct_call_with_the_same_key():
    """Flax calls kernel_init(key, shape, param_dtype): the result is jinit's, unchanged."""
    linear = nnx.Linear(8, 4, kernel_init=jinit.glorot_uniform(), rngs=nnx.Rngs(params=3))
    key = nnx.Rngs(params=3).params()
    np.testing.assert_array_equal(
        linear.kernel[...], jinit.glorot_uniform()(key, (8, 4), jnp.float32)
    )


def test_nnx_lstm_recurrent_kernel_init():
    cell = nnx.LSTMCell(
        4,
        8,
        kernel_init=jinit.glorot_uniform(),
        recurrent_kernel_init=jinit.orthogonal(),
        rngs=nnx.Rngs(0),
    )
    for gate in (cell.hi, cell.hf, cell.hg, cell.ho):  # each gate's recurrent kernel
        w = np.asarray(gate.kernel[...])
        np.testing.assert_allclose(w.T @ w, np.eye(8), atol=1e-5)


def test_nnx_bfloat16_params():
    linear = nnx.Linear(
        8, 4, kernel_init=jinit.lecun_normal(), param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)
    )
    assert linear.kernel[...].dtype == jnp.bfloat16


def test_nnx_with_partitioning_eval_shape_and_sharded_values():
    mesh = jax.make_mesh((1,), ("model",), axis_types=(jax.sharding.AxisType.Auto,))
    init = nnx.with_partitioning(jinit.he_normal(), (None, "model"))
    with jax.sharding.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: nnx.Linear(16, 32, kernel_init=init, rngs=nnx.Rngs(0)))
        model = nnx.Linear(16, 32, kernel_init=init, rngs=nnx.Rngs(0))
    assert abstract.kernel.shape == (16, 32)
    assert abstract.kernel.get_metadata()["out_sharding"] == (None, "model")
    kernel = model.kernel[...]
    assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, "model")
    plain = nnx.Linear(16, 32, kernel_init=jinit.he_normal(), rngs=nnx.Rngs(0)).kernel[...]
    np.testing.assert_array_equal(kernel, plain)


def test_linen_dense_conv_with_partitioning():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(
                4, (3, 3), kernel_init=nn.with_partitioning(jinit.dirac(), (None, None, None, "m"))
            )(x)
            return nn.Dense(3, kernel_init=jinit.torch.linear_default(), bias_init=jinit.zeros)(x)

    x = jnp.ones((1, 5, 5, 4))
    variables = Net().init(jax.random.key(0), x)
    kernel = variables["params"]["Conv_0"]["kernel"]
    assert isinstance(kernel, nn.Partitioned) and kernel.names == (None, None, None, "m")
    np.testing.assert_array_equal(kernel.value[1, 1], np.eye(4))
    assert Net().apply(variables, x).shape == (1, 5, 5, 3)
    shapes = jax.eval_shape(lambda: Net().init(jax.random.key(0), x))
    assert shapes["params"]["Dense_0"]["kernel"].shape == (4, 3)


@pytest.mark.parametrize(
    "name", ["he_normal", "orthogonal", "torch.linear_default", "keras.glorot_uniform"]
)
def test_get_works_as_kernel_init(name):
    layer = nnx.Linear(6, 5, kernel_init=jinit.get(name), rngs=nnx.Rngs(0))
    assert layer.kernel[...].shape == (6, 5)
