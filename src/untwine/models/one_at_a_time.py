"""DOT-VAE's one-at-a-time schedule: which dims of d are switched on, when, and when to stop.

DOT-VAE (Patil, Evanusa & JaJa 2022) switches the disentangled dims on one at a time "as
training proceeds" and finds the number of factors itself, but writes down no rule for either;
:func:`switch_decision` and :class:`OneAtATime` are our reconstruction (see
:mod:`untwine.models.dotvae`). :func:`budget_schedule` sizes the schedule to a training budget,
so that it can finish on a CPU in a few hundred steps rather than the paper-scale defaults
(pre-training 10k steps, windows of 5k, β ramp of 100k).
"""

from __future__ import annotations

import torch
from torch import nn

from untwine.errors import UntwineError

DECISIONS = ("wait", "keep", "drop")

BUDGET_FIELDS = ("pretrain_steps", "beta_ramp_steps", "window", "max_windows", "kl_decay")
"""The DOTVAEConfig fields :func:`budget_schedule` sets."""


def budget_schedule(steps: int, dims: int) -> dict[str, int | float]:
    """Schedule fields that let the whole schedule run within ``steps`` training steps.

    Pre-training takes the first 10 % (``pretrain_steps``); β rises until 50 % of the budget
    (``beta_ramp_steps``; no dim is dropped before then); each dim is judged after at most
    ``max_windows`` = 2 windows, and the window is sized so that even all ``dims`` dims judged
    after two windows each fit in 80 % of the steps after pre-training (so the last ≥ 18 % of
    training runs on the final mask); the KL moving average spans about half a window
    (``kl_decay`` = 2 / window). A budget too short for one step per window is refused.

    Not a guarantee: a dim still under ``active_kl`` before steps/2 waits for β (it may not be
    dropped yet), and one judged while the whole code has collapsed waits for the code to carry
    information again (:meth:`OneAtATime.code_is_active`); either delays every later dim.
    Measured on the shapes3d twin at 600 steps (seed 0, before that second wait existed): d_1
    waited until step 186, all 10 dims were switched on by step 522 and the schedule had
    finished (``stopped``) by step 564.
    """
    max_windows = 2
    pretrain = steps // 10
    window = (8 * (steps - pretrain)) // (10 * dims * max_windows)
    if window < 1:
        raise UntwineError(
            f"dotvae: schedule_budget {steps} is too short for {dims} dims; "
            f"use at least {3 * dims} steps"
        )
    return {
        "pretrain_steps": pretrain,
        "beta_ramp_steps": steps // 2 - pretrain,
        "window": window,
        "max_windows": max_windows,
        "kl_decay": round(min(1.0, 2.0 / window), 4),
    }


def switch_decision(
    kl_now: float,
    kl_before: float,
    windows: int,
    active_kl: float,
    plateau_tol: float,
    max_windows: int,
    may_drop: bool = True,
    drop_while_rising: bool = False,
) -> str:
    """Judge the newest d dim after ``windows`` windows: "wait", "keep" or "drop".

    It has settled when |KL_now − KL_before| ≤ plateau_tol · max(KL_before, active_kl), or when
    ``max_windows`` windows have passed; a settled dim is kept if KL_now ≥ active_kl nats, else
    dropped (the signal to stop switching dims on). A dim under active_kl whose KL still rose by
    more than that tolerance over the last window has not "stayed empty": it waits (unless
    ``drop_while_rising``; ``max_windows`` only forces a keep). While ``may_drop`` is False (β
    still rising, so z has not yet been pushed to give information up; or the rest of the code
    carries nothing either, see :meth:`OneAtATime.code_is_active`) a dim that would be dropped
    waits.
    """
    tolerance = plateau_tol * max(kl_before, active_kl)
    settled = abs(kl_now - kl_before) <= tolerance
    if not settled and windows < max_windows:
        return "wait"
    if kl_now >= active_kl:
        return "keep"
    if kl_now - kl_before > tolerance and not drop_while_rising:
        return "wait"
    return "drop" if may_drop else "wait"


class OneAtATime(nn.Module):
    """DOT-VAE's switch schedule as buffers (checkpointed with the model, so resume is exact).

    ``mask`` (K,) is γ; ``switch_step`` (K,) the step each dim was switched on (−1 never);
    ``kl`` (K,) the moving average of each d dim's KL; ``kl_z`` that of z's total KL (when the
    caller gives it to :meth:`observe`); ``newest`` the dim on trial (−1 before the first);
    ``done`` set once a dim was dropped or K_max kept. Step numbers are the first step a change
    applies to (d_1 is on from step ``pretrain_steps``); no dim is dropped before step
    ``drop_from`` (DOT-VAE: the end of its β ramp), nor, with ``drop_needs_active_code``, while
    the rest of the code is empty too (:meth:`code_is_active`), nor, unless
    ``drop_while_rising``, while its KL is still rising (:func:`switch_decision`).
    """

    def __init__(
        self,
        dims: int,
        pretrain_steps: int,
        window: int,
        plateau_tol: float,
        max_windows: int,
        active_kl: float,
        kl_decay: float,
        drop_from: int = 0,
        drop_needs_active_code: bool = True,
        drop_while_rising: bool = False,
    ):
        super().__init__()
        self.dims, self.pretrain_steps, self.window = dims, pretrain_steps, window
        self.drop_from, self.drop_needs_active_code = drop_from, drop_needs_active_code
        self.drop_while_rising = drop_while_rising
        self.plateau_tol, self.max_windows = plateau_tol, max_windows
        self.active_kl, self.kl_decay = active_kl, kl_decay
        self.register_buffer("mask", torch.zeros(dims))
        self.register_buffer("switch_step", torch.full((dims,), -1, dtype=torch.long))
        self.register_buffer("kl", torch.zeros(dims))
        self.register_buffer("kl_z", torch.tensor(0.0))
        self.register_buffer("newest", torch.tensor(-1))
        self.register_buffer("windows", torch.tensor(0))
        self.register_buffer("check_step", torch.tensor(0))
        self.register_buffer("kl_before", torch.tensor(0.0))
        self.register_buffer("done", torch.tensor(False))
        if pretrain_steps == 0:
            self._switch_on(0, 0)

    @torch.no_grad()
    def observe(self, kl: torch.Tensor, kl_z: torch.Tensor | float | None = None) -> None:
        """Fold one batch's mean KL per d dim (K,), and of z in total, into the moving averages."""
        self.kl.lerp_(kl.to(self.kl.dtype), self.kl_decay)
        if kl_z is not None:
            self.kl_z.lerp_(torch.as_tensor(kl_z, dtype=self.kl_z.dtype), self.kl_decay)

    def code_is_active(self, k: int) -> bool:
        """Whether the code outside d dim ``k`` carries information: every other switched-on
        d dim at ≥ ``active_kl`` nats, or, before any other is on, z at ≥ ``active_kl`` in total.

        Dropping ``k`` means "z gives no more information up to a new dim"; that reading needs a
        code that holds information at all. When the kept dims have fallen under ``active_kl``
        too (the whole code has collapsed, as DOT-VAE's does on dSprites while β rises: 0.3
        nats in all of z and d at step 300 of 600), an empty new dim says
        nothing, and the judgement waits.
        """
        kept = self.mask > 0
        kept[k] = False
        if bool(kept.any()):
            return bool((self.kl[kept] >= self.active_kl).all())
        return float(self.kl_z) >= self.active_kl

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Act at the end of 0-based ``step``, for the steps from t = step + 1 on: switch d_1 on
        when pre-training ends (t = pretrain_steps); judge the newest dim every ``window`` steps;
        keep it and switch the next on, or drop it and stop."""
        t = step + 1
        if bool(self.done) or t < self.pretrain_steps:
            return
        if int(self.newest) < 0:
            self._switch_on(0, t)
            return
        if t - int(self.check_step) < self.window:
            return
        k = int(self.newest)
        now = float(self.kl[k])
        self.windows += 1
        decision = switch_decision(
            now,
            float(self.kl_before),
            int(self.windows),
            self.active_kl,
            self.plateau_tol,
            self.max_windows,
            may_drop=t >= self.drop_from
            and (not self.drop_needs_active_code or self.code_is_active(k)),
            drop_while_rising=self.drop_while_rising,
        )
        if decision == "wait":
            self.kl_before.fill_(now)
            self.check_step.fill_(t)
        elif decision == "keep" and k + 1 < self.dims:
            self._switch_on(k + 1, t)
        else:
            if decision == "drop":
                self.mask[k] = 0.0
            self.done.fill_(True)

    def _switch_on(self, k: int, t: int) -> None:
        self.mask[k] = 1.0
        self.switch_step[k] = t
        self.newest.fill_(k)
        self.windows.zero_()
        self.check_step.fill_(t)
        self.kl_before.fill_(float(self.kl[k]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # run folders saved before kl_z existed: their schedule never compared with z
        state_dict.setdefault(prefix + "kl_z", torch.tensor(0.0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def discovered(self) -> torch.Tensor:
        """Switched-on dims that carry at least ``active_kl`` nats: bool (K,)."""
        return (self.mask > 0) & (self.kl >= self.active_kl)
