"""A small UNet for ε-prediction, split into an input half and an output half.

The layout follows the openai/latent-diffusion UNet without attention: a sinusoidal time
embedding through a 2-layer MLP; residual blocks whose second GroupNorm is modulated by the
embedding (scale-shift / FiLM: h ← norm(h)·(1 + s) + b); stride-2 conv down, nearest-neighbour
up; every input-half activation kept as a skip that the output half concatenates back.

The split is the point: :meth:`UNet.features` returns the time embedding, the bottleneck input
and the skip list of the input half, and :class:`OutputHalf` (middle blocks + up path + output
conv) consumes them. DisDiff's field decoder is a second ``OutputHalf`` with an extra
conditioning vector (a second scale-shift per block, (1 + s_z)·h + b_z) and a zero-initialised
output conv, fed the frozen UNet's features.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from untwine.errors import UntwineError


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer sinusoids of the step t: [cos(t·f_i), sin(t·f_i)], f_i = max_period^(−i/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a scale-shift from ``emb`` (and optionally from ``cond``).

    out = x' + conv(SiLU(FiLM_cond(FiLM_emb(norm(conv(SiLU(norm(x))))))))), x' the input (1×1
    conv when the channel count changes); FiLM_v(h) = h·(1 + s) + b with (s, b) = Linear(SiLU(v)).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, cond_dim: int = 0):
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.cond = nn.Linear(cond_dim, 2 * c_out) if cond_dim else None
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(
        self, x: torch.Tensor, emb: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        if self.cond is not None:
            if cond is None:
                raise ValueError("this block needs a conditioning vector")
            scale, shift = self.cond(F.silu(cond))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


def _plan(width: int, mults: tuple[int, ...], blocks: int) -> list[int]:
    """Channel counts of the skips the input half stores, in order."""
    skips = [width]
    for level, mult in enumerate(mults):
        skips += [width * mult] * blocks
        if level < len(mults) - 1:
            skips.append(width * mult)
    return skips


class InputHalf(nn.Module):
    """Input conv and the down path: x (n, C, S, S) -> (bottleneck h, list of skips)."""

    def __init__(self, channels: int, width: int, mults: tuple[int, ...], blocks: int, emb: int):
        super().__init__()
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        ch = width
        for level, mult in enumerate(mults):
            res = nn.ModuleList()
            for _ in range(blocks):
                res.append(ResBlock(ch, width * mult, emb))
                ch = width * mult
            self.levels.append(res)
            last = level == len(mults) - 1
            self.downs.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, 2, 1))
        self.out_channels = ch

    def forward(
        self, x: torch.Tensor, emb: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.conv_in(x)
        skips = [h]
        for level, (res, down) in enumerate(zip(self.levels, self.downs, strict=True)):
            for block in res:
                h = block(h, emb)
                skips.append(h)
            if level < len(self.levels) - 1:
                h = down(h)
                skips.append(h)
        return h, skips


class OutputHalf(nn.Module):
    """Middle blocks, up path consuming the skips, output conv: -> (n, C, S, S).

    ``cond_dim`` > 0 adds the second scale-shift (from ``cond``) to every block; ``zero_out``
    zero-initialises the output conv so the module starts as the zero map.
    """

    def __init__(
        self,
        channels: int,
        width: int,
        mults: tuple[int, ...],
        blocks: int,
        emb: int,
        cond_dim: int = 0,
        zero_out: bool = False,
    ):
        super().__init__()
        skips = _plan(width, mults, blocks)
        ch = width * mults[-1]
        self.middle = nn.ModuleList(
            [ResBlock(ch, ch, emb, cond_dim), ResBlock(ch, ch, emb, cond_dim)]
        )
        self.levels = nn.ModuleList()
        self.ups = nn.ModuleList()
        for level in reversed(range(len(mults))):
            res = nn.ModuleList()
            for _ in range(blocks + 1):
                res.append(ResBlock(ch + skips.pop(), width * mults[level], emb, cond_dim))
                ch = width * mults[level]
            self.levels.append(res)
            up = nn.Conv2d(ch, ch, 3, padding=1) if level > 0 else nn.Identity()
            self.ups.append(up)
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, channels, 3, padding=1)
        if zero_out:
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(
        self,
        h: torch.Tensor,
        skips: list[torch.Tensor],
        emb: torch.Tensor,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        skips = list(skips)
        for block in self.middle:
            h = block(h, emb, cond)
        for level, (res, up) in enumerate(zip(self.levels, self.ups, strict=True)):
            for block in res:
                h = block(torch.cat([h, skips.pop()], dim=1), emb, cond)
            if level < len(self.levels) - 1:
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class UNet(nn.Module):
    """ε_θ(x_t, t) on (n, C, S, S) inputs, S divisible by 2^(len(mults) − 1).

    width: channels of the first level; mults: per-level multipliers; blocks: residual blocks
    per level in the input half (the output half has one more, as in the openai UNet).
    The time embedding has 4·width dimensions.
    """

    def __init__(
        self,
        channels: int,
        width: int = 32,
        mults: tuple[int, ...] = (1, 2),
        blocks: int = 1,
    ):
        super().__init__()
        if width < 8 or width % 8 or not mults or blocks < 1:
            raise UntwineError(
                f"UNet needs width a multiple of 8, at least one level and blocks ≥ 1; got "
                f"width={width}, mults={mults}, blocks={blocks}"
            )
        self.channels, self.width, self.mults, self.blocks = channels, width, tuple(mults), blocks
        self.emb_dim = 4 * width
        self.time_mlp = nn.Sequential(
            nn.Linear(width, self.emb_dim), nn.SiLU(), nn.Linear(self.emb_dim, self.emb_dim)
        )
        self.input_half = InputHalf(channels, width, self.mults, blocks, self.emb_dim)
        self.output_half = self.make_output_half()

    def make_output_half(self, cond_dim: int = 0, zero_out: bool = False) -> OutputHalf:
        """A fresh output half matching this UNet's skips (DisDiff's decoder is one)."""
        return OutputHalf(
            self.channels, self.width, self.mults, self.blocks, self.emb_dim, cond_dim, zero_out
        )

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        return self.time_mlp(timestep_embedding(t, self.width))

    def features(
        self, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(time embedding, bottleneck input, skips) of the input half."""
        emb = self.time_embedding(t)
        h, skips = self.input_half(x, emb)
        return emb, h, skips

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb, h, skips = self.features(x, t)
        return self.output_half(h, skips, emb)
