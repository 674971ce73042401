"""What a run reports while it trains: log.csv rows (loss terms, lr, images/s; NaN/inf stop the
run naming the step and term) and the rich progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from untwine import runs
from untwine.errors import UntwineError


class LossWindow:
    """Loss terms of the steps since the last log row, kept on the device (no per-step sync).

    ``flush`` moves them to the CPU once, stops the run on a NaN/inf naming the step and the
    term, and appends their means, the stage, the learning rate and images/s to log.csv.
    """

    def __init__(self, run_dir: Path, stage: str, step: int, n_images: int, lr: Any) -> None:
        self.run_dir, self.stage, self.start = run_dir, stage, step
        self.n_images, self.lr = n_images, lr
        self.keys: list[str] | None = None
        self.rows: list[torch.Tensor] = []
        self.clock = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        if self.keys is None:
            self.keys = list(losses)
        elif list(losses) != self.keys:
            raise UntwineError(f"the model's loss terms changed from {self.keys} to {list(losses)}")
        self.rows.append(torch.stack([losses[k].detach().float().reshape(()) for k in self.keys]))

    def flush(self, step: int) -> dict[str, float]:
        if not self.rows:
            return {}
        values = torch.stack(self.rows).cpu()
        bad = ~torch.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            raise UntwineError(
                f"loss term {self.keys[col]!r} is {values[row, col].item()} at step "
                f"{self.start + row + 1}; training stopped. The last good checkpoint is in "
                f"{self.run_dir / runs.CHECKPOINT.parent}; try a lower --lr"
            )
        now = time.perf_counter()
        means = dict(zip(self.keys, values.double().mean(0).tolist(), strict=True))
        row = {
            "step": step,
            "stage": self.stage,
            **means,
            "lr": self.lr(),
            "images_per_s": self.n_images * len(self.rows) / max(now - self.clock, 1e-9),
        }
        runs.append_log(self.run_dir, row)
        self.rows, self.start, self.clock = [], step, now
        return row


class Progress:
    """A rich progress bar: step, the latest loss terms and images/s; silent with ``quiet``."""

    def __init__(self, total: int, start: int, quiet: bool, name: str = "") -> None:
        self.total, self.start, self.quiet, self.name = total, start, quiet, name
        self.bar: Any = None

    def __enter__(self) -> Progress:
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[terms]}"),
            )
            self.bar.start()
            self.task = self.bar.add_task(
                self.name, total=self.total, completed=self.start, terms=""
            )
        return self

    def describe(self, name: str) -> None:
        """Show ``name`` (the model, and the stage of a multi-stage model) before the bar."""
        if self.bar is not None:
            self.bar.update(self.task, description=name)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def show(self, step: int, row: dict[str, float]) -> None:
        if self.bar is not None and row:
            terms = "  ".join(
                f"{k} {v:.4g}" for k, v in row.items() if k not in ("step", "stage", "lr")
            )
            self.bar.update(self.task, completed=step, terms=terms.replace("images_per_s", "img/s"))

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
