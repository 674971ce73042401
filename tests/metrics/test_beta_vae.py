"""BetaVAE score: identical to disentanglement_lib for the same seed, and its closed-form cases."""

import dlib_reference_sampled as ref
import numpy as np
import pytest
from sampled_toys import (
    identity_represent,
    linear_represent,
    pixel_dataset,
    random_table_represent,
)

from untwine.metrics.beta_vae import beta_vae_score
from untwine.metrics.sampling import CodeCache


@pytest.mark.parametrize("seed", [0, 5])
def test_beta_vae_equals_reference_for_same_seed(seed):
    ds = pixel_dataset()
    represent = linear_represent(4, 6, seed=seed)
    cache = CodeCache(ds, represent)
    ours = beta_vae_score(ds, cache, seed=seed, batch_size=16, num_train=300, num_eval=200)
    data = ref.ReferenceData(ds)
    theirs = ref.compute_beta_vae_sklearn(
        data, represent, np.random.RandomState(seed), 16, 300, 200
    )
    assert ours["train_accuracy"] == theirs["train_accuracy"]
    assert ours["eval_accuracy"] == theirs["eval_accuracy"]
    assert data.num_encoded == 2 * 16 * 500
    assert cache.num_encoded <= len(ds) == 360


def test_beta_vae_identity_codes_score_high():
    ds = pixel_dataset((6, 7, 8, 9))
    scores = beta_vae_score(ds, identity_represent, batch_size=16, num_train=500, num_eval=300)
    assert 0.9 <= scores["train_accuracy"] <= 1.0
    assert 0.9 <= scores["eval_accuracy"] <= 1.0


def test_beta_vae_random_codes_score_near_chance():
    ds = pixel_dataset((6, 7, 8, 9))
    represent = random_table_represent(ds, 5)
    scores = beta_vae_score(ds, represent, batch_size=16, num_train=500, num_eval=300)
    assert scores["eval_accuracy"] <= 0.4


def test_beta_vae_constant_codes_give_defined_scores():
    ds = pixel_dataset()
    scores = beta_vae_score(ds, lambda x: np.zeros((len(x), 3)), num_train=50, num_eval=30)
    assert 0.0 <= scores["eval_accuracy"] <= 0.5


def test_beta_vae_single_factor_is_trivially_one():
    ds = pixel_dataset((5,))
    scores = beta_vae_score(ds, identity_represent, batch_size=4, num_train=20, num_eval=10)
    assert scores["train_accuracy"] == scores["eval_accuracy"] == 1.0
