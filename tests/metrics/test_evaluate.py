"""evaluate(): every metric from RandomState(seed) like the reference, sharing one CodeCache."""

import json

import dlib_reference_sampled as ref
import numpy as np
import pytest
from sampled_toys import linear_represent, pixel_dataset
from typer.testing import CliRunner

from untwine.cli import app
from untwine.errors import UntwineError
from untwine.metrics import beta_vae_score, dci, factor_vae_score, mig, sap
from untwine.metrics.evaluate import evaluate, flat_scores, load_codes_npz, score_arrays
from untwine.metrics.registry import PRESETS, STUDY, resolve
from untwine.metrics.sampling import generate_batch_factor_code

SMALL = {
    "beta_vae": {"batch_size": 16, "num_train": 200, "num_eval": 100},
    "factor_vae": {"batch_size": 16, "num_train": 200, "num_eval": 100,
                   "num_variance_estimate": 400},
    "mig": {"num_train": 400},
    "dci": {"num_train": 400, "num_test": 200},
    "sap": {"num_train": 400, "num_test": 200},
}


@pytest.fixture(scope="module")
def run():
    ds = pixel_dataset()
    represent = linear_represent(4, 5)
    result = evaluate(ds, represent, preset=list(SMALL), overrides=SMALL, n_jobs=1)
    return ds, represent, result


def test_each_metric_equals_its_own_call_from_the_same_seed(run):
    ds, represent, result = run
    m = result["metrics"]
    beta = beta_vae_score(ds, represent, seed=0, **SMALL["beta_vae"])
    assert m["beta_vae"]["eval_accuracy"] == beta["eval_accuracy"]
    factor = factor_vae_score(ds, represent, seed=0, **SMALL["factor_vae"])
    assert m["factor_vae"]["eval_accuracy"] == factor["eval_accuracy"]
    rs = np.random.RandomState(0)
    codes, factors = generate_batch_factor_code(ds, represent, 400, rs, 16)
    codes_test, factors_test = generate_batch_factor_code(ds, represent, 200, rs, 16)
    assert m["mig"]["discrete_mig"] == mig(codes, factors)["discrete_mig"]
    assert m["sap"]["SAP_score"] == sap(codes, factors, codes_test, factors_test)["SAP_score"]
    exact = dci(codes, factors, codes_test, factors_test, n_jobs=1)
    assert m["dci"]["disentanglement"] == exact["disentanglement"]


def test_dci_through_evaluate_equals_the_reference_protocol(run):
    ds, represent, result = run
    theirs = ref.compute_dci(ref.ReferenceData(ds), represent, np.random.RandomState(0), 400, 200)
    for key, value in theirs.items():
        assert result["metrics"]["dci"][key] == pytest.approx(value, abs=1e-12)


def test_encodes_each_grid_image_at_most_once(run):
    ds, _, result = run
    assert result["images_encoded"] <= len(ds)
    reference = 2 * 16 * 300 + (400 + 16 * 300) + 400 + 600 + 600
    assert result["images_requested"] == reference


def test_result_records_params_times_versions_and_is_json(run):
    _, _, result = run
    assert result["metrics"]["dci"]["params"]["num_train"] == 400
    assert result["metrics"]["dci"]["params"]["backend"] == "exact"
    assert all(r["time_s"] >= 0 for r in result["metrics"].values())
    assert set(result["versions"]) >= {"untwine", "numpy", "scikit-learn", "torch"}
    json.dumps(result)


def test_presets_are_the_study_defaults_and_a_fast_variant():
    study = resolve("study")
    assert study["beta_vae"] == {"batch_size": 64, "num_train": 10000, "num_eval": 5000}
    assert study["factor_vae"]["prune_threshold"] == 0.05
    assert "dci" in study and "dci_fast" not in study
    fast = resolve("fast")
    assert "dci_fast" in fast and "dci" not in fast
    assert set(PRESETS["study"]) | {"dci_fast"} == set(STUDY)


def test_unknown_preset_metric_or_override_raise():
    with pytest.raises(UntwineError, match="preset"):
        resolve("quick")
    with pytest.raises(UntwineError, match="unknown metrics"):
        resolve(["mig", "dcii"])
    with pytest.raises(UntwineError, match="override"):
        resolve(["mig"], {"mig": {"num_tests": 3}})


def test_score_arrays_runs_the_array_metrics_only():
    rs = np.random.RandomState(0)
    factors = rs.randint(4, size=(300, 2))
    codes = factors + 0.1 * rs.randn(300, 2)
    out = score_arrays(codes[:200], factors[:200], codes[200:], factors[200:],
                       preset=["mig", "sap"])
    assert set(out["metrics"]) == {"mig", "sap"}
    assert out["metrics"]["mig"]["discrete_mig"] > 0.5


def test_score_arrays_uses_every_row_unless_fast_which_takes_a_random_subset():
    rs = np.random.RandomState(0)
    factors = rs.randint(4, size=(4000, 2))
    codes = factors + 0.1 * rs.randn(4000, 2)
    listed = score_arrays(codes[:3000], factors[:3000], codes[3000:], factors[3000:], ["mig"])
    assert listed["metrics"]["mig"]["params"]["num_train"] == 3000
    fast = score_arrays(codes[:3000], factors[:3000], codes[3000:], factors[3000:], "fast")
    assert fast["metrics"]["mig"]["params"]["num_train"] == 2000
    subset = np.sort(np.random.RandomState(0).permutation(3000)[:2000])
    expected = mig(codes[subset], factors[subset])["discrete_mig"]
    assert fast["metrics"]["mig"]["discrete_mig"] == expected


def _npz(tmp_path, **arrays):
    path = tmp_path / "codes.npz"
    np.savez(path, **arrays)
    return path


def _identity_arrays(n=300, seed=0):
    rs = np.random.RandomState(seed)
    factors = rs.randint(5, size=(n, 2))
    return factors + 0.05 * rs.randn(n, 2), factors


def test_load_codes_npz_splits_deterministically_two_to_one(tmp_path):
    codes, factors = _identity_arrays()
    ctr, ftr, cte, fte = load_codes_npz(_npz(tmp_path, codes=codes, factors=factors))
    assert (len(ctr), len(cte)) == (200, 100)
    order = np.random.RandomState(0).permutation(300)
    np.testing.assert_array_equal(cte, codes[order[200:]])
    np.testing.assert_array_equal(ftr, factors[order[:200]])


def test_score_command_prints_json_with_the_array_metrics(tmp_path):
    codes, factors = _identity_arrays()
    path = _npz(tmp_path, codes=codes[:200], factors=factors[:200],
                codes_test=codes[200:], factors_test=factors[200:])
    result = CliRunner().invoke(app, ["score", str(path), "--preset", "fast", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out["metrics"]) == {"mig", "dci_fast", "sap", "modularity_explicitness", "irs",
                                   "unsupervised"}
    assert out["metrics"]["mig"]["discrete_mig"] > 0.5
    assert out["metrics"]["dci_fast"]["backend"] == "fast"


def test_score_command_prints_a_table(tmp_path):
    codes, factors = _identity_arrays()
    path = _npz(tmp_path, codes=codes, factors=factors)
    result = CliRunner().invoke(app, ["score", str(path), "--preset", "fast"])
    assert result.exit_code == 0, result.output
    assert "discrete_mig" in result.output and "SAP_score" in result.output


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"codes": np.zeros((4, 2))}, "lacks key 'factors'"),
        ({"codes": np.zeros((4, 2)), "factors": np.zeros((5, 1), int)}, "4 rows"),
        ({"codes": np.zeros((4, 2)), "factors": np.zeros((4, 1), int),
          "codes_test": np.zeros((2, 2))}, "both"),
    ],
)
def test_score_command_explains_bad_files(tmp_path, arrays, message):
    result = CliRunner().invoke(app, ["score", str(_npz(tmp_path, **arrays))])
    assert isinstance(result.exception, UntwineError)
    assert message in str(result.exception)


@pytest.mark.parametrize("content", [b"junk", b""])
def test_score_command_explains_files_that_are_not_npz(tmp_path, content):
    path = tmp_path / "codes.npz"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["score", str(path)])
    assert isinstance(result.exception, UntwineError)
    assert "not a readable npz" in str(result.exception)


def test_flat_scores_keep_scores_and_drop_parameters_timings_and_counters():
    result = {
        "preset": "fast",
        "images_encoded": 10,
        "metrics": {
            "mig": {"discrete_mig": 0.5, "params": {"num_bins": 20}, "time_s": 1.0},
            "factor_vae": {"eval_accuracy": 0.9, "num_active_dims": 3, "time_s": 2.0},
            "dci_fast": {"disentanglement": 0.1, "backend": "fast"},
        },
    }
    assert flat_scores(result) == {
        "mig.discrete_mig": 0.5,
        "factor_vae.eval_accuracy": 0.9,
        "factor_vae.num_active_dims": 3,
        "dci_fast.disentanglement": 0.1,
    }
