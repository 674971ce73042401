import math

import pytest
import torch

from untwine.errors import UntwineError
from untwine.models import interventions as I
from untwine.models import regularisers as R
from untwine.models.one_at_a_time import OneAtATime, budget_schedule, switch_decision

# -- pure loss terms -------------------------------------------------------------------------


def test_masked_kl_sums_only_switched_on_dims():
    kl = torch.tensor([[1.0, 2.0, 4.0], [3.0, 0.0, 8.0]])
    assert I.masked_kl(kl, torch.tensor([1.0, 0.0, 1.0])).item() == pytest.approx((5 + 11) / 2)
    assert I.masked_kl(kl, torch.zeros(3)).item() == 0.0


def test_linear_ramp_holds_then_rises_then_holds():
    got = [I.linear_ramp(1.0, 9.0, t, begin=10, length=8) for t in (0, 10, 12, 18, 100)]
    assert got == pytest.approx([1.0, 1.0, 3.0, 9.0, 9.0])
    assert I.linear_ramp(1.0, 9.0, 10, begin=10, length=0) == 9.0


def test_mse_consistency_is_summed_squared_error_of_means():
    target = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    mu = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    got = I.code_consistency(target, mu, torch.zeros(2, 2), "mse")
    assert got.item() == pytest.approx((1.0 + 5.0) / 2)


def test_nll_consistency_is_gaussian_negative_log_likelihood():
    target = torch.tensor([[1.0]], dtype=torch.float64)
    mu = torch.tensor([[0.0]], dtype=torch.float64)
    logvar = torch.tensor([[math.log(4.0)]], dtype=torch.float64)
    hand = 0.5 * math.log(2 * math.pi * 4.0) + 1.0 / 8.0
    assert I.code_consistency(target, mu, logvar, "nll").item() == pytest.approx(hand, rel=1e-12)
    with pytest.raises(UntwineError, match="mse"):
        I.code_consistency(target, mu, logvar, "l1")


def test_gan_losses_match_hand_computation():
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    fake = torch.tensor([[0.0], [2.0]])
    real = torch.tensor([[1.0], [-1.0]])
    gen = -(math.log(sig(0.0)) + math.log(sig(2.0))) / 2
    assert I.generator_loss(fake).item() == pytest.approx(gen, rel=1e-6)
    d_real = -(math.log(sig(1.0)) + math.log(sig(-1.0))) / 2
    d_fake = -(math.log(1 - sig(0.0)) + math.log(1 - sig(2.0))) / 2
    got = I.gan_discriminator_loss(real, fake).item()
    assert got == pytest.approx(0.5 * (d_real + d_fake), rel=1e-6)


# -- the one-at-a-time schedule --------------------------------------------------------------


def test_switch_decision_waits_while_growing_then_keeps_or_drops():
    rule = {"active_kl": 0.1, "plateau_tol": 0.05, "max_windows": 4}
    assert switch_decision(1.0, 0.5, 1, **rule) == "wait"
    assert switch_decision(1.02, 1.0, 2, **rule) == "keep"  # |Δ| 0.02 ≤ 0.05 · 1.0
    assert switch_decision(0.02, 0.021, 1, **rule) == "drop"  # settled at ≈ 0 nats
    assert switch_decision(3.0, 1.0, 4, **rule) == "keep"  # still growing, out of windows


def _toy(size: int, **fields) -> OneAtATime:
    """A schedule of ``size`` dims on the toy clock: no pre-training, windows of 5 steps,
    plateau at 5 %, at most 4 windows, 0.1 nats active, no averaging; ``fields`` override."""
    settings = dict(
        pretrain_steps=0, window=5, plateau_tol=0.05, max_windows=4, active_kl=0.1, kl_decay=1.0
    )
    return OneAtATime(size, **{**settings, **fields})


def _simulate(
    schedule: OneAtATime,
    informative: int,
    steps: int,
    rise: int,
    collapse: tuple[int, int] = (0, 0),
) -> None:
    """Feed the schedule a toy whose answer is known: the first ``informative`` d dims carry a
    factor (KL rises linearly to 2 nats over ``rise`` steps once switched on); the rest carry
    nothing (KL 0.01); z holds 3 nats. During steps ``collapse[0]`` to ``collapse[1] − 1`` the
    whole code collapses (every d dim and z at 0.01 nats), as DOT-VAE's does on dSprites while β
    rises; after it the factors come back."""
    for step in range(steps):
        kl = torch.full((schedule.dims,), 0.01)
        collapsed = collapse[0] <= step < collapse[1]
        for k in range(informative):
            on = int(schedule.switch_step[k])
            if schedule.mask[k] > 0 and on >= 0 and not collapsed:
                kl[k] = 2.0 * min(1.0, (step - on + 1) / rise)
        schedule.observe(kl, 0.01 if collapsed else 3.0)
        schedule.update(step)


def test_schedule_switches_informative_dims_on_one_at_a_time_and_stops_at_the_first_empty():
    s = _toy(5, pretrain_steps=10, window=10)
    _simulate(s, informative=3, steps=200, rise=10)
    # d_1 on after pre-training (step 10); each informative dim grows for one window (wait),
    # is flat for the next (keep); d_4 stays at 0.01 nats and is dropped one window after.
    assert s.switch_step.tolist() == [10, 30, 50, 70, -1]
    assert s.mask.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert bool(s.done)
    assert int(s.discovered().sum()) == 3


def test_schedule_keeps_every_dim_when_all_carry_a_factor_and_stops_at_k_max():
    s = _toy(3)
    _simulate(s, informative=3, steps=100, rise=5)
    assert s.switch_step.tolist() == [0, 10, 20]
    assert s.mask.tolist() == [1.0, 1.0, 1.0]
    assert bool(s.done) and int(s.discovered().sum()) == 3


def test_schedule_judges_a_still_growing_dim_after_max_windows():
    s = _toy(2, plateau_tol=0.01, max_windows=2)
    _simulate(s, informative=1, steps=11, rise=100)  # d_1 still growing at step 10
    assert s.switch_step.tolist() == [0, 10]  # kept after 2 windows although still growing


def test_budget_schedule_fits_every_dim_into_the_run():
    got = budget_schedule(600, 10)
    # 60 pre-training steps, β ramp until step 300, windows of ⌊0.8 · 540 / 20⌋ = 21 steps
    assert got == {
        "pretrain_steps": 60,
        "beta_ramp_steps": 240,
        "window": 21,
        "max_windows": 2,
        "kl_decay": 0.0952,
    }
    # no dim waiting for β: all 10 dims each judged after two windows, by step 60 + 420 = 480
    s = OneAtATime(10, got["pretrain_steps"], got["window"], 0.0, 2, 0.001, 1.0)
    _simulate(s, informative=10, steps=600, rise=10_000)  # never settles: two windows each
    assert bool(s.done) and s.switch_step.tolist()[-1] == 60 + 9 * 2 * 21
    with pytest.raises(UntwineError, match="at least 30 steps"):
        budget_schedule(20, 10)


def test_schedule_budget_sets_the_schedule_fields_and_refuses_a_conflict():
    from untwine.models.dotvae import DOTVAEConfig

    cfg = DOTVAEConfig(schedule_budget=600)
    assert (cfg.pretrain_steps, cfg.window, cfg.beta_ramp_steps) == (60, 21, 240)
    again = DOTVAEConfig(**{k: getattr(cfg, k) for k in vars(cfg)})  # a saved config.json
    assert again == cfg
    with pytest.raises(UntwineError, match="schedule_budget sets window"):
        DOTVAEConfig(schedule_budget=600, window=50)


# -- the model ---------------------------------------------------------------------------------


def _model(**fields):
    from untwine.models.dotvae import DOTVAE, DOTVAEConfig

    torch.manual_seed(0)
    fields = {"latents": 4, "entangled": 3, **fields}
    return DOTVAE(DOTVAEConfig(**fields), (1, 64, 64))


def _batch(n=8):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.7).float()


def test_pretraining_is_a_plain_vae_on_z_with_every_d_dim_off():
    model = _model(pretrain_steps=5, adv_weight=1.0)
    out = model.loss(_batch(), 0)
    assert out["kl_d"].item() == 0.0 and out["switched_on"].item() == 0
    assert out["consistency"].item() == 0.0 and out["generator"].item() == 0.0
    # every d dim is off and held at the prior (off_kl_weight = 1 by default)
    hand = out["recon"] + out["kl_z"] + out["kl_off"]
    assert out["loss"].item() == pytest.approx(hand.item(), rel=1e-6)
    literal = _model(pretrain_steps=5, adv_weight=1.0, off_kl_weight=0.0).loss(_batch(), 0)
    assert literal["loss"].item() == pytest.approx((out["recon"] + out["kl_z"]).item(), rel=1e-6)
    # switched-off d dims do not reach the decoder
    code = torch.randn(2, 7)
    moved = code.clone()
    moved[:, :4] += 5.0
    assert torch.equal(model.decode(code), model.decode(moved))


def test_loss_adds_beta_kl_z_masked_kl_d_consistency_and_gan_terms():
    model = _model(
        pretrain_steps=0, beta_start=2.0, consistency_weight=3.0, adv_weight=0.5, off_kl_weight=0.25
    )
    model.schedule.mask.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    out = model.loss(_batch(), 0)
    mu, logvar = model.encode(_batch())
    kl = R.gaussian_kl(mu, logvar)
    assert out["kl_d"].item() == pytest.approx(kl[:, :2].sum(1).mean().item(), rel=1e-5)
    assert out["kl_off"].item() == pytest.approx(kl[:, 2:4].sum(1).mean().item(), rel=1e-5)
    hand = (
        out["recon"]
        + 2.0 * out["kl_z"]
        + out["kl_d"]
        + 0.25 * out["kl_off"]
        + 3.0 * out["consistency"]
        + 0.5 * out["generator"]
    )
    assert out["loss"].item() == pytest.approx(hand.item(), rel=1e-6)
    assert out["switched_on"].item() == 2
    assert out["consistency"].item() > 0 and out["generator"].item() > 0
    assert out["discriminator_loss"].requires_grad


def test_beta_rises_linearly_after_pretraining():
    model = _model(pretrain_steps=10, beta_start=1.0, beta_end=5.0, beta_ramp_steps=20)
    assert [model.beta(t) for t in (0, 10, 20, 30, 99)] == pytest.approx([1, 1, 3, 5, 5])


def test_sleep_step_resamples_one_switched_on_dim_and_asks_for_the_whole_code():
    model = _model(pretrain_steps=0, adv_weight=0.0)
    mask = torch.tensor([0.0, 1.0, 0.0, 1.0])
    model.schedule.mask.copy_(mask)
    mu = torch.randn(6, 7)
    torch.manual_seed(3)
    consistency, generator, fake = model.sleep_terms(mu, mask)
    torch.manual_seed(3)
    dims = torch.tensor([1, 3])[torch.randint(2, (6,))]
    code = I.intervene(mu * torch.cat([mask, torch.ones(3)]), dims, torch.randn(6), "set")
    mu_hat, _ = model.encode(torch.sigmoid(model.decode(code)))
    kept = [1, 3, 4, 5, 6]
    hand = (mu_hat[:, kept] - code[:, kept]).square().sum(1).mean()
    assert consistency.item() == pytest.approx(hand.item(), rel=1e-5)
    assert generator.item() == 0.0 and fake.shape == (6, 1, 64, 64)


def test_representation_is_d_with_switched_off_dims_zeroed():
    model = _model(pretrain_steps=0)
    model.schedule.mask.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0]))
    codes = model.represent(_batch(3))
    assert codes.shape == (3, 4)
    assert codes[:, 1].abs().sum() == 0 and codes[:, 3].abs().sum() == 0
    assert model.decode_images(codes).shape == (3, 1, 64, 64)
    assert _model(codes="all").represent(_batch(3)).shape == (3, 7)


def test_extra_metrics_count_kept_dims_that_carry_information():
    model = _model(pretrain_steps=0, active_kl=0.1)
    s = model.schedule
    s.mask.copy_(torch.tensor([1.0, 1.0, 1.0, 0.0]))
    s.kl.copy_(torch.tensor([2.0, 0.5, 0.05, 0.0]))
    s.switch_step.copy_(torch.tensor([0, 40, 90, -1]))
    metrics = model.extra_metrics(None, 0)
    assert metrics["discovered_factors"] == 2
    assert metrics["switch_steps"] == [0, 40, 90, -1]
    assert model.active_latents().tolist() == [True, True, False, False]


@pytest.mark.parametrize("data", ["dsprites", "shapes3d", "mpi3d"])
def test_trains_a_few_steps_on_every_conv_twin(tmp_path, data):
    from seedvae_helpers import tiny_run_config

    from untwine import runs
    from untwine.train import train

    sets = ("pretrain_steps=1", "window=1")
    train(tiny_run_config("dotvae", 3, data, sets), tmp_path, quiet=True)
    rows = runs.read_log(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["switched_on"] == 0 and rows[1]["switched_on"] == 1
    assert all(math.isfinite(r["loss"]) for r in rows)


def test_resume_is_bit_exact_across_schedule_changes(tmp_path):
    from seedvae_helpers import assert_resume_is_bit_exact

    sets = ("pretrain_steps=2", "window=1", "active_kl=0", "max_windows=1")
    assert_resume_is_bit_exact(tmp_path, "dotvae", sets)


def test_an_empty_dim_waits_instead_of_being_dropped_while_beta_still_rises():
    rule = {"active_kl": 0.1, "plateau_tol": 0.05, "max_windows": 4}
    assert switch_decision(0.02, 0.021, 1, **rule, may_drop=False) == "wait"
    s = _toy(3, drop_from=40)
    _simulate(s, informative=0, steps=100, rise=5)  # nothing to find
    assert s.switch_step.tolist() == [0, -1, -1]
    assert s.mask.tolist() == [0.0, 0.0, 0.0] and bool(s.done)
    # judged every 5 steps from t = 5; the first judgement at t ≥ 40 drops it
    assert int(s.check_step) == 35


def _collapse_toy(**fields) -> OneAtATime:
    # 3 of 5 dims carry a factor; drops are allowed from t = 45, in the middle of a collapse of
    # the whole code over steps 40–79, while d_2 is on trial (switched on at 30)
    s = _toy(5, pretrain_steps=10, window=10, drop_from=45, **fields)
    _simulate(s, informative=3, steps=300, rise=10, collapse=(40, 80))
    return s


def test_a_dim_is_not_dropped_while_the_whole_code_has_collapsed():
    s = _collapse_toy()
    # d_2 waits out the collapse (d_1, kept, is empty too), is kept once the factors are back,
    # and the schedule goes on to find all three and drop the first empty dim, d_4
    assert s.mask.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert bool(s.done) and int(s.discovered().sum()) == 3
    assert s.switch_step[1] == 30 and s.switch_step[2] > 80
    # without the guard an empty dim is dropped whatever the rest of the code holds: d_2 is
    # judged empty in the collapse and the schedule ends with one factor of three
    s = _collapse_toy(drop_needs_active_code=False)
    assert s.mask.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0] and int(s.discovered().sum()) == 1


def test_a_dim_whose_kl_still_rises_is_not_dropped_after_max_windows():
    rule = {"active_kl": 0.1, "plateau_tol": 0.05, "max_windows": 2}
    assert switch_decision(0.05, 0.025, 2, **rule) == "wait"  # under 0.1 but rising
    assert switch_decision(0.05, 0.025, 2, **rule, drop_while_rising=True) == "drop"
    assert switch_decision(0.05, 0.0499, 2, **rule) == "drop"  # flat: it stays empty


def _slow_toy(**fields) -> OneAtATime:
    # 2 of 3 dims carry a factor whose KL grows slowly (2 nats over 400 steps: 0.05 after the
    # two windows, 10 steps, that force a judgement); the third carries nothing
    s = _toy(3, max_windows=2, **fields)
    _simulate(s, informative=2, steps=200, rise=400)
    return s


def test_a_slowly_growing_dim_is_kept_once_it_crosses_active_kl():
    s = _slow_toy()
    assert s.switch_step.tolist() == [0, 20, 40]  # each kept at 0.1 nats after 4 windows
    assert s.mask.tolist() == [1.0, 1.0, 0.0] and bool(s.done)
    assert int(s.discovered().sum()) == 2
    # dropping on a rising KL ends the schedule at d_1, with nothing found
    s = _slow_toy(drop_while_rising=True)
    assert s.mask.tolist() == [0.0, 0.0, 0.0] and int(s.discovered().sum()) == 0


def test_the_first_dim_is_compared_with_z():
    s = _toy(3)
    s.observe(torch.full((3,), 0.01), 3.0)
    assert s.code_is_active(0)  # z holds 3 nats: an empty d_1 may be dropped
    s.observe(torch.full((3,), 0.01), 0.01)
    assert not s.code_is_active(0)  # nothing anywhere: wait
    s.mask[1] = 1.0
    s.kl[1] = 2.0
    assert s.code_is_active(0)  # another switched-on dim carries 2 nats (z no longer asked)
    assert not s.code_is_active(1)  # for d_2 the rest is d_1 at 0.01 nats


def test_a_schedule_saved_before_kl_z_existed_still_loads():
    s = _toy(3)
    old = {k: v for k, v in s.state_dict().items() if k != "kl_z"}
    fresh = _toy(3)
    fresh.load_state_dict(old)
    assert float(fresh.kl_z) == 0.0


def test_traversal_rows_mark_inactive_latents():
    import numpy as np

    from untwine.viz.traversal import row_labels

    labels = row_labels(np.array([1, 0]), np.array([0.01, 2.0]), np.array([False, True]))
    assert labels == ["z1  KL 2.00", "z0  KL 0.01  inactive"]
    assert row_labels(np.array([0]), np.array([0.5]), None) == ["z0  KL 0.50"]


def test_a_run_draws_pictures_and_reports_its_schedule_as_json(tmp_path):
    import json

    from seedvae_helpers import tiny_run_config

    from untwine.metrics.evaluate import jsonable
    from untwine.pipeline import run

    sets = ("pretrain_steps=1", "window=1", "count_images=16")
    result = run(tiny_run_config("dotvae", 3, sets=sets), tmp_path, quiet=True)
    assert (tmp_path / "traversal.png").exists() and (tmp_path / "reconstructions.png").exists()
    extra = json.loads(json.dumps(jsonable(result.model.extra_metrics(result.dataset, 0))))
    assert extra["switch_steps"][0] == 1 and isinstance(extra["discovered_factors"], int)
