import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from untwine.errors import UntwineError
from untwine.models import regularisers as R


def _tiny_batch(seed: int = 0, batch: int = 5, dims: int = 3):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, dims, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(batch, dims, generator=g, dtype=torch.float64)
    z = mu + torch.randn(batch, dims, generator=g, dtype=torch.float64) * (0.5 * logvar).exp()
    return z, mu, logvar


def _log_normal(z: float, mu: float, logvar: float) -> float:
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / math.exp(logvar))


def test_bernoulli_reconstruction_is_summed_cross_entropy_averaged_over_batch():
    x = torch.tensor([[[[0.0, 1.0], [0.25, 0.5]]], [[[1.0, 1.0], [0.0, 0.0]]]])
    logits = torch.tensor([[[[0.3, -1.2], [2.0, 0.0]]], [[[1.0, -0.5], [0.7, -3.0]]]])
    p = 1 / (1 + np.exp(-logits.numpy()))
    xn = x.numpy()
    hand = -(xn * np.log(p) + (1 - xn) * np.log(1 - p)).reshape(2, -1).sum(1).mean()
    assert R.reconstruction_loss(x, logits, "bernoulli").item() == pytest.approx(hand, rel=1e-6)


def test_gaussian_reconstruction_is_summed_squared_error_of_sigmoid():
    x = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.2]]]])
    logits = torch.tensor([[[[0.0, 0.0]]], [[[0.0, math.log(3.0)]]]])  # σ: .5 .5 .5 .75
    hand = ((0.25 + 0.25) + (0.0 + 0.55**2)) / 2
    assert R.reconstruction_loss(x, logits, "gaussian").item() == pytest.approx(hand, rel=1e-6)


def test_unknown_reconstruction_raises():
    with pytest.raises(UntwineError, match="bernoulli"):
        R.reconstruction_loss(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), "laplace")


def test_kl_matches_closed_form_and_torch_distributions():
    mu = torch.tensor([[1.0, 0.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0), math.log(0.5)]])
    expected = [0.5, 0.5 * (1 - math.log(2.0)), 0.5 * (4 + 0.5 + math.log(2.0) - 1)]
    assert R.gaussian_kl(mu, logvar)[0].tolist() == pytest.approx(expected, rel=1e-6)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    assert torch.allclose(R.gaussian_kl(mu, logvar), torch.distributions.kl_divergence(q, p))


def test_kl_of_the_prior_is_zero():
    assert R.gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max().item() == 0.0


def test_capacity_grows_linearly_then_stays_at_c_max():
    steps = [0, 1, 25_000, 50_000, 100_000, 300_000]
    got = [R.annealed_capacity(25.0, t, 100_000) for t in steps]
    assert got == pytest.approx([0.0, 25.0 / 100_000, 6.25, 12.5, 25.0, 25.0])


def _brute_force_tc(z, mu, logvar, n_data, weights):
    """TC by explicit loops: weights[i][j] weighs q(·|x_j) in the estimate of q(z_i)."""
    z, mu, logvar = (t.numpy() for t in (z, mu, logvar))
    batch, dims = z.shape
    total = 0.0
    for i in range(batch):
        log_w = np.log([weights(i, j) for j in range(batch)])
        joint = [
            sum(_log_normal(z[i, d], mu[j, d], logvar[j, d]) for d in range(dims))
            for j in range(batch)
        ]
        marginals = [
            logsumexp(log_w + [_log_normal(z[i, d], mu[j, d], logvar[j, d]) for j in range(batch)])
            for d in range(dims)
        ]
        total += logsumexp(log_w + np.array(joint)) - sum(marginals)
    return total / batch


def test_mws_tc_matches_brute_force_with_its_constant():
    z, mu, logvar = _tiny_batch()
    n_data, batch = 1000, len(z)
    expected = _brute_force_tc(z, mu, logvar, n_data, lambda i, j: 1.0 / (n_data * batch))
    got = R.total_correlation(z, mu, logvar, n_data, "mws").item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_mws_tc_is_disentanglement_lib_value_plus_the_dropped_constant():
    z, mu, logvar = _tiny_batch(seed=1)
    log_q = R.pairwise_log_density(z, mu, logvar)
    dlib = (torch.logsumexp(log_q.sum(2), 1) - torch.logsumexp(log_q, 1).sum(1)).mean()
    constant = (z.shape[1] - 1) * math.log(1000 * z.shape[0])
    got = R.total_correlation(z, mu, logvar, 1000, "mws")
    assert got.item() == pytest.approx(dlib.item() + constant, rel=1e-12)


def test_mss_tc_matches_brute_force():
    z, mu, logvar = _tiny_batch(seed=2)
    n_data, batch = 50, len(z)
    m = batch - 1

    def weight(i, j):
        if j == i:
            return 1.0 / n_data
        if j == (i + 1) % batch:
            return (n_data - m) / (n_data * m)
        return 1.0 / m

    expected = _brute_force_tc(z, mu, logvar, n_data, weight)
    got = R.total_correlation(z, mu, logvar, n_data, "mss").item()
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_of_a_single_latent_is_zero(estimator):
    z, mu, logvar = _tiny_batch(seed=3, dims=1)
    assert R.total_correlation(z, mu, logvar, 100, estimator).item() == pytest.approx(0, abs=1e-12)


def test_mss_weights_rows_sum_to_one():
    w = R.mss_log_weights(6, 40).exp()
    assert torch.allclose(w.sum(1), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(torch.diagonal(w), torch.full((6,), 1 / 40, dtype=torch.float64))


def test_mss_weights_are_unbiased_over_all_batches():
    # Batch = sample 0 plus an ordered draw of the others without replacement from N points:
    # averaged over all draws, every data point gets weight 1/N in row 0.
    n_data, batch = 5, 3
    w = R.mss_log_weights(batch, n_data).exp()[0].numpy()
    per_point = np.zeros(n_data)
    draws = list(itertools.permutations(range(1, n_data), batch - 1))
    for others in draws:
        for slot, point in enumerate((0, *others)):
            per_point[point] += w[slot]
    assert per_point / len(draws) == pytest.approx(np.full(n_data, 1 / n_data))


def test_mss_needs_two_samples():
    with pytest.raises(UntwineError, match="at least 2"):
        R.mss_log_weights(1, 100)


def test_covariance_is_the_population_covariance():
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert np.allclose(R.covariance(x).numpy(), np.cov(x.numpy(), rowvar=False, bias=True))


def test_dip_penalties_match_numpy():
    z, mu, logvar = _tiny_batch(seed=4, batch=6, dims=3)
    cov_mu = np.cov(mu.numpy(), rowvar=False, bias=True)
    cov_z = cov_mu + np.diag(np.exp(logvar.numpy()).mean(0))
    for kind, cov in (("i", cov_mu), ("ii", cov_z)):
        od, d = R.dip_penalties(R.dip_covariance(mu, logvar, kind))
        off = cov - np.diag(np.diag(cov))
        assert od.item() == pytest.approx((off**2).sum(), rel=1e-10)
        assert d.item() == pytest.approx(((np.diag(cov) - 1) ** 2).sum(), rel=1e-10)


def test_dip_penalties_vanish_at_the_identity():
    od, d = R.dip_penalties(torch.eye(4))
    assert od.item() == 0.0 and d.item() == 0.0


def test_permute_dims_permutes_each_latent_independently():
    torch.manual_seed(0)
    z = torch.arange(40.0).reshape(10, 4)
    p = R.permute_dims(z)
    for d in range(4):
        assert sorted(p[:, d].tolist()) == z[:, d].tolist()
    orders = {tuple((p[:, d] - d).div(4).long().tolist()) for d in range(4)}
    assert len(orders) == 4


def test_discriminator_tc_and_loss_from_fixed_logits():
    joint = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    permuted = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    assert R.discriminator_tc(joint).item() == pytest.approx((3.0 + 0.0) / 2)

    def log_softmax(row, k):
        return row[k] - math.log(sum(math.exp(v) for v in row))

    hand = -0.5 * (
        np.mean([log_softmax(r, 0) for r in joint.tolist()])
        + np.mean([log_softmax(r, 1) for r in permuted.tolist()])
    )
    assert R.discriminator_loss(joint, permuted).item() == pytest.approx(hand, rel=1e-6)
