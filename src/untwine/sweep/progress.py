"""What a sweep tells its user: the live progress line, ``OUT/sweep.json`` (every trial's
status, rewritten after each change, so a crashed driver leaves an honest record) and the
summary table printed at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from untwine.sweep.spec import Spec
from untwine.sweep.trial import Outcome

MANIFEST = "sweep.json"


def write_manifest(out: Path, spec: Spec, outcomes: dict[str, Outcome], busy: set[str]) -> None:
    """Write ``OUT/sweep.json``: each trial's settings and status (queued, running, done,
    skipped, failed with its one-line error), seconds and attempts."""
    from untwine.runs import atomic_write_text

    trials = []
    for trial in spec.trials:
        outcome = outcomes.get(trial.name)
        status = outcome.status if outcome else ("running" if trial.name in busy else "queued")
        trials.append({
            "name": trial.name, "model": trial.model, "settings": trial.settings,
            "status": status, "error": outcome.error if outcome else "",
            "seconds": round(outcome.seconds, 2) if outcome else None,
            "attempts": outcome.attempts if outcome else 0,
        })
    body = {"name": spec.name, "trials": trials}
    atomic_write_text(out / MANIFEST, json.dumps(body, indent=2, default=str) + "\n")


class SweepProgress:
    """A rich progress line: done / running / failed / skipped and an ETA from the mean time
    of the trials finished in this run (remaining × mean ÷ trials in flight)."""

    def __init__(self, total: int, to_run: int, concurrent: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.to_run, self.concurrent, self.times = to_run, concurrent, []
        self.bar = None if quiet else Progress(
            TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), transient=False,
        )
        self.task = None if self.bar is None else self.bar.add_task(
            "sweep", total=total, status="")

    def __enter__(self) -> SweepProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def finished(self, seconds: float) -> None:
        self.times.append(seconds)

    def eta(self, settled: int) -> float | None:
        """Seconds left, or None before the first trial of this run has finished."""
        if not self.times:
            return None
        left = self.to_run - settled
        return left * (sum(self.times) / len(self.times)) / self.concurrent

    def update(self, outcomes: Any, running: int) -> None:
        counts = {"done": 0, "failed": 0, "skipped": 0}
        for outcome in outcomes:
            counts[outcome.status] += 1
        if self.bar is None:
            return
        eta = self.eta(counts["done"] + counts["failed"])
        text = (f"done {counts['done']} · running {running} · failed {counts['failed']} · "
                f"skipped {counts['skipped']} · ETA {_duration(eta)}")
        self.bar.update(self.task, completed=sum(counts.values()), status=text)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def summary_rows(outcomes: list[Outcome], out: Path, limit: int = 40) -> list[list[str]]:
    """Rows for the end-of-sweep table: failures first, then the rest, at most ``limit``."""
    from untwine.aggregate import HEADLINE, read_run

    ordered = [o for o in outcomes if o.status == "failed"] + [
        o for o in outcomes if o.status != "failed"]
    rows = []
    for o in ordered[:limit]:
        scores = read_run(out / o.trial.name).scores if o.status != "failed" else {}
        mig = scores.get("mig.discrete_mig")
        headline = next((k for k in HEADLINE if k.startswith("dci") and k in scores), None)
        rows.append([
            o.trial.name, o.status, f"{o.seconds:.0f}" if o.seconds else "",
            "" if mig is None else f"{mig:.3f}",
            "" if headline is None else f"{scores[headline]:.3f}", o.error,
        ])
    return rows
