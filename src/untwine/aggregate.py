"""Run folders -> one study table: each run's settings and scores, and each configuration's
mean ± std over seeds.

A *setting* is a config field that takes two or more values among the collected runs (plus the
model and the dataset, always); the seed is the replicate, so a *configuration* is a run's
settings without its seed. Scores are ``metrics.json``'s flat scores (``"mig.discrete_mig"``),
exactly as the run wrote them. The std is the sample standard deviation (ddof = 1) over a
configuration's seeds, blank for a single seed.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from untwine.errors import UntwineError
from untwine.runs import checkpoint_step

CONFIG, WEIGHTS, METRICS, LOG = "config.json", "model.safetensors", "metrics.json", "log.csv"
SWEEP_MANIFEST = "sweep.json"

HEADLINE = (
    "beta_vae.eval_accuracy",
    "factor_vae.eval_accuracy",
    "mig.discrete_mig",
    "dci.disentanglement",
    "dci_fast.disentanglement",
    "modularity_explicitness.modularity_score",
    "sap.SAP_score",
    "irs.IRS",
)
"""The scores the reference study plots (Locatello et al. 2019, Fig. 2 and 3), in its order;
DCI from whichever backend the runs used."""

IGNORED = {"train.seed", "train.device", "train.log_every", "train.checkpoint_every", "data.path"}
"""Config fields that never make two runs different configurations (the seed is the replicate;
the rest change speed or storage, not the model)."""

SHORT = {"model": "model", "data.name": "data", "train.steps": "steps", "train.seed": "seed"}


@dataclass
class RunRecord:
    """One run folder: where it is, its flat config, its flat scores and how far it got."""

    run_dir: Path
    config: dict[str, Any]
    scores: dict[str, float | int]
    status: str  # "done", "unevaluated" (weights, no metrics.json) or "unfinished"
    final_loss: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def seed(self) -> int:
        return int(self.config.get("train.seed", 0))


@dataclass
class Study:
    """The collected runs, their setting columns, score columns and configurations."""

    runs: list[RunRecord]
    setting_keys: list[str]
    score_keys: list[str]
    failed: list[dict[str, Any]] = field(default_factory=list)  # from sweep.json manifests

    def configurations(self) -> list[dict[str, Any]]:
        """One row per configuration: its settings, n seeds, and mean / std of every score."""
        groups: dict[tuple, list[RunRecord]] = {}
        for run in self.runs:
            key = tuple(_hashable(run.settings.get(k)) for k in self.setting_keys)
            groups.setdefault(key, []).append(run)
        rows = []
        for members in groups.values():
            row: dict[str, Any] = {k: members[0].settings.get(k) for k in self.setting_keys}
            row["label"] = config_label(row)
            row["seeds"] = sorted(r.seed for r in members)
            row["runs"] = [r.name for r in members]
            stats = {}
            for key in self.score_keys:
                values = [float(r.scores[key]) for r in members if key in r.scores]
                stats[key] = _mean_std(values)
            row["scores"] = stats
            rows.append(row)
        return rows

    def run_rows(self) -> list[dict[str, Any]]:
        """One flat row per run: name, settings, seed, status, final loss, every score."""
        return [
            {
                "run": r.name,
                **{k: r.settings.get(k) for k in self.setting_keys},
                "seed": r.seed,
                "status": r.status,
                "final_loss": r.final_loss,
                **{k: r.scores.get(k) for k in self.score_keys},
            }
            for r in self.runs
        ]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _mean_std(values: list[float]) -> dict[str, Any]:
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "n": 0}
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def config_label(settings: dict[str, Any]) -> str:
    """``betavae beta=4`` — the model, then every other setting but the dataset (if one)."""
    rest = [f"{k}={_fmt(v)}" for k, v in settings.items() if k not in ("model", "data", "label")]
    return " ".join([str(settings.get("model", "?")), *rest])


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """config.json -> ``{"model": ..., "model_config.beta": 4.0, "train.steps": ..., ...}``."""
    flat: dict[str, Any] = {"model": config.get("model")}
    for section in ("model_config", "data", "train"):
        for key, value in (config.get(section) or {}).items():
            flat[f"{section}.{key}"] = value
    return flat


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Every run folder (one holding config.json) at or below each path, sorted, no repeats."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise UntwineError(f"{path}: no such run or sweep folder")
        if (path / CONFIG).exists():
            hits = [path]
        else:
            hits = sorted(p.parent for p in path.rglob(CONFIG))
            if not hits:
                raise UntwineError(
                    f"{path} holds no run folders (no config.json at or below it); "
                    "pass folders written by `untwine train` or `untwine sweep`"
                )
        found.extend(h for h in hits if h.resolve() not in {f.resolve() for f in found})
    return found


def read_run(run_dir: Path) -> RunRecord:
    """A run folder's flat config, flat scores, status and last logged loss."""
    from untwine.metrics.evaluate import flat_scores

    config = flatten(_read_json(run_dir / CONFIG))
    scores: dict[str, float | int] = {}
    metrics = _read_json(run_dir / METRICS) if (run_dir / METRICS).exists() else None
    if metrics is not None and not _stale(run_dir, metrics):
        scores = flat_scores(metrics)
        status = "done"
    elif metrics is not None:
        status = "unfinished"  # a longer --resume was cut off: its scores are an earlier step's
    else:
        status = "unevaluated" if (run_dir / WEIGHTS).exists() else "unfinished"
    return RunRecord(run_dir, config, scores, status, _final_loss(run_dir / LOG))


def _read_json(path: Path) -> dict[str, Any]:
    """A run folder's JSON object, or a one-line error naming the file and what to do."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        problem = f"is unreadable ({err})"
    else:
        if isinstance(value, dict):
            return value
        problem = f"holds a JSON {type(value).__name__}, not an object"
    raise UntwineError(
        f"{path} {problem}; untwine writes it whole, so it was changed afterwards: restore it, "
        "train or evaluate that run again, or leave its folder out of the report"
    )


def _stale(run_dir: Path, metrics: dict[str, Any]) -> bool:
    """metrics.json scored an earlier step than the run's checkpoint has reached."""
    scored, reached = metrics.get("step"), checkpoint_step(run_dir)
    return isinstance(scored, int) and reached is not None and reached > scored


def _final_loss(log: Path) -> float | None:
    if not log.exists():
        return None
    try:  # only shown beside the scores: a damaged log gives no loss, not an error
        with log.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return float(rows[-1]["loss"]) if rows else None
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError):
        return None


def collect(paths: list[str | Path]) -> Study:
    """Read every run folder under ``paths`` and work out the setting and score columns."""
    runs = [read_run(d) for d in find_run_dirs(paths)]
    values: dict[str, set] = {}
    for run in runs:
        for key, value in run.config.items():
            values.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    varying = [k for k in values if k not in IGNORED and len(values[k]) > 1]
    keys = ["model", "data.name"] + [k for k in ("train.steps",) if k in varying]
    keys += [k for k in varying if k not in keys]
    names = _short_names(keys)
    for run in runs:
        run.settings = {names[k]: run.config.get(k) for k in keys if k in run.config}
    score_keys = _ordered_scores(runs)
    failed = []
    for path in map(Path, paths):
        manifest = path / SWEEP_MANIFEST
        if manifest.exists():
            trials = _read_json(manifest).get("trials", [])
            failed += [t for t in trials if t.get("status") == "failed"]
    return Study(runs, [names[k] for k in keys], score_keys, failed)


def _short_names(keys: list[str]) -> dict[str, str]:
    """``model_config.beta`` -> ``beta`` unless two keys would share the short name."""
    tails = [SHORT.get(k, k.split(".", 1)[-1]) for k in keys]
    return {k: t if tails.count(t) == 1 else k for k, t in zip(keys, tails, strict=True)}


def _ordered_scores(runs: list[RunRecord]) -> list[str]:
    seen: list[str] = []
    for run in runs:
        seen += [k for k in run.scores if k not in seen]
    return [k for k in HEADLINE if k in seen] + [k for k in seen if k not in HEADLINE]


def write_tables(study: Study, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
    """``stem.csv`` (one row per run) and ``stem.json`` (runs, configurations, columns)."""
    from untwine.runs import atomic_write_text

    out_dir = Path(out_dir)
    rows = study.run_rows()
    columns = list(rows[0]) if rows else ["run"]
    lines = _csv_text(columns, rows)
    csv_path = atomic_write_text(out_dir / f"{stem}.csv", lines)
    body = {
        "settings": study.setting_keys,
        "scores": study.score_keys,
        "std": "sample standard deviation over seeds (ddof = 1); null for one seed",
        "configurations": study.configurations(),
        "runs": rows,
        "failed_trials": study.failed,
    }
    json_path = atomic_write_text(out_dir / f"{stem}.json", json.dumps(body, indent=2) + "\n")
    return csv_path, json_path


def _csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return buffer.getvalue()
