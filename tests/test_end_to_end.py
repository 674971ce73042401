"""The README's main path for real: its demo command (shortened) trains on the dSprites twin,
scores with the fast preset and draws; the scores must be in range and beat an untrained
encoder. Slow (about 2 minutes on 2 CPU cores)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from untwine import runs
from untwine.cli import app
from untwine.metrics.evaluate import flat_scores
from untwine.models.base import build_model
from untwine.pipeline import evaluate_model, load_run

README = Path(__file__).parents[1] / "README.md"
STEPS = 800
"""The demo's settings for fewer steps, so the test stays near 2 minutes."""


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
    for key, value in scores.items():
        assert np.isfinite(value), key
        if key.split(".")[0] not in ("unsupervised",) and "num_active_dims" not in key:
            assert 0.0 <= value <= 1.0, (key, value)
    # trained beats untrained on the metrics that have a chance level of 1/K or 0
    _, dataset = load_run(run)
    config = runs.read_config(run)
    untrained = build_model(config.model, config.model_config, dataset.image_shape).eval()
    base = flat_scores(evaluate_model(untrained, dataset, ["beta_vae", "mig"], seed=0))
    assert scores["beta_vae.eval_accuracy"] >= base["beta_vae.eval_accuracy"] + 0.2, (
        scores["beta_vae.eval_accuracy"], base["beta_vae.eval_accuracy"])
    assert scores["mig.discrete_mig"] >= base["mig.discrete_mig"] + 0.03
    assert scores["dci_fast.informativeness_test"] > 0.3
