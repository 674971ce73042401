"""disentanglement_lib's sampled metrics, transcribed for parity tests (test-only code).

Transcribed from google-research/disentanglement_lib (Apache-2.0):
evaluation/metrics/{utils,beta_vae,factor_vae,dci}.py and the ground-truth data's sampling
(data/ground_truth/util.py: SplitDiscreteStateSpace). Only gin/logging were removed, and
``ReferenceData`` adapts an untwine GridDataset to the reference's GroundTruthData interface.
Nothing here is optimised: it encodes every draw, like the reference.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from sklearn import linear_model
from sklearn.ensemble import GradientBoostingClassifier


class ReferenceData:
    """GroundTruthData over an untwine GridDataset: the reference's own factor sampling."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.factor_sizes = list(dataset.factor_sizes)
        self.num_encoded = 0

    @property
    def num_factors(self):
        return len(self.factor_sizes)

    def sample_factors(self, num, random_state):
        factors = np.zeros(shape=(num, len(self.factor_sizes)), dtype=np.int64)
        for pos, size in enumerate(self.factor_sizes):
            factors[:, pos] = random_state.randint(size, size=num)
        return factors

    def sample_observations_from_factors(self, factors, random_state):
        self.num_encoded += len(factors)
        return self.dataset.images_numpy(factors)

    def sample(self, num, random_state):
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num, random_state):
        return self.sample(num, random_state)[1]


# utils.py
def generate_batch_factor_code(ground_truth_data, representation_function, num_points,
                               random_state, batch_size):
    representations = None
    factors = None
    i = 0
    while i < num_points:
        num_points_iter = min(num_points - i, batch_size)
        current_factors, current_observations = ground_truth_data.sample(
            num_points_iter, random_state)
        if i == 0:
            factors = current_factors
            representations = representation_function(current_observations)
        else:
            factors = np.vstack((factors, current_factors))
            representations = np.vstack(
                (representations, representation_function(current_observations)))
        i += num_points_iter
    return np.transpose(representations), np.transpose(factors)


# beta_vae.py
def compute_beta_vae_sklearn(ground_truth_data, representation_function, random_state,
                             batch_size, num_train, num_eval):
    train_points, train_labels = _beta_generate_training_batch(
        ground_truth_data, representation_function, batch_size, num_train, random_state)
    model = linear_model.LogisticRegression(random_state=random_state)
    model.fit(train_points, train_labels)
    train_accuracy = model.score(train_points, train_labels)
    train_accuracy = np.mean(model.predict(train_points) == train_labels)
    eval_points, eval_labels = _beta_generate_training_batch(
        ground_truth_data, representation_function, batch_size, num_eval, random_state)
    eval_accuracy = model.score(eval_points, eval_labels)
    return {"train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}


def _beta_generate_training_batch(ground_truth_data, representation_function, batch_size,
                                  num_points, random_state):
    points = None
    labels = np.zeros(num_points, dtype=np.int64)
    for i in range(num_points):
        labels[i], feature_vector = _beta_generate_training_sample(
            ground_truth_data, representation_function, batch_size, random_state)
        if points is None:
            points = np.zeros((num_points, feature_vector.shape[0]))
        points[i, :] = feature_vector
    return points, labels


def _beta_generate_training_sample(ground_truth_data, representation_function, batch_size,
                                   random_state):
    index = random_state.randint(ground_truth_data.num_factors)
    factors1 = ground_truth_data.sample_factors(batch_size, random_state)
    factors2 = ground_truth_data.sample_factors(batch_size, random_state)
    factors2[:, index] = factors1[:, index]
    observation1 = ground_truth_data.sample_observations_from_factors(factors1, random_state)
    observation2 = ground_truth_data.sample_observations_from_factors(factors2, random_state)
    representation1 = representation_function(observation1)
    representation2 = representation_function(observation2)
    feature_vector = np.mean(np.abs(representation1 - representation2), axis=0)
    return index, feature_vector


# factor_vae.py
def compute_factor_vae(ground_truth_data, representation_function, random_state, batch_size,
                       num_train, num_eval, num_variance_estimate, threshold=0.05):
    global_variances = _compute_variances(ground_truth_data, representation_function,
                                          num_variance_estimate, random_state)
    active_dims = _prune_dims(global_variances, threshold)
    scores_dict = {}
    if not active_dims.any():
        scores_dict["train_accuracy"] = 0.
        scores_dict["eval_accuracy"] = 0.
        scores_dict["num_active_dims"] = 0
        return scores_dict
    training_votes = _factor_generate_training_batch(
        ground_truth_data, representation_function, batch_size, num_train, random_state,
        global_variances, active_dims)
    classifier = np.argmax(training_votes, axis=0)
    other_index = np.arange(training_votes.shape[1])
    train_accuracy = np.sum(
        training_votes[classifier, other_index]) * 1. / np.sum(training_votes)
    eval_votes = _factor_generate_training_batch(
        ground_truth_data, representation_function, batch_size, num_eval, random_state,
        global_variances, active_dims)
    eval_accuracy = np.sum(eval_votes[classifier, other_index]) * 1. / np.sum(eval_votes)
    scores_dict["train_accuracy"] = train_accuracy
    scores_dict["eval_accuracy"] = eval_accuracy
    scores_dict["num_active_dims"] = len(active_dims)
    return scores_dict


def _prune_dims(variances, threshold=0.):
    scale_z = np.sqrt(variances)
    return scale_z >= threshold


def _compute_variances(ground_truth_data, representation_function, batch_size, random_state):
    observations = ground_truth_data.sample_observations(batch_size, random_state)
    representations = representation_function(observations)
    return np.var(representations, axis=0, ddof=1)


def _factor_generate_training_sample(ground_truth_data, representation_function, batch_size,
                                     random_state, global_variances, active_dims):
    factor_index = random_state.randint(ground_truth_data.num_factors)
    factors = ground_truth_data.sample_factors(batch_size, random_state)
    factors[:, factor_index] = factors[0, factor_index]
    observations = ground_truth_data.sample_observations_from_factors(factors, random_state)
    representations = representation_function(observations)
    local_variances = np.var(representations, axis=0, ddof=1)
    argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
    return factor_index, argmin


def _factor_generate_training_batch(ground_truth_data, representation_function, batch_size,
                                    num_points, random_state, global_variances, active_dims):
    votes = np.zeros((ground_truth_data.num_factors, global_variances.shape[0]),
                     dtype=np.int64)
    for _ in range(num_points):
        factor_index, argmin = _factor_generate_training_sample(
            ground_truth_data, representation_function, batch_size, random_state,
            global_variances, active_dims)
        votes[factor_index, argmin] += 1
    return votes


# dci.py
def compute_dci(ground_truth_data, representation_function, random_state, num_train, num_test,
                batch_size=16):
    scores = {}
    mus_train, ys_train = generate_batch_factor_code(
        ground_truth_data, representation_function, num_train, random_state, batch_size)
    mus_test, ys_test = generate_batch_factor_code(
        ground_truth_data, representation_function, num_test, random_state, batch_size)
    importance_matrix, train_err, test_err = compute_importance_gbt(
        mus_train, ys_train, mus_test, ys_test)
    scores["informativeness_train"] = train_err
    scores["informativeness_test"] = test_err
    scores["disentanglement"] = disentanglement(importance_matrix)
    scores["completeness"] = completeness(importance_matrix)
    return scores


def compute_importance_gbt(x_train, y_train, x_test, y_test):
    num_factors = y_train.shape[0]
    num_codes = x_train.shape[0]
    importance_matrix = np.zeros(shape=[num_codes, num_factors], dtype=np.float64)
    train_loss = []
    test_loss = []
    for i in range(num_factors):
        # random_state=0 pins the tie-breaking between equally good splits (as untwine does).
        model = GradientBoostingClassifier(random_state=0)
        model.fit(x_train.T, y_train[i, :])
        importance_matrix[:, i] = np.abs(model.feature_importances_)
        train_loss.append(np.mean(model.predict(x_train.T) == y_train[i, :]))
        test_loss.append(np.mean(model.predict(x_test.T) == y_test[i, :]))
    return importance_matrix, np.mean(train_loss), np.mean(test_loss)


def disentanglement_per_code(importance_matrix):
    return 1. - scipy.stats.entropy(importance_matrix.T + 1e-11, base=importance_matrix.shape[1])


def disentanglement(importance_matrix):
    per_code = disentanglement_per_code(importance_matrix)
    if importance_matrix.sum() == 0.:
        importance_matrix = np.ones_like(importance_matrix)
    code_importance = importance_matrix.sum(axis=1) / importance_matrix.sum()
    return np.sum(per_code * code_importance)


def completeness_per_code(importance_matrix):
    return 1. - scipy.stats.entropy(importance_matrix + 1e-11, base=importance_matrix.shape[0])


def completeness(importance_matrix):
    per_factor = completeness_per_code(importance_matrix)
    if importance_matrix.sum() == 0.:
        importance_matrix = np.ones_like(importance_matrix)
    factor_importance = importance_matrix.sum(axis=0) / importance_matrix.sum()
    return np.sum(per_factor * factor_importance)
