import json

import numpy as np
import pytest

from untwine.errors import UntwineError
from untwine.experiments.isometry import (
    IsometryExperimentConfig,
    markdown_table,
    run_isometry_experiment,
    run_seeds,
    summary_table,
    write_outputs,
)


@pytest.fixture(scope="module")
def tiny_report():
    cfg = IsometryExperimentConfig(
        manifolds=("blob2d", "blob2dwarped"), methods=METHODS, n_samples=500, epochs=15
    )
    return run_isometry_experiment(cfg)


METHODS = ("hlle", "ae", "isoae")
# Lower bounds on +ICA MCC of this config (N = 500, 120 steps, seed 0), set below the lowest
# value measured on CPU (in brackets) with a margin; a regression in training or scoring falls
# below. At this small budget the deep rows are far from the full experiment's (isoae on the
# warped control is near chance): the bounds guard against regressions, they do not rank
# methods. The isoae rows are chaotic in float rounding: the same seed gave blob2d 0.53 (AVX-512
# MKL), 0.537 (one thread), 0.628 (MKL_CBWR=COMPATIBLE), 0.696 (another CPU), once 0.846, and
# the warped control 0.336-0.464, so their bounds sit under that spread.
LOWER = {
    ("blob2d", "ae"): (0.80, 0.868),
    ("blob2d", "isoae"): (0.45, 0.53),
    ("blob2dwarped", "hlle"): (0.88, 0.924),
    ("blob2dwarped", "ae"): (0.86, 0.904),
    ("blob2dwarped", "isoae"): (0.25, 0.336),
}
SPEARMAN_WARPED = 0.85  # measured 0.917


def _row(report, manifold, method):
    return next(r for r in report["results"] if r["manifold"] == manifold and r["method"] == method)


def test_hlle_ica_recovers_blob2d_latents(tiny_report):
    row = _row(tiny_report, "blob2d", "hlle")
    assert row["ica"]["mcc"] >= 0.95
    assert row["ica"]["li"] >= 0.9


def test_warped_control_degrades_hlle(tiny_report):
    row = _row(tiny_report, "blob2dwarped", "hlle")
    # At best HLLE finds the isometric coordinate x = z³: Pearson MCC ≤ (0.917 + 1) / 2.
    assert row["ica"]["mcc"] < 0.97
    assert row["ica"]["li_latents"] < 0.85


@pytest.mark.parametrize(("manifold", "method"), sorted(LOWER))
def test_each_row_stays_above_its_measured_lower_bound(tiny_report, manifold, method):
    bound, _measured = LOWER[(manifold, method)]
    assert _row(tiny_report, manifold, method)["ica"]["mcc"] >= bound


def test_warped_control_keeps_its_rank_order(tiny_report):
    # Spearman MCC sees through the monotone warp z³ that caps HLLE's Pearson MCC.
    row = _row(tiny_report, "blob2dwarped", "hlle")
    assert row["ica"]["mcc_spearman"] >= SPEARMAN_WARPED


def test_outputs_are_written(tiny_report, tmp_path):
    paths = write_outputs(tiny_report, tmp_path)
    table = paths["md"].read_text()
    assert table == markdown_table(tiny_report["results"])
    assert table.count("| blob2d |") == len(METHODS) and "HLLE" in table
    data = json.loads(paths["json"].read_text())
    assert len(data["results"]) == 2 * len(METHODS)
    assert paths["png"].stat().st_size > 1000


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("methods", ("hlle", "pca"), "unknown methods"), ("epochs", 0, "epochs"),
     ("n_samples", 5, "must exceed")],
)
def test_bad_experiment_configs_are_refused(field, value, message):
    with pytest.raises(UntwineError, match=message):
        IsometryExperimentConfig(**{field: value})


def test_seeds_give_a_mean_and_std_table(tmp_path):
    cfg = IsometryExperimentConfig(manifolds=("blob2d",), methods=("hlle",), n_samples=300)
    report = run_seeds(cfg, (0, 1))
    assert [r["seed"] for r in report["results"]] == [0, 1]
    table = summary_table(report["results"])
    mean = np.mean([r["ica"]["mcc"] for r in report["results"]])
    assert "| blob2d | HLLE | 2 | " in table and f"{mean:.3f} ± " in table
    assert write_outputs(report, tmp_path)["md"].read_text().startswith(table)


def test_cli_runs_the_experiment_over_seeds(tmp_path):
    from typer.testing import CliRunner

    from untwine.cli import app

    out = tmp_path / "iso"
    result = CliRunner().invoke(
        app, ["experiment", "isometry", "--samples", "300", "--manifolds", "blob2d",
              "--methods", "hlle", "--seeds", "0,1", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "| blob2d | HLLE | 2 | " in result.output
    assert {p.name for p in out.iterdir()} == {"isometry.md", "isometry.json", "isometry.png"}
    bad = CliRunner().invoke(app, ["experiment", "isometry", "--methods", "pca"])
    assert bad.exit_code != 0 and "unknown methods" in str(bad.exception)
