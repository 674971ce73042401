"""FactorVAE score: identical to disentanglement_lib for the same seed, and closed-form cases."""

import dlib_reference_sampled as ref
import numpy as np
import pytest
from sampled_toys import (
    identity_represent,
    linear_represent,
    pixel_dataset,
    random_table_represent,
)

from untwine.metrics.factor_vae import factor_vae_score
from untwine.metrics.sampling import CodeCache


@pytest.mark.parametrize("seed", [0, 5])
def test_factor_vae_equals_reference_for_same_seed(seed):
    ds = pixel_dataset()
    represent = linear_represent(4, 6, seed=seed, noise=0.3)
    cache = CodeCache(ds, represent)
    kwargs = dict(batch_size=16, num_train=300, num_eval=200, num_variance_estimate=500)
    ours = factor_vae_score(ds, cache, seed=seed, **kwargs)
    data = ref.ReferenceData(ds)
    theirs = ref.compute_factor_vae(data, represent, np.random.RandomState(seed), 16, 300, 200, 500)
    assert ours["train_accuracy"] == theirs["train_accuracy"]
    assert ours["eval_accuracy"] == theirs["eval_accuracy"]
    assert data.num_encoded == 500 + 16 * 500
    assert cache.num_encoded <= len(ds)


def test_num_active_dims_counts_active_dims_not_code_size():
    ds = pixel_dataset()
    linear = linear_represent(4, 3)

    def represent(x):
        z = linear(x)
        return np.hstack([z, np.zeros((len(z), 2), np.float32), 0.001 * z[:, :1]])

    ours = factor_vae_score(ds, represent, batch_size=16, num_train=100, num_eval=50)
    theirs = ref.compute_factor_vae(
        ref.ReferenceData(ds), represent, np.random.RandomState(0), 16, 100, 50, 10000
    )
    assert ours["num_active_dims"] == 3
    assert theirs["num_active_dims"] == 6
    assert ours["eval_accuracy"] == theirs["eval_accuracy"]


def test_factor_vae_identity_codes_score_high():
    ds = pixel_dataset((6, 7, 8, 9))
    scores = factor_vae_score(ds, identity_represent, batch_size=16, num_train=300, num_eval=200)
    assert 0.9 <= scores["eval_accuracy"] <= 1.0
    assert scores["num_active_dims"] == 4


def test_factor_vae_random_codes_score_low():
    ds = pixel_dataset((6, 7, 8, 9))
    represent = random_table_represent(ds, 5)
    scores = factor_vae_score(ds, represent, batch_size=16, num_train=300, num_eval=200)
    assert scores["eval_accuracy"] <= 0.45


def test_factor_vae_constant_codes_score_zero():
    ds = pixel_dataset()
    scores = factor_vae_score(ds, lambda x: np.ones((len(x), 3)), num_train=20, num_eval=10)
    assert scores == {**scores, "train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
