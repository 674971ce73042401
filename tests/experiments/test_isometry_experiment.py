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
        manifolds=("blob2d", "blob2dwarped"), methods=("hlle", "ae"), n_samples=500, epochs=2
    )
    return run_isometry_experiment(cfg)


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


def test_outputs_are_written(tiny_report, tmp_path):
    paths = write_outputs(tiny_report, tmp_path)
    table = paths["md"].read_text()
    assert table == markdown_table(tiny_report["results"])
    assert table.count("| blob2d |") == 2 and "HLLE" in table
    data = json.loads(paths["json"].read_text())
    assert len(data["results"]) == 4
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
