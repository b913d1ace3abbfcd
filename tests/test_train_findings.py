"""The trainer reproduces the classic initialization findings (qualitatively, small sizes).

- Ng's course exercise: zero init leaves units symmetric, the loss stays at ln 2 on a
  balanced binary task, while He init learns it.
- He et al. (2015): in a deep ReLU MLP He init keeps the activation scale through depth
  and trains, Glorot init lets it shrink and stalls.
- Glorot & Bengio (2010): with the "standard" U(±1/sqrt(fan_in)) init a deep tanh net's
  activations shrink layer by layer; normalized (Glorot) init keeps them comparable.
"""

import math

import numpy as np
import pytest

from jinit import train


def test_zero_init_stays_symmetric_at_ln2_and_he_learns_circles():
    # The study of test_train.py's `small_study` (one compiled program for both files).
    study = train.compare(
        ["zeros", "he_normal", "glorot_uniform"],
        "circles",
        model=train.MLPConfig(hidden=(16, 16)),
        train=train.TrainConfig(steps=150, learning_rate=0.05),
        seeds=2,
    )
    zeros, he, _ = study.runs
    np.testing.assert_allclose(study.curves["zeros"], math.log(2), atol=1e-6)
    assert zeros["activation_std_at_init"] == [0.0, 0.0]
    assert zeros["test_accuracy"]["mean"] == pytest.approx(0.5)  # chance on balanced data
    assert zeros["steps_to_target"] == [None, None]
    assert he["test_accuracy"]["mean"] >= 0.95
    assert he["final_train_loss"]["mean"] < 0.1
    assert all(s is not None for s in he["steps_to_target"])


def test_deep_relu_he_keeps_the_scale_and_trains_faster_than_glorot():
    study = train.compare(
        ["he_normal", "glorot_normal"],
        "circles",
        model=train.MLPConfig.deep(depth=16, width=32),
        train=train.TrainConfig(steps=80),
        seeds=2,
    )
    he, glorot = study.runs
    he_std, glorot_std = he["activation_std_at_init"], glorot["activation_std_at_init"]
    assert 0.3 < he_std[-1] / he_std[0] < 3.0  # He: the scale survives 16 layers
    assert glorot_std[-1] / glorot_std[0] < 0.05  # Glorot: it halves (in variance) per layer
    assert he["grad_norm_at_init"][0] > 10 * glorot["grad_norm_at_init"][0]
    assert he["loss_curve"][80] < 0.25 * glorot["loss_curve"][80]
    assert glorot["loss_curve"][80] > 0.5  # Glorot has barely moved from ln 2


def test_deep_tanh_standard_init_shrinks_while_glorot_keeps_activations():
    study = train.compare(
        ["torch.linear_default", "glorot_uniform"],
        "circles",
        model=train.MLPConfig.deep(depth=10, width=32, activation="tanh"),
        train=train.TrainConfig(steps=1),
        seeds=2,
    )
    standard, glorot = (run["activation_std_at_init"] for run in study.runs)
    assert standard[-1] / standard[0] < 0.05
    assert glorot[-1] / glorot[0] > 0.3
