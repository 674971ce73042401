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
    # scale α = 3 multiplies the logits: each query's gap of 4 becomes 12
    sharp, _ = I.prototypical_loss(support, s_labels, query, q_labels, 2, scale=3.0)
    assert sharp.item() == pytest.approx(math.log1p(math.exp(-12)), rel=1e-9)


def test_isometry_loss_is_zero_for_proportional_displacements_and_scale_free():
    delta = torch.tensor([0.5, 1.0, 2.0])
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 0.0]])  # ‖e‖ = 2|δ| for all
    assert I.isometry_loss(e, delta).item() == pytest.approx(0.0, abs=1e-7)
    uneven = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])  # r = 2, 1, 1.5
    # mean 1.5, population variance (0.25 + 0.25 + 0) / 3 = 1/6 -> (1/6) / 2.25
    assert I.isometry_loss(uneven, delta).item() == pytest.approx(1 / 6 / 2.25, rel=1e-6)
    assert I.isometry_loss(10 * uneven, delta).item() == pytest.approx(1 / 6 / 2.25, rel=1e-6)


def test_isometry_loss_does_not_reward_shrinking_the_displacement():
    delta = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    uneven = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]], dtype=torch.float64)
    for scale in (1e-6, 1e-4, 1.0, 1e4):  # P's displacements start near 1e-4
        assert I.isometry_loss(scale * uneven, delta).item() == pytest.approx(1 / 6 / 2.25)
    equal = torch.tensor([[1e-5, 0.0], [0.0, 2e-5], [-4e-5, 0.0]], dtype=torch.float64)
    assert I.isometry_loss(equal, delta).item() == pytest.approx(0.0, abs=1e-12)
    assert I.isometry_loss(torch.zeros(3, 2), delta.float()).item() == 0.0


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


# -- the model ---------------------------------------------------------------------------------


def _model(**fields):
    from untwine.models.protovae import ProtoVAE, ProtoVAEConfig

    torch.manual_seed(0)
    return ProtoVAE(ProtoVAEConfig(**fields), (1, 64, 64))


def _batch(n=8):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.7).float()


def test_loss_is_recon_plus_beta_kl_plus_weighted_prototype_and_isometry_terms():
    model = _model(beta=2.0, proto_weight=3.0, iso_weight=5.0, active_kl=0.0)
    model.latent_kl.fill_(1.0)  # every latent active
    out = model.loss(_batch(), 0)
    hand = out["recon"] + 2.0 * out["kl"] + 3.0 * out["proto"] + 5.0 * out["iso"]
    assert out["loss"].item() == pytest.approx(hand.item(), rel=1e-6)
    assert out["proto"].item() > 0 and out["iso"].item() > 0
    assert out["active_latents"].item() == 10


def test_prototype_loss_trains_the_prototypical_net_decoder_and_encoder():
    model = _model(active_kl=0.0)
    model.latent_kl.fill_(1.0)
    out = model.loss(_batch(), 0)
    (out["loss"] - out["recon"] - 4.0 * out["kl"]).backward()  # only the prototype/iso part
    for part in (model.prototypes, model.decoder, model.encoder):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)


def test_inactive_latents_are_left_out_and_fewer_than_two_give_no_episode():
    model = _model(active_kl=0.5)
    model.latent_kl.copy_(torch.tensor([0.0, 2.0, 0.0, 1.0, 0, 0, 0, 0, 0, 0]))
    assert model.active_latents().nonzero().flatten().tolist() == [1, 3]
    assert model.extra_metrics(None, 0)["discovered_factors"] == 2
    model.latent_kl.zero_()
    model.latent_kl[4] = 3.0
    proto, iso, acc = model.intervention_terms(torch.zeros(8, 10), torch.zeros(8, 1, 64, 64))
    assert (proto.item(), iso.item(), acc.item()) == (0.0, 0.0, 0.0)


def test_prototype_and_isometry_terms_ignore_the_size_of_the_displacement():
    model = _model(active_kl=0.0)
    model.latent_kl.fill_(1.0)
    z, logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(2)), _batch()
    torch.manual_seed(3)
    before = model.intervention_terms(z, logits)
    with torch.no_grad():
        model.prototypes.head.weight.mul_(1e-3)  # e = P(x̂') − P(x̂) shrinks 1000-fold
    torch.manual_seed(3)
    after = model.intervention_terms(z, logits)
    for old, new in zip(before, after, strict=True):
        assert new.item() == pytest.approx(old.item(), rel=1e-3)


def test_prototype_loss_sits_far_below_chance_in_a_short_training(tmp_path):
    from seedvae_helpers import tiny_run_config

    from untwine import runs
    from untwine.train import train

    sets = ("active_kl=0", "latents=4", "batch_size=16")
    train(tiny_run_config("protovae", 24, sets=sets), tmp_path, quiet=True)
    proto = [r["proto"] for r in runs.read_log(tmp_path)]
    # chance is ln 4 ≈ 1.39, where the loss sat on every step while P's tiny e were classified
    assert sum(proto) / len(proto) < 0.25 * math.log(4)


def test_training_average_of_kl_moves_towards_the_batch_kl():
    model = _model(kl_decay=0.5)
    out = model.loss(_batch(), 0)
    assert model.latent_kl.sum().item() == pytest.approx(0.5 * out["kl"].item(), rel=1e-5)


def test_bad_config_values_are_one_line_errors():
    from untwine.models.protovae import ProtoVAEConfig

    with pytest.raises(UntwineError, match="delta_max"):
        ProtoVAEConfig(delta_min=1.0, delta_max=0.5)
    with pytest.raises(UntwineError, match="kl_decay"):
        ProtoVAEConfig(kl_decay=2.0)
    with pytest.raises(UntwineError, match="proto_scale"):
        ProtoVAEConfig(proto_scale=0.0)


@pytest.mark.parametrize("data", ["dsprites", "shapes3d", "mpi3d"])
def test_trains_a_few_steps_on_every_conv_twin(tmp_path, data):
    from seedvae_helpers import tiny_run_config

    from untwine import runs
    from untwine.train import train

    train(tiny_run_config("protovae", 2, data, ("active_kl=0",)), tmp_path, quiet=True)
    rows = runs.read_log(tmp_path)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert rows[-1]["proto"] > 0  # episodes ran (every latent active with active_kl = 0)


def test_resume_is_bit_exact(tmp_path):
    from seedvae_helpers import assert_resume_is_bit_exact

    assert_resume_is_bit_exact(tmp_path, "protovae", ("active_kl=0",))


def test_a_run_measures_latent_kl_at_the_end_and_draws_pictures(tmp_path):
    from seedvae_helpers import tiny_run_config

    from untwine.pipeline import run

    sets = ("active_kl=0", "count_images=16")
    result = run(tiny_run_config("protovae", 2, sets=sets), tmp_path, quiet=True)
    assert (tmp_path / "traversal.png").exists()
    kl = result.model.measure_latent_kl(result.dataset)
    assert torch.allclose(result.model.latent_kl, kl)  # finish() measured it on the same images
    assert result.model.extra_metrics(result.dataset, 0)["discovered_factors"] == 10
