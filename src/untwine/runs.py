"""Run-folder storage: config.json, model.safetensors, checkpoint/, log.csv, metrics.json.

Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so a crash or a
kill never leaves a half-written file behind. This module only stores and reads files; training
is ``untwine.train``, and ``untwine.pipeline`` rebuilds a trained model from the folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine._version import versions
from untwine.config import RunConfig
from untwine.errors import UntwineError

CONFIG, WEIGHTS, LOG, METRICS = "config.json", "model.safetensors", "log.csv", "metrics.json"
CHECKPOINT = Path("checkpoint") / "state.pt"
PICTURES = ("traversal.png", "reconstructions.png", "mi_heatmap.png")
RUN_FILES = (CONFIG, WEIGHTS, LOG, METRICS, *PICTURES)


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    """``runs/<model>-<data>-s<seed>``."""
    return Path(root) / f"{config.model}-{config.data.name}-s{config.train.seed}"


def prepare_run_dir(run_dir: str | Path, force: bool = False) -> Path:
    """Create a fresh run folder; refuse to overwrite an existing run unless ``force``."""
    run_dir = Path(run_dir)
    existing = [name for name in (*RUN_FILES, "checkpoint") if (run_dir / name).exists()]
    if existing and not force:
        if (run_dir / WEIGHTS).exists():
            state = "a finished run"
        elif (run_dir / CHECKPOINT).exists():
            state = f"an unfinished run; continue it with `untwine train --resume {run_dir}`, or"
        else:
            state = "files of an earlier run"
        raise UntwineError(
            f"{run_dir} already holds {state}; pick another folder with --out, "
            f"or pass --force to overwrite it"
        )
    for name in existing:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file via ``write(handle)`` to a temporary sibling, fsync it, then rename it over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda h: h.write(text.encode()))


def write_config(run_dir: str | Path, config: RunConfig) -> Path:
    """config.json: the resolved config, the seed and the library versions."""
    body = {**config.to_dict(), "seed": config.train.seed, "versions": versions()}
    return atomic_write_text(Path(run_dir) / CONFIG, json.dumps(body, indent=2) + "\n")


def read_config(run_dir: str | Path) -> RunConfig:
    """The RunConfig a run folder was trained with."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise UntwineError(
            f"{run_dir} is not a run folder (no {CONFIG}); train one with `untwine train`"
        )
    body = json.loads(path.read_text())
    return RunConfig.from_dict(body)


def save_weights(run_dir: str | Path, model: torch.nn.Module) -> Path:
    """model.safetensors with the model's state dict (atomic)."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(Path(run_dir) / WEIGHTS, lambda h: h.write(save(state)))


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """checkpoint/state.pt: the full training state (atomic: the old one stays until replaced)."""
    return atomic_write(Path(run_dir) / CHECKPOINT, lambda h: torch.save(state, h))


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """The training state written by ``save_checkpoint``."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise UntwineError(f"{run_dir} has no checkpoint to resume from ({CHECKPOINT} missing)")
    return torch.load(path, map_location="cpu", weights_only=True)


def numpy_state(rng: np.random.RandomState) -> dict[str, Any]:
    """A RandomState's state as tensors and numbers (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = rng.get_state()
    return {
        "kind": kind,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def set_numpy_state(rng: np.random.RandomState, state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    rng.set_state((state["kind"], keys, state["pos"], state["has_gauss"], state["cached"]))


def append_log(run_dir: str | Path, row: dict[str, Any]) -> None:
    """Add one row to log.csv, atomically: the file is rewritten, never appended in place, so a
    kill cannot leave a torn line. A row with new columns (a later stage's loss terms) widens
    the header; cells a row lacks stay empty."""
    write_log(run_dir, [*read_log(run_dir), row])


def write_log(run_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    """log.csv holding ``rows`` (atomic), its columns the union of the rows' keys in order."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(run_dir) / LOG, out.getvalue())


_LOG_TYPES = {"step": int, "stage": str}


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """log.csv as a list of rows: the step as an int, the stage name as a string, the other
    cells as floats; empty cells left out."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            {k: _LOG_TYPES.get(k, float)(v) for k, v in row.items() if v != ""}
            for row in csv.DictReader(handle)
        ]


def truncate_log(run_dir: str | Path, step: int) -> None:
    """Drop log rows after ``step`` (written after the checkpoint a resume starts from)."""
    rows = read_log(run_dir)
    if rows and rows[-1]["step"] > step:
        write_log(run_dir, [r for r in rows if r["step"] <= step])


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    return atomic_write_text(
        Path(run_dir) / METRICS, json.dumps(metrics, indent=2, default=float) + "\n"
    )


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise UntwineError(f"{run_dir} has no {METRICS}; run `untwine evaluate {run_dir}`")
    return json.loads(path.read_text())
