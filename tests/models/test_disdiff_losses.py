"""DisDiff's loss terms on tiny batches, against hand computations."""

import math

import pytest
import torch

from untwine.models.disdiff_losses import (
    disentangle_logits,
    disentangle_loss,
    dynamic_weight,
    reconstruction_loss,
)


def test_reconstruction_loss_by_hand():
    eps = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    field_sum = torch.tensor([[2.0, 0.0], [-1.0, 4.0]])
    shift = torch.tensor([[-0.5], [0.25]])
    noise = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    # ε + kS − ε: [[0, −1], [0.25, 0]]  -> mean |.| = 1.25 / 4
    assert reconstruction_loss(eps, field_sum, shift, noise).item() == pytest.approx(1.25 / 4)


def test_logits_by_hand():
    z = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # n=1, N=2, D=2
    z_hat = torch.tensor([[[3.0, 4.0], [1.0, 1.0]]])
    z_hat_c = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    a, b = disentangle_logits(z_hat, z_hat_c, z)
    assert a.tolist() == [[5.0, 0.0]]
    assert b.tolist() == [[5.0, 0.0]]


def test_dynamic_weight_is_mean_square_without_gradient():
    x0 = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x0_c = torch.tensor([[0.0, 0.0], [0.0, 3.0]], requires_grad=True)
    w = dynamic_weight(x0, x0_c)
    assert w.tolist() == [2.5, 4.5] and not w.requires_grad


def test_disentangle_loss_by_hand():
    z = torch.zeros(2, 2, 1)
    z_hat = torch.tensor([[[1.0], [0.0]], [[0.0], [0.0]]])
    z_hat_c = torch.tensor([[[0.0], [0.0]], [[0.0], [2.0]]])
    c = torch.tensor([0, 1])
    w = torch.tensor([0.5, 2.0])
    out = disentangle_loss(z_hat, z_hat_c, z, c, w, scale=0.05)
    # sample 0: a = [1, 0], b = [1 − 0, 0 − 0] = [1, 0]; target 0
    ce0 = -math.log(math.e / (math.e + 1))
    # sample 1: a = [0, 2], b = [0, 0 − 2] = [0, −2]; target 1
    ce1_a = -math.log(math.exp(2) / (1 + math.exp(2)))
    ce1_b = -math.log(math.exp(-2) / (1 + math.exp(-2)))
    expected = 0.05 * (0.5 * (ce0 + ce0) + 2.0 * (ce1_a + ce1_b)) / 2
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)
    assert out["invariant"].item() == pytest.approx((ce0 + ce1_a) / 2, rel=1e-6)
    assert out["variant"].item() == pytest.approx((ce0 + ce1_b) / 2, rel=1e-6)


def test_disentangle_loss_does_not_push_the_encoder_target():
    z = torch.randn(3, 2, 4, requires_grad=True)
    z_hat_c = torch.randn(3, 2, 4, requires_grad=True)
    out = disentangle_loss(
        torch.randn(3, 2, 4), z_hat_c, z, torch.tensor([0, 1, 0]), torch.ones(3), 1.0
    )
    out["loss"].backward()
    assert z.grad is None and z_hat_c.grad.abs().sum() > 0
