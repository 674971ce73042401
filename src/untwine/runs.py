"""The run folder: config.json, model.safetensors, checkpoint/, log.csv, metrics.json and pictures.

Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so a crash or a
kill never leaves a half-written file behind; ``load_model`` rebuilds a trained model from the
folder alone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def versions() -> dict[str, str]:
    """Library versions recorded beside every run."""
    import untwine

    return {
        "untwine": untwine.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


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


def append_log(run_dir: str | Path, row: dict[str, float]) -> None:
    """Append one row to log.csv (header written with the first row)."""
    path = Path(run_dir) / LOG
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_log(run_dir: str | Path) -> list[dict[str, float]]:
    """log.csv as a list of rows with float values."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def truncate_log(run_dir: str | Path, step: int) -> None:
    """Drop log rows after ``step`` (written after the checkpoint a resume starts from)."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if float(ln.split(",", 1)[0]) <= step]
    atomic_write_text(path, "".join(kept))


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    return atomic_write_text(
        Path(run_dir) / METRICS, json.dumps(metrics, indent=2, default=float) + "\n"
    )


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise UntwineError(f"{run_dir} has no {METRICS}; run `untwine evaluate {run_dir}`")
    return json.loads(path.read_text())


def build_model(config: RunConfig, image_shape: tuple[int, int, int]) -> torch.nn.Module:
    """The untrained model a config describes."""
    from untwine.config import model_entry

    return model_entry(config.model).build(config.model_config, tuple(image_shape))


def load_dataset_for(config: RunConfig) -> Any:
    """The dataset a run was trained on."""
    from untwine.data import load_dataset

    return load_dataset(config.data.name, path=config.data.path)


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; a CUDA device that is not there is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise UntwineError(
                f"device {name!r} asked for but this machine has {count} CUDA device(s); "
                "use --set device=auto or device=cpu"
            )
    return device


def load_model(
    run_dir: str | Path, device: str | torch.device | None = None, dataset: Any = None
) -> torch.nn.Module:
    """The trained model of a run folder, in eval mode, with its config as ``model.config``.

    ``device`` defaults to the run's own (``auto``: CUDA when present); ``dataset`` saves loading
    the run's dataset again when the caller has it.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if not (run_dir / WEIGHTS).exists():
        hint = " (training unfinished: resume it with `untwine train --resume`)"
        raise UntwineError(
            f"{run_dir} has no {WEIGHTS}{hint if (run_dir / CHECKPOINT).exists() else ''}"
        )
    shape = (dataset if dataset is not None else load_dataset_for(config)).image_shape
    model = build_model(config, shape)
    model.load_state_dict(load_file(run_dir / WEIGHTS))
    return model.to(resolve_device(config.train.device) if device is None else device).eval()


def load_run(run_dir: str | Path) -> tuple[torch.nn.Module, Any]:
    """A run's trained model on its own device and its dataset, each loaded once."""
    dataset = load_dataset_for(read_config(run_dir))
    return load_model(run_dir, dataset=dataset), dataset


def representer(
    model: torch.nn.Module,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    mode: str = "mean",
) -> Callable[[Any], np.ndarray]:
    """``represent(images) -> codes`` for the metrics: numpy or torch (n, C, H, W) in, numpy out."""

    @torch.no_grad()
    def represent(images: Any) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        parts = [
            model.represent(x[i : i + batch_size].to(device, torch.float32), mode=mode).cpu()
            for i in range(0, len(x), batch_size)
        ]
        return torch.cat(parts).numpy().astype(np.float64)

    return represent


def evaluate_run(run_dir: str | Path, preset: str = "fast", seed: int = 0) -> dict[str, Any]:
    """Score a run's codes with ``untwine.metrics.evaluate`` and write metrics.json."""
    from untwine.metrics import evaluate

    model, dataset = load_run(run_dir)
    device = next(model.parameters()).device
    metrics = evaluate(dataset, representer(model, device), preset=preset, seed=seed)
    write_metrics(run_dir, metrics)
    return metrics


def draw_run(run_dir: str | Path, seed: int = 0) -> list[Path]:
    """traversal.png, reconstructions.png and mi_heatmap.png in the run folder."""
    from untwine.viz.heatmap import mi_heatmap_for
    from untwine.viz.traversal import reconstruction_grid, traversal_grid

    run_dir = Path(run_dir)
    model, dataset = load_run(run_dir)
    device = next(model.parameters()).device
    return [
        traversal_grid(model, dataset, run_dir / PICTURES[0], seed=seed),
        reconstruction_grid(model, dataset, run_dir / PICTURES[1], seed=seed),
        mi_heatmap_for(representer(model, device), dataset, run_dir / PICTURES[2], seed=seed),
    ]
