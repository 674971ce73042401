import math

import pytest
import torch

from untwine.errors import UntwineError
from untwine.models import interventions as I
from untwine.models.dotvae import OneAtATime, switch_decision

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


def _simulate(schedule: OneAtATime, informative: int, steps: int, rise: int) -> None:
    """Feed the schedule a toy whose answer is known: the first ``informative`` d dims carry a
    factor (KL rises linearly to 2 nats over ``rise`` steps once switched on); the rest carry
    nothing (KL 0.01)."""
    for step in range(steps):
        kl = torch.full((schedule.dims,), 0.01)
        for k in range(informative):
            on = int(schedule.switch_step[k])
            if schedule.mask[k] > 0 and on >= 0:
                kl[k] = 2.0 * min(1.0, (step - on + 1) / rise)
        schedule.observe(kl)
        schedule.update(step)


def test_schedule_switches_informative_dims_on_one_at_a_time_and_stops_at_the_first_empty():
    s = OneAtATime(
        5,
        pretrain_steps=10,
        window=10,
        plateau_tol=0.05,
        max_windows=4,
        active_kl=0.1,
        kl_decay=1.0,
    )
    _simulate(s, informative=3, steps=200, rise=10)
    # d_1 on after pre-training (step 10); each informative dim grows for one window (wait),
    # is flat for the next (keep); d_4 stays at 0.01 nats and is dropped one window after.
    assert s.switch_step.tolist() == [10, 30, 50, 70, -1]
    assert s.mask.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert bool(s.done)
    assert int(s.discovered().sum()) == 3


def test_schedule_keeps_every_dim_when_all_carry_a_factor_and_stops_at_k_max():
    s = OneAtATime(
        3,
        pretrain_steps=0,
        window=5,
        plateau_tol=0.05,
        max_windows=4,
        active_kl=0.1,
        kl_decay=1.0,
    )
    _simulate(s, informative=3, steps=100, rise=5)
    assert s.switch_step.tolist() == [0, 10, 20]
    assert s.mask.tolist() == [1.0, 1.0, 1.0]
    assert bool(s.done) and int(s.discovered().sum()) == 3


def test_schedule_judges_a_still_growing_dim_after_max_windows():
    s = OneAtATime(
        2,
        pretrain_steps=0,
        window=5,
        plateau_tol=0.01,
        max_windows=2,
        active_kl=0.1,
        kl_decay=1.0,
    )
    _simulate(s, informative=1, steps=11, rise=100)  # d_1 still growing at step 10
    assert s.switch_step.tolist() == [0, 10]  # kept after 2 windows although still growing
