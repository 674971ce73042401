"""Run configuration as dataclasses: model, data and training settings, `key=value` overrides, JSON.

A run is fully described by a ``RunConfig``; ``config.json`` in the run folder is its JSON form,
so ``untwine evaluate`` and ``untwine train --resume`` rebuild exactly what was trained.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from untwine.errors import UntwineError
from untwine.metrics.registry import DEFAULT_PRESET, check_preset


def check_seed(seed: int) -> None:
    """Seeds feed NumPy's RandomState, which takes 0 … 2**32 - 1."""
    if not 0 <= int(seed) < 2**32:
        raise UntwineError(f"seed must be an integer in 0 … 2**32 - 1; got {seed}")


@dataclass
class TrainConfig:
    """The training loop's settings; defaults are the study's (Adam, batch 64, 300k steps)."""

    steps: int = 300_000
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    seed: int = 0
    device: str = "auto"
    log_every: int = 100
    checkpoint_every: int = 1000
    metrics: str = DEFAULT_PRESET

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UntwineError(f"{name} must be at least 1; got {getattr(self, name)}")
        if not self.lr > 0:
            raise UntwineError(f"lr must be positive; got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UntwineError(f"Adam betas must lie in [0, 1); got {self.beta1}, {self.beta2}")
        check_seed(self.seed)
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise UntwineError(
                f"device must be auto, cpu, cuda, cuda:N or mps; got {self.device!r}"
            )
        check_preset(self.metrics, allow_none=True)


@dataclass
class DataConfig:
    """Which dataset to train on: a registered name, and the official file (else the twin)."""

    name: str = "dsprites"
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options of the dataset's loader or twin (``--data-option key=value``), e.g.
    ``in_memory=True`` for shapes3d / mpi3d files, ``instance=5`` for smallNORB."""


@dataclass
class RunConfig:
    """Everything a run needs: the model's name and config, the data, and the training loop."""

    model: str
    model_config: Any
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (the inverse of ``RunConfig.from_dict``)."""
        return {
            "model": self.model,
            "model_config": dataclasses.asdict(self.model_config),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild a config from ``to_dict`` output, coercing and validating every field."""
        entry = _model_entry(d["model"])
        return cls(
            model=entry.name,
            model_config=build_dataclass(entry.config_class, d.get("model_config", {}), "model"),
            data=build_dataclass(DataConfig, d.get("data", {}), "data"),
            train=build_dataclass(TrainConfig, d.get("train", {}), "train"),
        )


def make_run_config(
    model: str,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """A RunConfig for ``model`` with defaults, then ``overrides`` (e.g. from CLI options), then
    ``sets`` (``key=value`` strings; keys are a field of the model, train or data config,
    optionally prefixed ``model.``, ``train.`` or ``data.``)."""
    entry = _model_entry(model)
    config = RunConfig(entry.name, entry.config_class(), DataConfig(), TrainConfig())
    items = dict(overrides or {})
    for text in sets or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UntwineError(f"--set expects key=value; got {text!r}")
        items[key.strip()] = value.strip()
    return apply_overrides(with_train_defaults(config, items), items)


def with_train_defaults(config: RunConfig, items: dict[str, Any]) -> RunConfig:
    """``config`` with the model's own train defaults for the train keys ``items`` leave unset.

    A model config may define ``train_defaults() -> {field: value}`` (DisDiff's CPU size trains
    at batch 32); it is read after ``items``' model keys are applied, as it may depend on them
    (``size``). Defaults are not overrides: a default ``steps`` would not set every stage.
    """
    sections = {"model": config.model_config, "train": config.train, "data": config.data}
    where = {key: _locate(key, sections) for key in items}
    model_items = {k: v for k, v in items.items() if where[k][0] == "model"}
    own = getattr(apply_overrides(config, model_items).model_config, "train_defaults", None)
    given = {name for section, name in where.values() if section == "train"}
    hints = typing.get_type_hints(TrainConfig)
    values = {
        k: coerce(v, hints[k], f"train.{k}")
        for k, v in (own() if own is not None else {}).items()
        if k not in given
    }
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **values))


def apply_overrides(config: RunConfig, items: dict[str, Any]) -> RunConfig:
    """A copy of ``config`` with ``{key: value}`` applied; string values are coerced by type.

    ``train.steps`` sets every stage: also the model config's fields named in its
    ``stage_steps`` (stages with lengths of their own, e.g. ddpm's ``ae_steps``) not set here.
    """
    sections = {"model": config.model_config, "train": config.train, "data": config.data}
    changes: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, value in items.items():
        section, name = _locate(key, sections)
        hints = typing.get_type_hints(type(sections[section]))
        changes[section][name] = coerce(value, hints[name], key)
    if "steps" in changes["train"]:  # --steps N sets every stage, also those with own lengths
        for name in getattr(config.model_config, "stage_steps", ()):
            changes["model"].setdefault(name, changes["train"]["steps"])
    new = {name: dataclasses.replace(obj, **changes[name]) for name, obj in sections.items()}
    return RunConfig(config.model, new["model"], new["data"], new["train"])


def _locate(key: str, sections: dict[str, Any]) -> tuple[str, str]:
    """Which section a ``--set`` key belongs to: ``train.lr`` explicitly, ``beta`` by search."""
    prefix, dot, name = key.partition(".")
    if dot:
        if prefix not in sections:
            raise UntwineError(
                f"unknown section {prefix!r} in {key!r}; use model., train. or data."
            )
        if name not in _field_names(sections[prefix]):
            raise UntwineError(
                f"unknown key {key!r}; valid {prefix} keys: "
                f"{', '.join(_field_names(sections[prefix]))}"
            )
        return prefix, name
    found = [s for s, obj in sections.items() if key in _field_names(obj)]
    if not found:
        valid = "; ".join(f"{s}: {', '.join(_field_names(obj))}" for s, obj in sections.items())
        raise UntwineError(f"unknown key {key!r}; valid keys are {valid}")
    if len(found) > 1:
        raise UntwineError(
            f"key {key!r} is ambiguous; write {' or '.join(f'{s}.{key}' for s in found)}"
        )
    return found[0], key


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def build_dataclass(cls: type, values: dict[str, Any], section: str) -> Any:
    """``cls(**values)`` with each value coerced to its field's type; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UntwineError(
            f"unknown {section} key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}"
        )
    return cls(**{k: coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (a string from the command line, or a JSON value) to type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if _is_none(value) and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except UntwineError as err:
                errors.append(str(err))
        raise UntwineError(errors[0] if len(errors) == 1 else f"{key}: cannot read {value!r}")
    if origin is Literal:
        for choice in args:
            if value == choice or str(value) == str(choice):
                return choice
        raise UntwineError(f"{key} must be one of {', '.join(map(str, args))}; got {value!r}")
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        elem = args[0] if args else str
        out = [coerce(v.strip() if isinstance(v, str) else v, elem, key) for v in items]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        raise UntwineError(f"{key} must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise UntwineError(f"{key} must be an integer; got {value!r}")
        try:
            number = float(value) if isinstance(value, str) and "e" in value.lower() else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number) if isinstance(number, float) else int(str(number).replace("_", ""))
        except (TypeError, ValueError):
            raise UntwineError(f"{key} must be an integer; got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise UntwineError(f"{key} must be a number; got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UntwineError(f"{key} must be a number; got {value!r}") from None
    if tp is str:
        return str(value)
    return value


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))


def _model_entry(name: str) -> Any:
    """The registry entry of a model (importing ``untwine.models`` fills the registry)."""
    from untwine.models import model_entry

    return model_entry(name)
