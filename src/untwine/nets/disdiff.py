"""DisDiff's trainable networks (Yang et al. 2023): the factor encoder and the field decoder.

- :class:`FactorEncoder`: images -> N units of D numbers (the reference's ``Encoder4``: 4×4
  stride-2 convs down to 4×4, then a linear layer to N·D).
- :class:`OrthogonalEmbedding`: P = exp(W − Wᵀ), an orthogonal matrix; row c is the
  factor-index embedding of unit c (the reference's ``orth_emb``).
- :class:`FieldDecoder`: a fresh (randomly initialised) copy of a UNet's output half that
  consumes the frozen UNet's bottleneck and skips, conditioned by scale-shift on
  emb_t + Linear(P_c) and, by a second scale-shift, on Linear(z_c); its output conv starts at
  zero, so every field g_c(x_t, z_c, t) starts as the zero map. All N fields come from one
  batched pass (the N copies stacked along the batch), weights shared across c.
"""

from __future__ import annotations

import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.nets.unet import UNet


class FactorEncoder(nn.Module):
    """(n, C, S, S) images in [0, 1] -> (n, units, dims) codes.

    Convs (4×4, stride 2, GroupNorm, ReLU) halve the side until it is 4, then one linear layer.
    GroupNorm stands in for the reference's BatchNorm so that the frozen copy used by the
    disentangling loss behaves the same as the trained encoder (no running statistics).
    """

    def __init__(
        self, image_shape: tuple[int, int, int], units: int, dims: int, width: int = 64
    ) -> None:
        super().__init__()
        channels, height, side = (int(s) for s in image_shape)
        if height != side or side < 8 or side & (side - 1):
            raise UntwineError(
                f"DisDiff's encoder takes square images with a power-of-two side ≥ 8; "
                f"got {tuple(image_shape)}"
            )
        layers: list[nn.Module] = []
        c_in = channels
        while side > 4:
            layers += [nn.Conv2d(c_in, width, 4, 2, 1), nn.GroupNorm(8, width), nn.ReLU()]
            c_in, side = width, side // 2
        layers += [nn.Flatten(), nn.Linear(width * 16, units * dims)]
        self.net = nn.Sequential(*layers)
        self.units, self.dims = units, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(len(x), self.units, self.dims)


class OrthogonalEmbedding(nn.Module):
    """P = matrix_exp(W − Wᵀ) for a learned square W: orthogonal for any W (exp of a
    skew-symmetric matrix), so the factor-index rows stay orthonormal throughout training."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(size, size))

    def forward(self) -> torch.Tensor:
        return torch.linalg.matrix_exp(self.weight - self.weight.T)


class FieldDecoder(nn.Module):
    """g_c(x_t, z_c, t) for every unit c, from the frozen UNet's features.

    ``forward(emb, h, skips, z)`` with the frozen UNet's time embedding (n, E), bottleneck and
    skips, and codes z (n, N, D) returns fields (n, N, *x_t.shape[1:]).
    """

    def __init__(self, unet: UNet, units: int, dims: int) -> None:
        super().__init__()
        emb = unet.emb_dim
        if units > emb // 2:
            raise UntwineError(f"DisDiff: units must be at most {emb // 2} for this UNet")
        self.units = units
        self.body = unet.make_output_half(cond_dim=emb, zero_out=True)
        self.z_embed = nn.Linear(dims, emb)
        self.index_rows = OrthogonalEmbedding(emb // 2)
        self.index_embed = nn.Linear(emb // 2, emb)

    def forward(
        self,
        emb: torch.Tensor,
        h: torch.Tensor,
        skips: list[torch.Tensor],
        z: torch.Tensor,
    ) -> torch.Tensor:
        n, units = len(z), self.units
        index = self.index_embed(self.index_rows()[:units])  # (N, E)
        emb_c = (emb[None] + index[:, None]).reshape(units * n, -1)  # unit-major
        cond = self.z_embed(z.transpose(0, 1).reshape(units * n, -1))
        h_c = h.repeat(units, *([1] * (h.dim() - 1)))
        skips_c = [s.repeat(units, *([1] * (s.dim() - 1))) for s in skips]
        out = self.body(h_c, skips_c, emb_c, cond)
        return out.view(units, n, *out.shape[1:]).transpose(0, 1)
