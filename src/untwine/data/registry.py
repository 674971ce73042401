"""Datasets by name: ``load_dataset("dsprites")`` gives the twin, ``path=`` the official file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from untwine.data.base import GridDataset
from untwine.errors import UntwineError


@dataclass
class DatasetEntry:
    """How to build one dataset: a procedural twin, a loader for the official file, or both."""

    name: str
    twin: Callable[..., GridDataset] | None = None
    loader: Callable[..., GridDataset] | None = None
    official: str = ""
    """Official file name(s) and where they come from, quoted in error messages."""


DATASETS: dict[str, DatasetEntry] = {}


def register_twin(name: str, official: str = "") -> Callable:
    """Decorator: register ``fn(**options) -> GridDataset`` as the procedural twin of ``name``."""

    def wrap(fn: Callable[..., GridDataset]) -> Callable[..., GridDataset]:
        entry = DATASETS.setdefault(name, DatasetEntry(name))
        entry.twin = fn
        entry.official = entry.official or official
        return fn

    return wrap


def register_loader(name: str, official: str = "") -> Callable:
    """Decorator: register ``fn(path, **options) -> GridDataset`` as the official-file loader."""

    def wrap(fn: Callable[..., GridDataset]) -> Callable[..., GridDataset]:
        entry = DATASETS.setdefault(name, DatasetEntry(name))
        entry.loader = fn
        entry.official = official or entry.official
        return fn

    return wrap


def load_dataset(name: str, path: str | Path | None = None, **options: Any) -> GridDataset:
    """The dataset ``name``: its procedural twin, or the official file at ``path``."""
    key = name.lower().replace("-", "").replace("_", "")
    entry = DATASETS.get(key)
    if entry is None:
        raise UntwineError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    if path is None:
        if entry.twin is None:
            raise UntwineError(
                f"{name} has no procedural twin; pass the official file with path= "
                f"(--data-path): {entry.official}"
            )
        return entry.twin(**check_options(name, entry.twin, options, "twin"))
    if entry.loader is None:
        raise UntwineError(f"{name} has no file loader: it is rendered here; drop --data-path")
    path = Path(path)
    if not path.exists():
        raise UntwineError(f"{path}: no such file; {name} expects {entry.official}")
    return entry.loader(path, **check_options(name, entry.loader, options, "file loader"))


def check_options(name: str, fn: Callable, options: dict[str, Any], what: str) -> dict[str, Any]:
    """``options`` if ``fn`` takes them all as keywords; else a one-line error listing those it
    takes (``--data-option key=value``)."""
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return options
    taken = [n for n, p in params.items() if n != "path" and p.kind is not p.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(taken))
    if unknown:
        offer = f"it takes {', '.join(taken)}" if taken else "it takes none"
        raise UntwineError(
            f"the {name} {what} has no option {', '.join(unknown)}; {offer} "
            "(--data-option key=value)"
        )
    return options
