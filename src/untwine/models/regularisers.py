"""The VAE baselines' loss terms as pure functions of encoder outputs and samples.

Conventions follow disentanglement_lib (``methods/unsupervised/vae.py``): losses are summed over
pixels / latents and averaged over the batch; covariances are population covariances (divide
by the batch size); ``logvar`` is log σ².
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from untwine.errors import UntwineError

RECONSTRUCTIONS = ("bernoulli", "gaussian")
TC_ESTIMATORS = ("mws", "mss")


def reconstruction_loss(x: torch.Tensor, logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Negative log-likelihood per image, summed over pixels and averaged over the batch.

    ``"bernoulli"``: sigmoid cross-entropy of the decoder logits; ``"gaussian"``: squared error
    of ``sigmoid(logits)`` (unit variance, constants dropped), as disentanglement_lib's l2 loss.
    """
    if kind == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif kind == "gaussian":
        per_pixel = (torch.sigmoid(logits) - x).square()
    else:
        raise UntwineError(f"reconstruction must be one of {RECONSTRUCTIONS}; got {kind!r}")
    return per_pixel.flatten(1).sum(1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample and latent: (n, D)."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0)


def sample_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Reparameterised sample z = mu + σ·ε, ε ~ N(0, I) from torch's global generator."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def annealed_capacity(c_max: float, step: int, iteration_threshold: int) -> float:
    """Burgess et al. (2018)'s capacity C(t) = min(c_max, c_max · t / T), in nats."""
    return min(float(c_max), float(c_max) * step / iteration_threshold)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)) (broadcasting)."""
    return -0.5 * ((z - mu).square() * (-logvar).exp() + logvar + math.log(2 * math.pi))


def pairwise_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B, B, D) tensor of log q(z_i,d | x_j) at index [i, j, d]."""
    return gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])


def mss_log_weights(batch_size: int, dataset_size: int) -> torch.Tensor:
    """(B, B) log importance weights of minibatch-stratified sampling (Chen et al. 2018, App. C).

    Row i weighs sample i's own posterior 1/N, one other (here i+1 mod B) (N − M)/(N·M), and the
    remaining B − 2 posteriors 1/M, with M = B − 1; each row sums to one and, for a uniformly
    drawn batch, gives every data point expected weight 1/N. rtqichen/beta-tcvae's
    ``_log_importance_weight_matrix`` puts these weights on columns 0 and 1 instead of the
    diagonal (its stride is B, not B + 1; see that repository's PR #1); this follows the paper.
    """
    if batch_size < 2:
        raise UntwineError("the 'mss' TC estimator needs batches of at least 2 images")
    n, m = float(dataset_size), float(batch_size - 1)
    w = torch.full((batch_size, batch_size), 1.0 / m, dtype=torch.float64)
    idx = torch.arange(batch_size)
    w[idx, idx] = 1.0 / n
    w[idx, (idx + 1) % batch_size] = (n - m) / (n * m)
    return w.log()


def total_correlation(
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    dataset_size: int,
    estimator: str = "mws",
) -> torch.Tensor:
    """Minibatch estimate of TC = E_q(z)[log q(z) − Σ_d log q(z_d)] (Chen et al. 2018).

    ``"mws"`` (minibatch-weighted sampling): q(z_i) ≈ Σ_j q(z_i | x_j) / (N·B), the same for
    each marginal, so the estimate is disentanglement_lib's ``total_correlation`` plus its
    dropped constant (D − 1)·log(N·B). ``"mss"``: minibatch-stratified sampling with
    :func:`mss_log_weights`. ``dataset_size`` is N = len(dataset).
    """
    batch, dims = z.shape
    log_q = pairwise_log_density(z, mu, logvar)
    if estimator == "mws":
        const = math.log(dataset_size * batch)
        log_qz = torch.logsumexp(log_q.sum(2), dim=1) - const
        log_prod = (torch.logsumexp(log_q, dim=1) - const).sum(1)
    elif estimator == "mss":
        log_w = mss_log_weights(batch, dataset_size).to(device=z.device, dtype=z.dtype)
        log_qz = torch.logsumexp(log_w + log_q.sum(2), dim=1)
        log_prod = torch.logsumexp(log_w[:, :, None] + log_q, dim=1).sum(1)
    else:
        raise UntwineError(f"estimator must be one of {TC_ESTIMATORS}; got {estimator!r}")
    return (log_qz - log_prod).mean()


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Population covariance E[x xᵀ] − E[x] E[x]ᵀ of the rows of x: (D, D)."""
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / x.shape[0]


def dip_covariance(mu: torch.Tensor, logvar: torch.Tensor, kind: str) -> torch.Tensor:
    """The matrix DIP-VAE pushes to I: Cov[μ] ("i") or Cov[z] = E[diag σ²] + Cov[μ] ("ii")."""
    cov = covariance(mu)
    if kind == "ii":
        cov = cov + torch.diag(logvar.exp().mean(0))
    return cov


def dip_penalties(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_{i≠j} cov_ij², Σ_i (cov_ii − 1)²): DIP-VAE's off-diagonal and diagonal penalties."""
    diag = torch.diagonal(cov)
    off_diagonal = cov - torch.diag(diag)
    return off_diagonal.square().sum(), (diag - 1.0).square().sum()


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch (Kim & Mnih 2018, Alg. 2)."""
    batch, dims = z.shape
    order = torch.argsort(torch.rand(batch, dims, device=z.device), dim=0)
    return torch.gather(z, 0, order)


def discriminator_tc(logits: torch.Tensor) -> torch.Tensor:
    """FactorVAE's TC estimate: mean of logit₀ − logit₁ (log D/(1 − D), class 0 = q(z))."""
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_loss(logits_joint: torch.Tensor, logits_permuted: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the discriminator: class 0 for samples of q(z), 1 for permuted ones."""
    zeros = torch.zeros(len(logits_joint), dtype=torch.long, device=logits_joint.device)
    ones = torch.ones(len(logits_permuted), dtype=torch.long, device=logits_permuted.device)
    return 0.5 * (F.cross_entropy(logits_joint, zeros) + F.cross_entropy(logits_permuted, ones))
