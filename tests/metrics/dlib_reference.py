"""disentanglement_lib's NumPy metric code, transcribed as the parity reference for the tests.

Source: google-research/disentanglement_lib, disentanglement_lib/evaluation/metrics/
{utils, mig, sap_score, modularity_explicitness, irs, unsupervised_metrics}.py (Apache-2.0).
The arithmetic is unchanged. Adaptations, and nothing else:
- each ``compute_*`` takes arrays instead of (ground_truth_data, representation_function,
  random_state, num_train, ...): ``mus``/``ys`` are (num_codes, N) / (num_factors, N), the
  reference's own (D, N) convention, i.e. what ``utils.generate_batch_factor_code`` returns;
- gin's ``make_discretizer`` is bound to the study's ``_histogram_discretize`` with ``num_bins``
  passed explicitly; absl logging, ``six.moves.range`` and ``__future__`` imports dropped;
- ``import scipy`` + ``scipy.linalg.sqrtm`` needs ``import scipy.linalg`` on current SciPy;
- irs.py is the later revision (``np.percentile(q=diff_quantile * 100)``, ``artifact_dir`` dropped).
Only the tests import this module; untwine itself never does.
"""

import numpy as np
import scipy.linalg
import sklearn.metrics
from sklearn import svm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

# ---- utils.py -------------------------------------------------------------------------------


def discrete_mutual_info(mus, ys):
    num_codes = mus.shape[0]
    num_factors = ys.shape[0]
    m = np.zeros([num_codes, num_factors])
    for i in range(num_codes):
        for j in range(num_factors):
            m[i, j] = sklearn.metrics.mutual_info_score(ys[j, :], mus[i, :])
    return m


def discrete_entropy(ys):
    num_factors = ys.shape[0]
    h = np.zeros(num_factors)
    for j in range(num_factors):
        h[j] = sklearn.metrics.mutual_info_score(ys[j, :], ys[j, :])
    return h


def _histogram_discretize(target, num_bins):
    discretized = np.zeros_like(target)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def normalize_data(data, mean=None, stddev=None):
    if mean is None:
        mean = np.mean(data, axis=1)
    if stddev is None:
        stddev = np.std(data, axis=1)
    return (data - mean[:, np.newaxis]) / stddev[:, np.newaxis], mean, stddev


# ---- mig.py ---------------------------------------------------------------------------------


def compute_mig(mus_train, ys_train, num_bins=20):
    score_dict = {}
    discretized_mus = _histogram_discretize(mus_train, num_bins)
    m = discrete_mutual_info(discretized_mus, ys_train)
    entropy = discrete_entropy(ys_train)
    sorted_m = np.sort(m, axis=0)[::-1]
    score_dict["discrete_mig"] = np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:]))
    return score_dict


# ---- sap_score.py ---------------------------------------------------------------------------


def compute_sap(mus, ys, mus_test, ys_test, continuous_factors=False):
    score_matrix = _compute_score_matrix(mus, ys, mus_test, ys_test, continuous_factors)
    assert score_matrix.shape[0] == mus.shape[0]
    assert score_matrix.shape[1] == ys.shape[0]
    scores_dict = {}
    scores_dict["SAP_score"] = _compute_avg_diff_top_two(score_matrix)
    return scores_dict


def _compute_score_matrix(mus, ys, mus_test, ys_test, continuous_factors):
    num_latents = mus.shape[0]
    num_factors = ys.shape[0]
    score_matrix = np.zeros([num_latents, num_factors])
    for i in range(num_latents):
        for j in range(num_factors):
            mu_i = mus[i, :]
            y_j = ys[j, :]
            if continuous_factors:
                cov_mu_i_y_j = np.cov(mu_i, y_j, ddof=1)
                cov_mu_y = cov_mu_i_y_j[0, 1] ** 2
                var_mu = cov_mu_i_y_j[0, 0]
                var_y = cov_mu_i_y_j[1, 1]
                if var_mu > 1e-12:
                    score_matrix[i, j] = cov_mu_y * 1.0 / (var_mu * var_y)
                else:
                    score_matrix[i, j] = 0.0
            else:
                mu_i_test = mus_test[i, :]
                y_j_test = ys_test[j, :]
                classifier = svm.LinearSVC(C=0.01, class_weight="balanced")
                classifier.fit(mu_i[:, np.newaxis], y_j)
                pred = classifier.predict(mu_i_test[:, np.newaxis])
                score_matrix[i, j] = np.mean(pred == y_j_test)
    return score_matrix


def _compute_avg_diff_top_two(matrix):
    sorted_matrix = np.sort(matrix, axis=0)
    return np.mean(sorted_matrix[-1, :] - sorted_matrix[-2, :])


# ---- modularity_explicitness.py -------------------------------------------------------------


def compute_modularity_explicitness(mus_train, ys_train, mus_test, ys_test, num_bins=20):
    scores = {}
    discretized_mus = _histogram_discretize(mus_train, num_bins)
    mutual_information = discrete_mutual_info(discretized_mus, ys_train)
    assert mutual_information.shape[0] == mus_train.shape[0]
    assert mutual_information.shape[1] == ys_train.shape[0]
    scores["modularity_score"] = modularity(mutual_information)
    explicitness_score_train = np.zeros([ys_train.shape[0], 1])
    explicitness_score_test = np.zeros([ys_test.shape[0], 1])
    mus_train_norm, mean_mus, stddev_mus = normalize_data(mus_train)
    mus_test_norm, _, _ = normalize_data(mus_test, mean_mus, stddev_mus)
    for i in range(ys_train.shape[0]):
        explicitness_score_train[i], explicitness_score_test[i] = explicitness_per_factor(
            mus_train_norm, ys_train[i, :], mus_test_norm, ys_test[i, :]
        )
    scores["explicitness_score_train"] = np.mean(explicitness_score_train)
    scores["explicitness_score_test"] = np.mean(explicitness_score_test)
    return scores


def explicitness_per_factor(mus_train, y_train, mus_test, y_test):
    x_train = np.transpose(mus_train)
    x_test = np.transpose(mus_test)
    clf = LogisticRegression().fit(x_train, y_train)
    y_pred_train = clf.predict_proba(x_train)
    y_pred_test = clf.predict_proba(x_test)
    mlb = MultiLabelBinarizer()
    roc_train = roc_auc_score(mlb.fit_transform(np.expand_dims(y_train, 1)), y_pred_train)
    roc_test = roc_auc_score(mlb.fit_transform(np.expand_dims(y_test, 1)), y_pred_test)
    return roc_train, roc_test


def modularity(mutual_information):
    squared_mi = np.square(mutual_information)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.0)
    delta = numerator / denominator
    modularity_score = 1.0 - delta
    index = max_squared_mi == 0.0
    modularity_score[index] = 0.0
    return np.mean(modularity_score)


# ---- irs.py ---------------------------------------------------------------------------------


def compute_irs(mus, ys, diff_quantile=0.99, num_bins=20):
    ys_discrete = _histogram_discretize(ys, num_bins)
    active_mus = _drop_constant_dims(mus)

    if not active_mus.any():
        irs_score = 0.0
    else:
        irs_score = scalable_disentanglement_score(ys_discrete.T, active_mus.T, diff_quantile)[
            "avg_score"
        ]

    score_dict = {}
    score_dict["IRS"] = irs_score
    score_dict["num_active_dims"] = np.sum(active_mus)
    return score_dict


def _drop_constant_dims(ys):
    ys = np.asarray(ys)
    if ys.ndim != 2:
        raise ValueError("Expecting a matrix.")
    variances = ys.var(axis=1)
    active_mask = variances > 0.0
    return ys[active_mask, :]


def scalable_disentanglement_score(gen_factors, latents, diff_quantile=0.99):
    num_gen = gen_factors.shape[1]
    num_lat = latents.shape[1]

    max_deviations = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    cum_deviations = np.zeros([num_lat, num_gen])
    for i in range(num_gen):
        unique_factors = np.unique(gen_factors[:, i], axis=0)
        assert unique_factors.ndim == 1
        num_distinct_factors = unique_factors.shape[0]
        for k in range(num_distinct_factors):
            match = gen_factors[:, i] == unique_factors[k]
            e_loc = np.mean(latents[match, :], axis=0)
            diffs = np.abs(latents[match, :] - e_loc)
            max_diffs = np.percentile(diffs, q=diff_quantile * 100, axis=0)
            cum_deviations[:, i] += max_diffs
        cum_deviations[:, i] /= num_distinct_factors
    normalized_deviations = cum_deviations / max_deviations[:, np.newaxis]
    irs_matrix = 1.0 - normalized_deviations
    disentanglement_scores = irs_matrix.max(axis=1)
    if np.sum(max_deviations) > 0.0:
        avg_score = np.average(disentanglement_scores, weights=max_deviations)
    else:
        avg_score = np.mean(disentanglement_scores)

    parents = irs_matrix.argmax(axis=1)
    score_dict = {}
    score_dict["disentanglement_scores"] = disentanglement_scores
    score_dict["avg_score"] = avg_score
    score_dict["parents"] = parents
    score_dict["IRS_matrix"] = irs_matrix
    score_dict["max_deviations"] = max_deviations
    return score_dict


# ---- unsupervised_metrics.py ----------------------------------------------------------------


def unsupervised_metrics(mus_train, num_bins=20):
    scores = {}
    num_codes = mus_train.shape[0]
    cov_mus = np.cov(mus_train)
    assert num_codes == cov_mus.shape[0]

    scores["gaussian_total_correlation"] = gaussian_total_correlation(cov_mus)
    scores["gaussian_wasserstein_correlation"] = gaussian_wasserstein_correlation(cov_mus)
    scores["gaussian_wasserstein_correlation_norm"] = scores[
        "gaussian_wasserstein_correlation"
    ] / np.sum(np.diag(cov_mus))

    mus_discrete = _histogram_discretize(mus_train, num_bins)
    mutual_info_matrix = discrete_mutual_info(mus_discrete, mus_discrete)
    np.fill_diagonal(mutual_info_matrix, 0)
    mutual_info_score = np.sum(mutual_info_matrix) / (num_codes**2 - num_codes)
    scores["mutual_info_score"] = mutual_info_score
    return scores


def kl_gaussians_numerically_unstable(mean_0, cov_0, mean_1, cov_1, k):
    det_0 = np.linalg.det(cov_0)
    det_1 = np.linalg.det(cov_1)
    inv_1 = np.linalg.inv(cov_1)
    return 0.5 * (
        np.trace(np.matmul(inv_1, cov_0))
        + np.dot(mean_1 - mean_0, np.dot(inv_1, mean_1 - mean_0))
        - k
        + np.log(det_1 / det_0)
    )


def gaussian_total_correlation(cov):
    return 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])


def gaussian_wasserstein_correlation(cov):
    sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    return 2 * np.trace(cov) - 2 * np.trace(sqrtm)
