import math

import pytest
import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.models import MODELS, FactorVAE, FactorVAEConfig


def _model(**fields) -> FactorVAE:
    return MODELS["factorvae"].build(FactorVAEConfig(latents=4, **fields), (1, 64, 64))


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(seed))


def _constant_discriminator(logit0: float, logit1: float) -> nn.Linear:
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([logit0, logit1]))
    return layer


def _split(model: FactorVAE):
    extra = model.extra_optimisers()[0]
    extra_ids = {id(p) for p in extra.params}
    main = [p for p in model.parameters() if id(p) not in extra_ids]
    return main, extra


def test_second_batch_doubles_the_batch_and_same_batch_does_not():
    assert _model().images_per_step(64) == 128
    assert _model(shuffle="same_batch").images_per_step(64) == 64


def test_odd_batch_with_second_batch_shuffle_raises():
    with pytest.raises(UntwineError, match="even"):
        _model().loss(_images(5), 0)


def test_tc_and_discriminator_loss_from_fixed_logits():
    torch.manual_seed(0)
    model = _model()
    model.discriminator = _constant_discriminator(2.0, -1.0)
    out = model.loss(_images(8), 0)
    assert out["tc"].item() == pytest.approx(3.0)
    hand = 0.5 * (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(3.0)))
    assert out["discriminator_loss"].item() == pytest.approx(hand, rel=1e-6)
    assert out["discriminator_accuracy"].item() == pytest.approx(0.5)
    expected = out["recon"] + out["kl"] + 10.0 * 3.0
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_second_half_of_the_batch_only_feeds_the_discriminator():
    model = _model()
    first, other_a, other_b = _images(4, 0), _images(4, 1), _images(4, 2)
    torch.manual_seed(3)
    a = model.loss(torch.cat([first, other_a]), 0)
    torch.manual_seed(3)
    b = model.loss(torch.cat([first, other_b]), 0)
    assert a["loss"].item() == b["loss"].item() and a["recon"].item() == b["recon"].item()
    assert a["discriminator_loss"].item() != b["discriminator_loss"].item()


def test_discriminator_optimiser_is_adam_with_the_papers_settings():
    model = _model()
    main, extra = _split(model)
    assert extra.name == "discriminator_loss"
    assert {id(p) for p in extra.params} == {id(p) for p in model.discriminator.parameters()}
    assert len(main) + len(extra.params) == len(list(model.parameters()))
    opt = extra.make(extra.params)
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.5, 0.9)


def test_discriminator_loss_has_no_path_to_the_vae():
    torch.manual_seed(0)
    model = _model()
    main, extra = _split(model)
    out = model.loss(_images(8), 0)
    grads = torch.autograd.grad(out["discriminator_loss"], main, allow_unused=True)
    assert all(g is None for g in grads)
    # the VAE objective does reach the discriminator (through TC): the loop must zero it
    disc_grads = torch.autograd.grad(out["loss"], extra.params, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in disc_grads)


@pytest.mark.parametrize("shuffle", ["second_batch", "same_batch"])
def test_training_sequence_updates_each_network_from_its_own_loss_only(shuffle):
    torch.manual_seed(0)
    model = _model(shuffle=shuffle)
    main, extra = _split(model)
    main_opt = torch.optim.Adam(main, lr=1e-3)
    disc_opt = extra.make(extra.params)
    out = model.loss(_images(8), 0)
    want_main = torch.autograd.grad(out["loss"], main, retain_graph=True)
    want_disc = torch.autograd.grad(out["discriminator_loss"], extra.params, retain_graph=True)

    # the training loop's sequence
    main_opt.zero_grad()
    out["loss"].backward()
    disc_opt.zero_grad()
    out[extra.name].backward()
    got_main = [p.grad.clone() for p in main]
    got_disc = [p.grad.clone() for p in extra.params]
    before_main = [p.detach().clone() for p in main]
    before_disc = [p.detach().clone() for p in extra.params]
    main_opt.step()
    disc_opt.step()

    assert all(torch.equal(g, w) for g, w in zip(got_main, want_main, strict=True))
    assert all(torch.equal(g, w) for g, w in zip(got_disc, want_disc, strict=True))
    assert any(not torch.equal(p, b) for p, b in zip(main, before_main, strict=True))
    assert any(not torch.equal(p, b) for p, b in zip(extra.params, before_disc, strict=True))


def test_main_step_alone_leaves_the_discriminator_and_vice_versa():
    torch.manual_seed(0)
    model = _model()
    main, extra = _split(model)
    main_opt = torch.optim.Adam(main, lr=1e-3)
    disc_opt = extra.make(extra.params)
    out = model.loss(_images(8), 0)
    main_opt.zero_grad()
    out["loss"].backward()
    disc_opt.zero_grad()
    out[extra.name].backward()
    disc_before = [p.detach().clone() for p in extra.params]
    main_opt.step()
    assert all(torch.equal(p, b) for p, b in zip(extra.params, disc_before, strict=True))
    main_before = [p.detach().clone() for p in main]
    disc_opt.step()
    assert all(torch.equal(p, b) for p, b in zip(main, main_before, strict=True))
