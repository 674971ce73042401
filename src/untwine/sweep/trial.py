"""One trial: what its folder already holds, its run inside a worker, and what came of it.

A trial whose folder holds the finished run (weights, and metrics unless the preset is
``none``) is done; one with a checkpoint resumes from it; a folder holding a run with other
settings is a conflict, never overwritten. A trial runs as one call of ``untwine.run`` (train →
evaluate → draw) and turns any failure into a one-line error instead of raising, so the driver
(and Ray, which would wrap the traceback) gets a message a user can read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from untwine.config import RunConfig
from untwine.errors import UntwineError
from untwine.sweep.spec import Trial, flat_config, import_module


@dataclass
class Outcome:
    """What happened to one trial in this sweep run."""

    trial: Trial
    status: str  # "done", "skipped", "failed"
    error: str = ""
    seconds: float = 0.0
    attempts: int = 0


def trial_state(trial: Trial, run_dir: Path) -> tuple[str, str]:
    """("done" | "resume" | "new" | "conflict", detail) for a trial's folder."""
    from untwine import runs

    if not (run_dir / runs.CONFIG).exists():
        return "new", ""
    try:
        stored = flat_config(json.loads((run_dir / runs.CONFIG).read_text()))
    except (OSError, json.JSONDecodeError):
        return "new", ""
    mine = flat_config(trial.config.to_dict())
    differ = [k for k in trial.checked if stored.get(k) != mine[k]]
    if differ:
        key = differ[0]
        return "conflict", (f"{run_dir} holds a run with {key}={stored.get(key)!r}, not "
                            f"{mine[key]!r}; move it away or sweep into another --out")
    evaluated = trial.config.train.metrics == "none" or (run_dir / runs.METRICS).exists()
    if (run_dir / runs.WEIGHTS).exists() and evaluated:
        return "done", ""
    if (run_dir / runs.CHECKPOINT).exists():
        return "resume", ""
    return "new", ""


def one_line(err: BaseException) -> str:
    """A failure as one line: an UntwineError's message, else ``Type: first line``."""
    cause = getattr(err, "cause", None)  # ray.exceptions.RayTaskError wraps the real exception
    if isinstance(cause, BaseException):
        err = cause
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(err, UntwineError) else f"{type(err).__name__}: {first}".strip()


def run_trial(config: dict[str, Any], run_dir: str, resume: bool, threads: int,
              imports: list[str]) -> dict[str, Any]:
    """Run one trial in this process: ``untwine.run`` with ``threads`` torch threads.

    Returns ``{"ok", "error", "seconds", "step"}``; never raises for a failing trial (Ray
    would wrap the traceback), so the driver gets the one-line error.
    """
    import torch

    import untwine

    start = time.perf_counter()
    try:
        for module in imports:
            import_module(module)
        torch.set_num_threads(max(1, int(threads)))
        result = untwine.run(RunConfig.from_dict(config), Path(run_dir), resume=resume,
                             force=not resume, quiet=True)
    except Exception as err:  # noqa: BLE001 - any failure becomes the trial's one-line error
        return {"ok": False, "error": one_line(err), "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    if result.interrupted:
        return {"ok": False, "error": f"interrupted at step {result.step} (signal "
                f"{result.signal}); run the sweep again to resume", "seconds": seconds}
    return {"ok": True, "error": "", "seconds": seconds, "step": result.step}
