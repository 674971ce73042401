import math

import pytest
import torch

from untwine.errors import UntwineError
from untwine.models import interventions as I

# -- pure loss terms -------------------------------------------------------------------------


def test_shift_intervention_changes_one_latent_per_row():
    z = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    out = I.intervene(z, torch.tensor([2, 0]), torch.tensor([0.5, -1.0]), "shift")
    assert out.tolist() == [[0.0, 1.0, 2.5], [2.0, 4.0, 5.0]]
    assert z.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]  # not in place


def test_set_intervention_replaces_the_value():
    z = torch.zeros(2, 2)
    out = I.intervene(z, torch.tensor([1, 1]), torch.tensor([0.3, -0.7]), "set")
    assert out.flatten().tolist() == pytest.approx([0.0, 0.3, 0.0, -0.7])


def test_unknown_intervention_raises():
    with pytest.raises(UntwineError, match="shift"):
        I.intervene(torch.zeros(1, 1), torch.tensor([0]), torch.tensor([1.0]), "swap")


def test_episode_labels_put_every_class_in_both_halves():
    labels, support = I.episode_labels(7, 3)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert support.tolist() == [True, True, True, False, False, False, False]
    with pytest.raises(UntwineError, match="at least 8"):
        I.episode_labels(7, 4)


def test_class_means_are_per_class_averages():
    e = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    means = I.class_means(e, torch.tensor([0, 0, 1]), 2)
    assert means.tolist() == [[2.0, 1.0], [0.0, 5.0]]


def test_prototypical_loss_matches_hand_computation():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    s_labels = torch.tensor([0, 0, 1])  # prototypes c0 = (1, 0), c1 = (0, 3)
    query = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
    q_labels = torch.tensor([0, 1])
    # query 0: d² = (1, 1 + 4) = (1, 5); query 1: d² = (1 + 4, 1) = (5, 1)
    nll0 = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-5)))
    nll1 = -math.log(math.exp(-1) / (math.exp(-5) + math.exp(-1)))
    loss, acc = I.prototypical_loss(support, s_labels, query, q_labels, 2)
    assert loss.item() == pytest.approx((nll0 + nll1) / 2, rel=1e-12)
    assert acc.item() == 1.0


def test_isometry_loss_is_zero_for_proportional_displacements_and_scale_free():
    delta = torch.tensor([0.5, 1.0, 2.0])
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 0.0]])  # ‖e‖ = 2|δ| for all
    assert I.isometry_loss(e, delta).item() == pytest.approx(0.0, abs=1e-7)
    uneven = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])  # r = 2, 1, 1.5
    # mean 1.5, population variance (0.25 + 0.25 + 0) / 3 = 1/6 -> (1/6) / 2.25
    assert I.isometry_loss(uneven, delta).item() == pytest.approx(1 / 6 / 2.25, rel=1e-6)
    assert I.isometry_loss(10 * uneven, delta).item() == pytest.approx(1 / 6 / 2.25, rel=1e-6)


def _episode_loss(decoder_columns: torch.Tensor, seed: int = 0) -> float:
    """Prototype loss of shift interventions through a linear decoder x = W z, embedding = x."""
    g = torch.Generator().manual_seed(seed)
    latents = decoder_columns.shape[1]
    batch = 40
    z = torch.randn(batch, latents, generator=g, dtype=torch.float64)
    labels, support = I.episode_labels(batch, latents)
    delta = 0.5 + 1.5 * torch.rand(batch, generator=g, dtype=torch.float64)
    z_new = I.intervene(z, labels, delta, "shift")
    e = z_new @ decoder_columns.T - z @ decoder_columns.T
    loss, _ = I.prototypical_loss(
        e[support], labels[support], e[~support], labels[~support], latents
    )
    return loss.item()


def test_prototype_loss_is_smallest_when_each_latent_moves_the_image_its_own_way():
    pixels = torch.eye(6, dtype=torch.float64)
    own_direction = pixels[:, :3]  # latent k lights pixel k
    shared = torch.stack([pixels[:, 0], pixels[:, 0], pixels[:, 2]], 1)  # latents 0, 1 alike
    mixed = pixels[:, :3] @ torch.tensor(
        [[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )  # latents 0 and 1 move the image in nearly the same direction
    own, same, near = (_episode_loss(w) for w in (own_direction, shared, mixed))
    assert own < near < same
    assert same > 0.5 * math.log(2)  # two indistinguishable classes: at least ~ half log 2
