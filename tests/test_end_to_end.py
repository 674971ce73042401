"""The README's main path for real: its demo command (shortened) trains on the dSprites twin,
scores with the fast preset and draws; the scores must be in range and beat an untrained
encoder. To stay under 2 minutes on 2 CPU cores it trains 700 of the demo's 3000 steps and
draws the fast preset's BetaVAE / FactorVAE votes at about a third of their samples (still
200 held-out votes of 64 pairs each: a std of about 0.035 on an accuracy)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from untwine import runs
from untwine.cli import app
from untwine.metrics import registry
from untwine.metrics.evaluate import evaluate, flat_scores
from untwine.models.base import build_model, representer
from untwine.pipeline import load_run

README = Path(__file__).parents[1] / "README.md"
STEPS = 700
"""The demo's settings for fewer steps, so the test stays under 2 minutes."""
SMALLER = {
    "beta_vae": {"num_train": 300, "num_eval": 200},
    "factor_vae": {"num_train": 300, "num_eval": 200, "num_variance_estimate": 2000},
}
"""Sample sizes of the dataset-level metrics in this test (the fast preset: 1000 / 500)."""


def demo_command() -> list[str]:
    """The `untwine train ...` of the README's ci:setup line."""
    setup = re.search(r"<!-- ci:setup -->\n```bash\n(.*?)\n```", README.read_text()).group(1)
    words = shlex.split(setup.split("&&")[-1])
    assert words[:2] == ["untwine", "train"], setup
    return words[2:]


def with_steps(args: list[str], steps: int) -> list[str]:
    out = list(args)
    out[out.index("--steps") + 1] = str(steps)
    return out


FAST_KEYS = {
    "beta_vae.eval_accuracy", "factor_vae.eval_accuracy", "mig.discrete_mig",
    "dci_fast.disentanglement", "dci_fast.completeness", "dci_fast.informativeness_test",
    "sap.SAP_score", "modularity_explicitness.modularity_score", "irs.IRS",
    "unsupervised.gaussian_total_correlation",
}


@pytest.mark.slow
def test_the_readme_demo_trains_scores_and_beats_an_untrained_encoder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast = registry.PRESETS["fast"]
    for name, sizes in SMALLER.items():
        monkeypatch.setitem(fast, name, {**fast[name], **sizes})
    args = with_steps(demo_command(), STEPS)
    result = CliRunner().invoke(app, ["train", *args, "--quiet"])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    # the run folder: every file, a log row per 100 steps, weights stamped with their step
    for name in (runs.CONFIG, runs.WEIGHTS, runs.LOG, runs.METRICS, *runs.PICTURES):
        assert (run / name).stat().st_size > 0, name
    assert [r["step"] for r in runs.read_log(run)] == list(range(100, STEPS + 1, 100))
    assert runs.weights_info(run)["step"] == str(STEPS)
    # the fast preset's scores: all there, all in range
    metrics = runs.read_metrics(run)
    scores = flat_scores(metrics)
    assert FAST_KEYS <= set(scores), sorted(FAST_KEYS - set(scores))
    assert metrics["step"] == STEPS
    assert metrics["metrics"]["beta_vae"]["params"]["num_eval"] == 200
    for key, value in scores.items():
        assert np.isfinite(value), key
        if key.split(".")[0] not in ("unsupervised",) and "num_active_dims" not in key:
            assert 0.0 <= value <= 1.0, (key, value)
    # trained beats untrained on the metrics that have a chance level of 1/K or 0
    _, dataset = load_run(run)
    config = runs.read_config(run)
    untrained = build_model(config.model, config.model_config, dataset.image_shape).eval()
    same = {name: fast[name] for name in ("beta_vae", "mig")}  # the sizes the run used
    base = flat_scores(evaluate(dataset, representer(untrained), list(same), overrides=same))
    assert scores["beta_vae.eval_accuracy"] >= base["beta_vae.eval_accuracy"] + 0.2, (
        scores["beta_vae.eval_accuracy"], base["beta_vae.eval_accuracy"])
    assert scores["mig.discrete_mig"] >= base["mig.discrete_mig"] + 0.03
    assert scores["dci_fast.informativeness_test"] > 0.3
