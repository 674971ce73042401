"""Loss terms of the intervention-based VAEs (ProtoVAE, DOT-VAE) as pure functions of tensors.

Both methods change one latent of a code, decode, and ask something of the result: ProtoVAE
that a prototypical network can tell which latent was changed (and by how much), DOT-VAE that the
encoder recovers the changed code from the generated image. Conventions follow
:mod:`untwine.models.regularisers`: sums over latents / embedding dims, means over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from untwine.errors import UntwineError

INTERVENTIONS = ("shift", "set")
CONSISTENCIES = ("mse", "nll")


def intervene(z: torch.Tensor, dims: torch.Tensor, values: torch.Tensor, kind: str) -> torch.Tensor:
    """A copy of codes z (n, D) with latent ``dims[i]`` of row i changed.

    ``"shift"``: z'[i, dims[i]] = z[i, dims[i]] + values[i] (ProtoVAE's controlled change);
    ``"set"``: z'[i, dims[i]] = values[i] (DOT-VAE's resampling from the prior). Every other
    entry is z's; gradients flow to z through the untouched entries (and the shifted one).
    """
    if kind not in INTERVENTIONS:
        raise UntwineError(f"intervention must be one of {INTERVENTIONS}; got {kind!r}")
    rows = torch.arange(len(z), device=z.device)
    old = z[rows, dims]
    new = old + values if kind == "shift" else values.to(z.dtype)
    return z.index_put((rows, dims), new)


def episode_labels(batch_size: int, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (B,), support mask (B,)) of one prototypical episode over a batch.

    The first ⌊B/2⌋ rows are the support set, the rest the query set; within each half the
    label of row j is j mod n_classes, so every class appears in both halves (needs
    ⌊B/2⌋ ≥ n_classes). Labels index the classes, not the latents: the caller maps them.
    """
    half = batch_size // 2
    if n_classes < 1 or half < n_classes:
        raise UntwineError(
            f"a prototypical episode over {n_classes} latents needs a batch of at least "
            f"{2 * max(n_classes, 1)} images; got {batch_size}"
        )
    labels = torch.cat([torch.arange(half), torch.arange(batch_size - half)]) % n_classes
    support = torch.arange(batch_size) < half
    return labels, support


def class_means(embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Prototypes c_k = mean of the embeddings labelled k (Snell et al. 2017): (n_classes, m)."""
    one_hot = F.one_hot(labels, n_classes).to(embeddings.dtype)
    return (one_hot.T @ embeddings) / one_hot.sum(0)[:, None]


def prototypical_loss(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    n_classes: int,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy) of a prototypical network episode (Snell et al. 2017, eq. 2).

    c_k = mean of the support embeddings of class k; p(k | e) = softmax_k(−α‖e − c_k‖²) with
    α = ``scale``; loss = mean over queries of −log p(y | e). Accuracy (detached) is
    argmax_k p(k | e) = y. In ProtoVAE, e is the direction of the embedding displacement an
    intervention on latent k causes and y = k: the loss is small when each latent moves images
    in its own, consistent direction.
    """
    prototypes = class_means(support, support_labels, n_classes)
    logits = -scale * (query[:, None, :] - prototypes[None, :, :]).square().sum(-1)
    loss = F.cross_entropy(logits, query_labels)
    accuracy = (logits.argmax(1) == query_labels).to(query.dtype).mean()
    return loss, accuracy.detach()


def isometry_loss(displacement: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation of r_i = ‖e_i‖ / |δ_i|: Var(r / E[r]).

    e_i (n, m) is the embedding displacement of an intervention of size δ_i (n,). It is zero
    when every displacement is the same multiple c of |δ| (one c for all latents and samples: a
    local isometry up to scale) and is exactly invariant to that scale, so shrinking the
    embedding cannot lower it (an ``eps`` in the denominator once did reward that). Var is the
    population variance over the batch; E[r] = 0 (no displacement at all) gives 0.
    """
    ratio = displacement.norm(dim=1) / delta.abs()
    mean = ratio.mean().clamp_min(torch.finfo(ratio.dtype).tiny)
    return (ratio / mean).var(unbiased=False)


def masked_kl(kl: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_i γ_i · KL_i per sample, averaged over the batch; kl (n, K), γ = mask (K,) in {0, 1}."""
    return (kl * mask).sum(1).mean()


def linear_ramp(start: float, end: float, step: int, begin: int, length: int) -> float:
    """start before ``begin``, end after ``begin + length``, linear in between."""
    if length <= 0:
        return float(end if step >= begin else start)
    t = min(max((step - begin) / length, 0.0), 1.0)
    return float(start + (end - start) * t)


def code_consistency(
    target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kind: str
) -> torch.Tensor:
    """How far a re-encoding (mu, logvar) is from the code it should recover, (n, D) each.

    ``"mse"``: Σ_d (μ_d − t_d)², averaged over the batch; ``"nll"``: −Σ_d log N(t_d; μ_d, σ_d²),
    averaged over the batch (DOT-VAE's eq. 6 read as a likelihood of the intervened code).
    """
    if kind == "mse":
        per = (mu - target).square()
    elif kind == "nll":
        per = 0.5 * ((target - mu).square() * (-logvar).exp() + logvar + math.log(2 * math.pi))
    else:
        raise UntwineError(f"consistency must be one of {CONSISTENCIES}; got {kind!r}")
    return per.sum(1).mean()


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN loss of the generator: mean −log σ(D(x̂)) (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


def gan_discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's cross-entropy: ½(−log σ(D(x)) − log(1 − σ(D(x̂))))."""
    real = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
    fake = F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    return 0.5 * (real + fake)
