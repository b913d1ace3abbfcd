"""A Flax (nnx) multilayer perceptron whose kernels are initialized by name through jinit."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

import jax
import jax.numpy as jnp
from flax import nnx

from jinit._validate import check_bool
from jinit.train._checks import check_int, check_str, is_int

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01, as torch's default
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
    "selu": jax.nn.selu,
    "linear": lambda x: x,
}
"""Hidden-layer nonlinearities accepted by :class:`MLP` and :class:`MLPConfig`."""

InitSpec = str | Mapping[str, Any] | Callable[..., jax.Array]
"""Anything :func:`jinit.get` accepts: a name, a dict spec or an initializer."""

LOSSES: tuple[str, ...] = ("softmax", "sigmoid", "mse")
"""Output heads and their losses: ``"softmax"`` (one logit per class, cross-entropy),
``"sigmoid"`` (one logit, binary cross-entropy on 0/1 labels) and ``"mse"`` (linear
outputs, mean squared error against regression targets or one-hot labels)."""


def _is_layer_list(spec: Any) -> TypeGuard[Sequence[Any]]:
    return isinstance(spec, Sequence) and not isinstance(spec, str)


def _initializer(name: str, spec: Any) -> Callable[..., jax.Array]:
    import jinit  # late import: jinit's package may import this module's siblings lazily

    init = jinit.get(spec)
    if init is None:
        raise TypeError(f"`{name}` must be an initializer spec; got None.")
    return init


def _check_activation(activation: str) -> None:
    check_str("activation", activation, tuple(ACTIVATIONS))


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, str) or not isinstance(hidden, Sequence):
        raise TypeError(f"`hidden` must be a sequence of ints (layer widths); got {hidden!r}.")
    for w in hidden:
        if not is_int(w):
            raise TypeError(
                f"`hidden` must be a sequence of ints (layer widths); got {hidden!r} "
                f"with {w!r} of type {type(w).__name__}."
            )
        if w < 1:
            raise ValueError(f"`hidden` widths must be ints >= 1; got {hidden!r}.")
    return tuple(int(w) for w in hidden)


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """The architecture of the compared networks (the kernel initializer varies per run).

    Args:
        hidden: widths of the hidden layers, e.g. ``(10, 5)``; ``()`` is logistic regression.
        activation: hidden nonlinearity, one of :data:`ACTIVATIONS`.
        bias_init: bias initializer, anything :func:`jinit.get` accepts.
        loss: the output head, one of :data:`LOSSES` (default ``"softmax"``).
        use_bias: whether the layers have biases (default True).

    Raises:
        TypeError: if ``hidden`` is not a sequence of ints (NumPy integers are accepted)
            or ``activation`` is not a string.
        ValueError: for a width < 1 or an unknown activation.

    Examples:
        >>> MLPConfig(hidden=[16, 16], activation="tanh").hidden
        (16, 16)
        >>> MLPConfig.deep(depth=3, width=8).hidden
        (8, 8, 8)
    """

    hidden: tuple[int, ...] = (32,) * 10
    activation: str = "relu"
    bias_init: InitSpec = "zeros"
    loss: str = "softmax"
    use_bias: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _check_hidden(self.hidden))
        _check_activation(self.activation)
        check_str("loss", self.loss, LOSSES)
        check_bool("use_bias", self.use_bias)

    @classmethod
    def deep(cls, depth: int, width: int, **kwargs: Any) -> MLPConfig:
        """``depth`` hidden layers of ``width`` units each (ints >= 1, NumPy ints accepted)."""
        depth, width = check_int("depth", depth, 1), check_int("width", width, 1)
        return cls(hidden=(width,) * depth, **kwargs)


class MLP(nnx.Module):
    """Dense layers with a shared hidden nonlinearity and a linear output layer.

    Every kernel (hidden and output) is drawn from ``kernel_init`` and every bias from
    ``bias_init``; both are resolved with :func:`jinit.get`, so names such as
    ``"he_normal"`` or ``"torch.linear_default"`` and dict specs work. A list or tuple of
    specs, one per layer (input to output), gives every layer its own initializer.

    Args:
        in_features: input width.
        hidden: hidden-layer widths.
        out_features: output width (number of classes for the trainer).
        activation: one of :data:`ACTIVATIONS`.
        kernel_init: kernel initializer spec, or a sequence of specs, one per layer.
        bias_init: bias initializer spec.
        use_bias: whether the layers have biases.
        rngs: Flax random streams; kernels and biases use ``rngs.params()``, layer by
            layer from the input (kernel, then bias).

    Examples:
        >>> model = MLP(2, (8, 8), 3, kernel_init="he_normal", rngs=nnx.Rngs(0))
        >>> model(jnp.ones((5, 2))).shape
        (5, 3)
        >>> logits, hidden = model.forward_with_activations(jnp.ones((5, 2)))
        >>> [h.shape for h in hidden]
        [(5, 8), (5, 8)]
        >>> per_layer = MLP(2, (8,), 1, kernel_init=["he_normal", "zeros"], use_bias=False,
        ...                 rngs=nnx.Rngs(0))
        >>> bool((per_layer.kernels()[1] == 0).all()), per_layer.layers[0].bias is None
        (True, True)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str = "relu",
        kernel_init: InitSpec = "lecun_normal",
        bias_init: InitSpec = "zeros",
        use_bias: bool = True,
        rngs: nnx.Rngs,
    ) -> None:
        _check_activation(activation)
        check_bool("use_bias", use_bias)
        widths = (in_features, *_check_hidden(hidden), out_features)
        n_layers = len(widths) - 1
        if _is_layer_list(kernel_init):
            if len(kernel_init) != n_layers:
                raise ValueError(
                    f"`kernel_init` as a per-layer list needs one spec per layer ({n_layers}: "
                    f"{n_layers - 1} hidden + the output layer); got {len(kernel_init)}: "
                    f"{list(kernel_init)!r}."
                )
            kernels = [_initializer("kernel_init", spec) for spec in kernel_init]
        else:
            kernels = [_initializer("kernel_init", kernel_init)] * n_layers
        bias = _initializer("bias_init", bias_init)
        self.layers = nnx.List(
            [
                nnx.Linear(
                    n_in, n_out, kernel_init=kernel, bias_init=bias, use_bias=use_bias, rngs=rngs
                )
                for (n_in, n_out), kernel in zip(itertools.pairwise(widths), kernels, strict=True)
            ]
        )
        self.activation = activation

    def forward_with_activations(
        self, x: jax.Array, shifts: Sequence[jax.Array] | None = None
    ) -> tuple[jax.Array, list[jax.Array]]:
        """Returns the logits and the post-activation output of every hidden layer.

        ``shifts`` (one array per hidden layer, shaped like its pre-activation) are added
        to the pre-activations; the gradient of a loss with respect to zero shifts is the
        gradient with respect to the pre-activations (Glorot & Bengio's back-propagated
        gradients).
        """
        act = ACTIVATIONS[self.activation]
        hidden = []
        for i, layer in enumerate(self.layers[:-1]):
            pre = layer(x)
            x = act(pre if shifts is None else pre + shifts[i])
            hidden.append(x)
        return self.layers[-1](x), hidden

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward_with_activations(x)[0]

    def kernels(self) -> list[jax.Array]:
        """The kernels of all layers, input to output."""
        return [layer.kernel[...] for layer in self.layers]
