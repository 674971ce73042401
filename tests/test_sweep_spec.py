"""Sweep specs: grid and random axes expand into named trials; bad specs fail in one line;
a trial's folder tells whether it is done, to resume, new, or someone else's run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from untwine.errors import UntwineError
from untwine.sweep import load_spec, one_line, parse_spec, plan_resources, trial_state

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_grid_crosses_model_axes_shared_axes_steps_and_seeds_into_named_trials():
    spec = parse_spec({
        "models": {"betavae": {"beta": [1, 4], "latents": 6}, "factorvae": {"gamma": [10]}},
        "steps": [20, 40],
        "seeds": 2,
        "grid": {"train.lr": [0.001]},
        "set": {"train.batch_size": 8},
    })
    names = [t.name for t in spec.trials]
    assert len(names) == (2 + 1) * 2 * 2
    assert names[0] == "betavae-dsprites-lr0.001-beta1-steps20-s0"
    assert "factorvae-dsprites-lr0.001-gamma10-steps40-s1" in names
    first = spec.trials[0].config
    assert (first.model_config.beta, first.model_config.latents) == (1.0, 6)
    assert (first.train.lr, first.train.batch_size, first.train.steps) == (0.001, 8, 20)
    assert spec.trials[0].settings == {"data": "dsprites", "steps": 20, "lr": 0.001, "beta": 1,
                                       "seed": 0}
    assert [t.config.train.seed for t in spec.trials[:4]] == [0, 1, 0, 1]


def test_random_draws_are_shared_by_seeds_and_the_same_on_every_parse():
    raw = {
        "models": ["betavae"],
        "seeds": [3, 5],
        "random": {"samples": 3, "seed": 7, "axes": {
            "train.lr": {"loguniform": ["1e-5", "1e-3"]},
            "beta": {"uniform": [1, 16]},
            "latents": {"choice": [6, 10]},
            "train.batch_size": {"randint": [8, 9]},
        }},
    }
    trials = parse_spec(raw).trials
    assert len(trials) == 6
    for a, b in zip(trials[::2], trials[1::2], strict=True):
        assert (a.config.train.seed, b.config.train.seed) == (3, 5)
        assert a.config.model_config == b.config.model_config
        assert a.config.train.lr == b.config.train.lr
    for t in trials:
        assert 1e-5 <= t.config.train.lr <= 1e-3 and 1 <= t.config.model_config.beta <= 16
        assert t.config.model_config.latents in (6, 10) and t.config.train.batch_size in (8, 9)
    assert [t.name for t in parse_spec(raw).trials] == [t.name for t in trials]
    assert len({t.config.train.lr for t in trials}) == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"modles": ["betavae"]}, "unknown key(s) modles"),
        ({"models": ["nosuch"]}, "unknown model 'nosuch'"),
        ({"models": {"betavae": {"bta": [1, 2]}}}, "unknown key 'bta'"),
        ({"models": ["betavae"], "data": "nodata"}, "unknown dataset 'nodata'"),
        ({"models": ["betavae"], "seeds": [1, 1]}, "distinct"),
        ({"models": ["betavae"], "random": {"axes": {"beta": {"normal": [0, 1]}}}},
         "random.axes.beta"),
        ({"models": ["betavae"], "random": {"axes": {"beta": {"uniform": [5, 1]}}}},
         "low ≤ high"),
        ({"models": {"betavae": {"beta": []}}}, "models.betavae.beta: an axis needs"),
        ({"models": ["betavae"], "import": ["no_such_module_here"]}, "cannot import"),
        ([1, 2], "a sweep spec is a mapping"),
    ],
)
def test_a_bad_spec_is_a_one_line_error_naming_the_key(raw, message):
    with pytest.raises(UntwineError) as err:
        parse_spec(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models: [betavae\nseeds: 2\n")
    with pytest.raises(UntwineError, match=r"not valid YAML \(line"):
        load_spec(path)


def test_a_missing_or_binary_spec_file_is_one_line_with_the_fix(tmp_path):
    with pytest.raises(UntwineError, match=r"no such sweep spec; give a YAML spec file"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\x00\xb3\xff random")
    with pytest.raises(UntwineError, match=r"bin.yaml: not a text file; give a YAML sweep spec"):
        load_spec(tmp_path / "bin.yaml")


def test_examples_expand_to_the_tiny_pair_and_the_study_layout():
    tiny = load_spec(EXAMPLES / "sweep_tiny.yaml").trials
    assert [t.name for t in tiny] == ["betavae-dsprites-steps40-s0", "betavae-dsprites-steps40-s1"]
    assert all(t.config.train.steps < 100 for t in tiny)
    study = load_spec(EXAMPLES / "study_dsprites.yaml").trials
    configurations = {(t.model, t.name.rsplit("-s", 1)[0]) for t in study}
    per_model = {m: sum(1 for mm, _ in configurations if mm == m) for m, _ in configurations}
    assert per_model == dict.fromkeys(
        ("betavae", "annealedvae", "betatcvae", "factorvae", "dipvae1", "dipvae2"), 6)
    assert len(study) == 36 * 3
    dip2 = [t.config.model_config for t in study if t.model == "dipvae2"]
    assert sorted({c.lambda_od for c in dip2}) == [1, 2, 5, 10, 20, 50]
    assert {c.lambda_d_factor for c in dip2} == {1.0}


def _folder(run: Path, config: dict, files: tuple[str, ...]) -> None:
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    for name in files:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(b"x")


def test_trial_state_reads_done_resume_new_and_conflict_from_the_folder(tmp_path):
    trial = parse_spec({"models": {"betavae": {"beta": [8]}}, "steps": 40}).trials[0]
    config = trial.config.to_dict()
    assert trial_state(trial, tmp_path / "absent")[0] == "new"
    _folder(tmp_path / "done", config, ("model.safetensors", "metrics.json"))
    assert trial_state(trial, tmp_path / "done")[0] == "done"
    _folder(tmp_path / "cut", config, ("checkpoint/state.pt",))
    assert trial_state(trial, tmp_path / "cut")[0] == "resume"
    _folder(tmp_path / "unevaluated", config, ("model.safetensors", "checkpoint/state.pt"))
    assert trial_state(trial, tmp_path / "unevaluated")[0] == "resume"
    filled = {**config, "model_config": {**config["model_config"], "dataset_size": 737280}}
    _folder(tmp_path / "filled", filled, ("model.safetensors", "metrics.json"))
    assert trial_state(trial, tmp_path / "filled")[0] == "done"
    other = {**config, "model_config": {**config["model_config"], "beta": 2.0}}
    _folder(tmp_path / "other", other, ("model.safetensors", "metrics.json"))
    state, detail = trial_state(trial, tmp_path / "other")
    assert state == "conflict" and "model_config.beta=2.0, not 8.0" in detail


def test_resources_default_to_one_local_trial_on_every_core_and_one_gpu_each_on_a_cluster():
    local = plan_resources(2, 0, True, None, None, None)
    assert (local.concurrent, local.cpus, local.gpus) == (1, 2, 0)
    two = plan_resources(2, 0, True, 2, None, None)
    assert (two.concurrent, two.cpus) == (2, 1)
    cluster = plan_resources(800, 100, False, None, None, None)
    assert (cluster.concurrent, cluster.cpus, cluster.gpus) == (100, 8, 1)
    cpu_cluster = plan_resources(64, 0, False, None, 4, None)
    assert (cpu_cluster.concurrent, cpu_cluster.cpus) == (16, 4)
    with pytest.raises(UntwineError, match="has 0 GPUs"):
        plan_resources(2, 0, True, None, None, 1)
    with pytest.raises(UntwineError, match="at least 1"):
        plan_resources(2, 0, True, 0, None, None)


def test_without_ray_the_sweep_says_how_to_install_it(monkeypatch, tmp_path):
    from untwine.sweep import run_sweep

    monkeypatch.setitem(sys.modules, "ray", None)
    spec = parse_spec({"models": ["betavae"], "steps": 1})
    with pytest.raises(UntwineError, match=r'pip install -e "\.\[sweep\]"'):
        run_sweep(spec, tmp_path)


def test_one_line_keeps_an_untwine_message_and_names_other_exceptions():
    assert one_line(UntwineError("bad beta")) == "bad beta"
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    wrapped = RuntimeError("ray wrapper")
    wrapped.cause = torch.cuda.OutOfMemoryError("CUDA out of memory")
    assert one_line(wrapped) == "OutOfMemoryError: CUDA out of memory"
