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
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine._version import versions
from untwine.config import RunConfig
from untwine.errors import UntwineError
from untwine.files import WriteError, atomic_write, atomic_write_text

__all__ = ["WriteError", "atomic_write", "atomic_write_text"]  # re-exported: runs.atomic_write

CONFIG, WEIGHTS, LOG, METRICS = "config.json", "model.safetensors", "log.csv", "metrics.json"
CHECKPOINT = Path("checkpoint") / "state.pt"
PREVIOUS = Path("checkpoint") / "state.prev.pt"
"""The checkpoint before the latest, kept so a damaged state.pt is not the end of a run."""
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
    if run_dir.exists() and not run_dir.is_dir():
        raise UntwineError(f"{run_dir} is a file, not a folder; pick a run folder with --out")
    try:
        for name in existing:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from untwine.files import write_error

        raise write_error(run_dir, err) from err
    return run_dir


def write_config(run_dir: str | Path, config: RunConfig) -> Path:
    """config.json: the resolved config, the seed and the library versions."""
    body = {**config.to_dict(), "seed": config.train.seed, "versions": versions()}
    return atomic_write_text(Path(run_dir) / CONFIG, json.dumps(body, indent=2) + "\n")


def read_config(run_dir: str | Path) -> RunConfig:
    """The RunConfig a run folder was trained with."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise UntwineError(
            f"{run_dir} is not a run folder (no {CONFIG}); train one with `untwine train`"
        )
    try:
        body = json.loads(path.read_text())
        if not isinstance(body, dict) or "model" not in body:
            raise ValueError("no 'model' entry")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UntwineError(
            f"{path} is unreadable ({_short(err)}); untwine writes it whole, so it was changed "
            "afterwards: restore it, or train the run again into a new folder"
        ) from err
    try:
        return RunConfig.from_dict(body)
    except (TypeError, AttributeError, KeyError) as err:
        raise UntwineError(
            f"{path} does not describe a run ({_short(err)}); restore it, or train the run "
            "again into a new folder"
        ) from err


def _short(err: BaseException) -> str:
    """An exception as a short one-line phrase for an error message."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def save_weights(
    run_dir: str | Path, model: torch.nn.Module, step: int | None = None, name: str = ""
) -> Path:
    """model.safetensors with the model's state dict (atomic), its metadata recording the
    training step the weights belong to and the model's name, so stale or foreign weights are
    recognised (``weights_info``)."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"model": name or type(model).__name__}
    if step is not None:
        metadata["step"] = str(step)
    return atomic_write(Path(run_dir) / WEIGHTS, lambda h: h.write(save(state, metadata)))


def weights_info(run_dir: str | Path) -> dict[str, str]:
    """The metadata of model.safetensors (``step``, ``model``; empty for older files); raises a
    one-line error when the file is not a readable safetensors file."""
    from safetensors import safe_open

    path = Path(run_dir) / WEIGHTS
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for damaged headers
        raise damaged_weights(run_dir, err) from err


def load_weights(run_dir: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of model.safetensors (on the CPU), or a one-line error if it is damaged."""
    from safetensors.torch import load_file

    try:
        return load_file(Path(run_dir) / WEIGHTS)
    except Exception as err:  # SafetensorError, OSError, ValueError on truncation
        raise damaged_weights(run_dir, err) from err


def damaged_weights(run_dir: str | Path, err: BaseException) -> UntwineError:
    fix = (
        f"rebuild it from the checkpoint with `untwine train --resume {run_dir}`"
        if (Path(run_dir) / CHECKPOINT).exists()
        else "train the run again (no checkpoint is left to rebuild it from)"
    )
    return UntwineError(f"{Path(run_dir) / WEIGHTS} is damaged ({_short(err)}); {fix}")


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """checkpoint/state.pt: the full training state (atomic: the old one stays until replaced).

    The checkpoint it replaces is kept as checkpoint/state.prev.pt (a hard link, so no copy),
    a way back when state.pt is later damaged on disk.
    """
    run_dir = Path(run_dir)
    current, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    if current.exists():
        tmp = previous.with_name(previous.name + ".link")
        try:
            tmp.unlink(missing_ok=True)
            os.link(current, tmp)
            os.replace(tmp, previous)
        except OSError:
            tmp.unlink(missing_ok=True)  # no hard links here: keep only the latest
    # Serialised in memory first: torch.save writing to a full disk raises a RuntimeError from
    # its zip writer ("unexpected pos"), not the OSError that atomic_write turns into one line.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(current, lambda h: h.write(buffer.getbuffer()))


CHECKPOINT_KEYS = ("step", "model", "optimiser", "torch_rng", "numpy_rng", "python_rng", "data_rng")


def load_checkpoint(
    run_dir: str | Path, path: Path | None = None, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The training state written by ``save_checkpoint``; a damaged file (or one lacking a
    ``required`` key) is a one-line error that points to the previous checkpoint when one is
    kept."""
    run_dir = Path(run_dir)
    path = path or run_dir / CHECKPOINT
    if not path.exists():
        raise UntwineError(
            f"{run_dir} has no checkpoint to resume from ({CHECKPOINT} missing: stopped before "
            "the first one); start it again with --force"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"holds a {type(state).__name__}, not a training state")
        missing = [k for k in required if k not in state]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError,
            zipfile.BadZipFile, AttributeError, KeyError, IndexError) as err:
        raise damaged_checkpoint(run_dir, path, err) from err
    return state


def damaged_checkpoint(run_dir: Path, path: Path, err: BaseException) -> UntwineError:
    """The error for an unreadable checkpoint: resume from the previous one if it is sound."""
    previous = run_dir / PREVIOUS
    fix = f"train the run again (`untwine train ... --out {run_dir} --force`)"
    if path != previous and previous.exists():
        try:
            step = int(load_checkpoint(run_dir, previous, CHECKPOINT_KEYS)["step"])
            fix = (
                f"the previous checkpoint (step {step}) is sound: `mv {previous} "
                f"{run_dir / CHECKPOINT}`, then `untwine train --resume {run_dir}`"
            )
        except UntwineError:
            pass
    return UntwineError(f"{path} is damaged ({_short(err)}); {fix}")


def checkpoint_step(run_dir: str | Path) -> int | None:
    """The step of the run's checkpoint, or None when there is none or it is unreadable. The
    file is memory-mapped, so only its small header is read, not the weights."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(state["step"])
    except Exception:  # damaged: load_checkpoint names the problem when a resume needs it
        return None


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
    cells as floats; empty cells left out. A row that does not parse (a line torn by an older
    writer or an editor) is skipped rather than stopping a resume."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        try:
            for row in csv.DictReader(handle):
                if None in row or None in row.values():  # more or fewer cells than columns
                    continue
                try:
                    parsed = {k: _LOG_TYPES.get(k, float)(v) for k, v in row.items() if v != ""}
                except (TypeError, ValueError):
                    continue
                if "step" in parsed:
                    rows.append(parsed)
        except csv.Error:
            pass  # a NUL byte or similar damage: keep the rows read so far
    return rows


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
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UntwineError(
            f"{path} is unreadable ({_short(err)}); write it again with "
            f"`untwine evaluate {run_dir}`"
        ) from err
