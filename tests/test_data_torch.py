"""PyTorch -> Flax transfer against real PyTorch (skipped when torch is not installed)."""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import pytest
from flax import nnx

import jinit

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

ATOL = 1e-5
# transfer overwrites every parameter: zeros skip compiling a random init per kernel shape
Z = {"kernel_init": nnx.initializers.zeros}


class _TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.grouped = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):  # NCHW
        x = torch.relu(self.bn(self.grouped(torch.relu(self.conv(x)))))
        x = x.permute(0, 2, 3, 1).flatten(1)  # flatten in NHWC order, as the Flax model does
        return self.fc(x)


class _NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), strides=2, padding=1, **Z, rngs=rngs)
        self.grouped = nnx.Conv(8, 8, (3, 3), padding=1, feature_group_count=2, **Z, rngs=rngs)
        self.bn = nnx.BatchNorm(8, use_running_average=True, epsilon=1e-5, rngs=rngs)
        self.fc = nnx.Linear(8 * 4 * 4, 5, **Z, rngs=rngs)

    def __call__(self, x):  # NHWC
        x = nnx.relu(self.bn(self.grouped(nnx.relu(self.conv(x)))))
        return self.fc(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    net = _TorchNet().eval()
    with torch.no_grad():  # non-trivial running statistics
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.2, 0.2)
    path = tmp_path_factory.mktemp("torch") / "net.safetensors"
    safetensors_torch.save_file(net.state_dict(), str(path))
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        y = net(x).numpy()
    return path, x.numpy(), y


def test_linear_and_conv_layers_match_torch(tmp_path):
    torch.manual_seed(1)
    lin, conv = torch.nn.Linear(6, 3), torch.nn.Conv2d(2, 4, (3, 5), padding=(1, 2))
    path = tmp_path / "layers.safetensors"
    sd = {f"lin.{k}": v for k, v in lin.state_dict().items()}
    sd.update({f"conv.{k}": v for k, v in conv.state_dict().items()})
    safetensors_torch.save_file(sd, str(path))

    class Two(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(6, 3, **Z, rngs=rngs)
            self.conv = nnx.Conv(2, 4, (3, 5), padding=((1, 1), (2, 2)), **Z, rngs=rngs)

    model, report = jinit.transfer(Two(nnx.Rngs(0)), path, layout="torch")
    assert report.ok and sorted(report.transposed) == ["conv/kernel", "lin/kernel"]
    x = torch.randn(7, 6)
    err = np.abs(model.lin(x.numpy()) - lin(x).detach().numpy()).max()
    assert err < ATOL
    xi = torch.randn(2, 2, 6, 7)  # NCHW for torch, NHWC for Flax
    y_t = conv(xi).detach().numpy().transpose(0, 2, 3, 1)
    y_f = np.asarray(model.conv(xi.numpy().transpose(0, 2, 3, 1)))
    assert np.abs(y_f - y_t).max() < ATOL


def test_whole_network_nnx(saved):
    path, x, y = saved
    model, report = jinit.transfer(_NnxNet(nnx.Rngs(0)), path, layout="torch")
    assert report.ok, str(report)
    assert report.unused == {
        "bn.num_batches_tracked": "PyTorch bookkeeping buffer; no Flax counterpart"
    }
    out = np.asarray(model(x.transpose(0, 2, 3, 1)))
    assert np.abs(out - y).max() < ATOL


def test_whole_network_linen(saved):
    path, x, y = saved

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3), strides=2, padding=1, name="conv")(x))
            x = nn.Conv(8, (3, 3), padding=1, feature_group_count=2, name="grouped")(x)
            x = nn.relu(nn.BatchNorm(use_running_average=True, epsilon=1e-5, name="bn")(x))
            return nn.Dense(5, name="fc")(x.reshape(x.shape[0], -1))

    xh = x.transpose(0, 2, 3, 1)
    shapes = jax.eval_shape(Net().init, jax.random.key(0), xh)  # all overwritten below
    variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    variables, report = jinit.transfer(variables, path, layout="torch")
    assert report.ok, str(report)
    out = np.asarray(Net().apply(variables, xh))
    assert np.abs(out - y).max() < ATOL


def test_from_checkpoint_torch_layout_matches(tmp_path):
    torch.manual_seed(2)
    lin = torch.nn.Linear(5, 2)
    path = tmp_path / "lin.safetensors"
    safetensors_torch.save_file(lin.state_dict(), str(path))
    layer = nnx.Linear(
        5,
        2,
        kernel_init=jinit.from_checkpoint(path, "weight", layout="torch"),
        bias_init=jinit.from_checkpoint(path, "bias"),
        rngs=nnx.Rngs(0),
    )
    x = torch.randn(3, 5)
    assert np.abs(np.asarray(layer(x.numpy())) - lin(x).detach().numpy()).max() < ATOL


def test_bfloat16_state_dict(tmp_path):
    lin = torch.nn.Linear(4, 3).to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    safetensors_torch.save_file(lin.state_dict(), str(path))
    model, report = jinit.transfer(nnx.Linear(4, 3, **Z, rngs=nnx.Rngs(0)), path, layout="torch")
    expected = lin.weight.detach().float().numpy().T
    assert report.ok and np.array_equal(np.asarray(model.kernel[...]), expected)
