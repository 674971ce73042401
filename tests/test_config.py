"""Run configs: study defaults, `key=value` overrides with type coercion, clear errors, JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import pytest

from untwine.config import RunConfig, TrainConfig, build_dataclass, coerce, make_run_config
from untwine.errors import UntwineError


def test_defaults_are_the_study_defaults():
    config = make_run_config("betavae")
    assert (config.train.steps, config.train.batch_size, config.train.lr) == (300_000, 64, 1e-4)
    assert (config.train.beta1, config.train.beta2, config.train.eps) == (0.9, 0.999, 1e-8)
    assert config.model_config.latents == 10 and config.data.name == "dsprites"
    assert config.train.metrics == "fast" and config.train.device == "auto"


def test_set_overrides_are_coerced_to_field_types():
    config = make_run_config(
        "betatcvae",
        sets=["beta=8", "train.log_every=25", "lr=3e-4", "estimator=mss", "dataset_size=1000"],
    )
    assert config.model_config.beta == 8.0 and isinstance(config.model_config.beta, float)
    assert config.train.log_every == 25 and config.train.lr == 3e-4
    assert config.model_config.estimator == "mss" and config.model_config.dataset_size == 1000


def test_latents_option_sets_the_models_code_size():
    assert make_run_config("dipvae1", {"latents": 6}).model_config.latents == 6


def test_json_round_trip_gives_an_equal_config():
    config = make_run_config("annealedvae", {"train.steps": 50}, ["c_max=10", "data.path=x.npz"])
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    ("model", "sets", "message"),
    [
        ("nosuchvae", [], r"unknown model 'nosuchvae'; known models: .*betavae"),
        ("betavae", ["bta=4"], r"unknown key 'bta'; valid keys are model: .*beta"),
        ("betavae", ["train.bogus=1"], r"unknown key 'train.bogus'; valid train keys: steps"),
        ("betavae", ["beta=four"], r"beta must be a number; got 'four'"),
        ("betavae", ["beta=-1"], r"beta must be a number ≥ 0"),
        ("betavae", ["steps=0"], r"steps must be at least 1"),
        ("betavae", ["steps=2.5"], r"steps must be an integer"),
        ("betavae", ["metrics=slow"], r"unknown metric preset .slow.; choose study, fast, none"),
        ("betavae", ["device=tpu"], r"device must be auto, cpu"),
        ("betavae", ["beta"], r"--set expects key=value"),
        ("betavae", ["lol.beta=1"], r"unknown section 'lol'"),
    ],
)
def test_bad_values_give_clear_errors(model, sets, message):
    with pytest.raises(UntwineError, match=message):
        make_run_config(model, sets=sets)


def test_coerce_reads_booleans_optionals_literals_and_tuples():
    assert coerce("yes", bool, "k") is True and coerce("off", bool, "k") is False
    assert coerce("none", int | None, "k") is None and coerce("7", int | None, "k") == 7
    assert coerce("1e3", int, "k") == 1000 and coerce("300_000", int, "k") == 300_000
    assert coerce("b", Literal["a", "b"], "k") == "b"
    assert coerce("1, 2,3", tuple[int, ...], "k") == (1, 2, 3)
    with pytest.raises(UntwineError, match="k must be true or false"):
        coerce("maybe", bool, "k")


def test_build_dataclass_rejects_unknown_keys_listing_valid_ones():
    @dataclass
    class Small:
        a: int = 1

    assert build_dataclass(Small, {"a": "3"}, "small") == Small(3)
    with pytest.raises(UntwineError, match="unknown small key.*b; valid keys: a"):
        build_dataclass(Small, {"b": 1}, "small")


def test_train_config_validates_on_construction():
    with pytest.raises(UntwineError, match="lr must be positive"):
        TrainConfig(lr=0)
