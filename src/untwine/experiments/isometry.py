"""The spectral experiment: Hessian LLE + ICA against deep autoencoders on isometric manifolds.

For each manifold (``blob2d``, ``blob3d`` isometric; ``blob2dwarped`` the control) it draws N
continuous uniform latents, renders them, fits every method on those images and scores the
codes raw and after FastICA: MCC against the true latents and the local-isometry score LI
against the images (both in ``untwine.metrics``). Writes a markdown table, JSON and a figure.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import FastICA

from untwine import runs
from untwine.config import check_seed, make_run_config
from untwine.data import load_dataset
from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.errors import UntwineError
from untwine.metrics.isometry import isometry
from untwine.metrics.mcc import mcc
from untwine.models.base import model_entry, representer
from untwine.models.spectral import SpectralICA, isometric_axis_scales
from untwine.train import train
from untwine.viz.figures import save, subplots

METHODS = {"hlle": "HLLE", "ae": "AE", "irmae": "IRMAE", "vae": "VAE (β=0.1)", "isoae": "LI-AE"}
AUTOENCODERS = {"ae": "ae", "irmae": "irmae", "vae": "smallvae", "isoae": "isoae"}
"""Experiment method -> registered model trained by the one loop."""


@dataclass
class IsometryExperimentConfig:
    """What to run: manifolds, methods, sample count, autoencoder epochs, seed."""

    manifolds: tuple[str, ...] = ("blob2d", "blob3d", "blob2dwarped")
    methods: tuple[str, ...] = ("hlle", "ae", "irmae", "vae", "isoae")
    n_samples: int = 1500
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    pca_components: int = 30
    metric_neighbors: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise UntwineError(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
        for name in ("n_samples", "epochs", "batch_size", "pca_components", "metric_neighbors"):
            if getattr(self, name) < 1:
                raise UntwineError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.n_samples <= self.metric_neighbors:
            raise UntwineError(
                f"n_samples ({self.n_samples}) must exceed "
                f"metric_neighbors ({self.metric_neighbors})"
            )


def _ica(codes: np.ndarray, d: int, seed: int) -> np.ndarray:
    """FastICA to d unit-variance sources (its whitening is PCA to d first)."""
    ica = FastICA(d, whiten="unit-variance", max_iter=1000, random_state=seed)
    return ica.fit_transform(codes)


def _scores(codes: np.ndarray, latents: np.ndarray, flat: np.ndarray, k: int) -> dict[str, Any]:
    m = mcc(codes, latents)
    return {
        "mcc": m["mcc"],
        "mcc_spearman": mcc(codes, latents, correlation="spearman")["mcc"],
        "matching": m["matching"],
        "li": isometry(codes, flat, n_neighbors=k)["isometry"],
        "li_latents": isometry(codes, latents, n_neighbors=k)["isometry"],
    }


def in_memory_dataset(name: str, images: np.ndarray) -> GridDataset:
    """The sampled images as a one-factor dataset ("sample"), so the one training loop draws
    its batches from them."""
    space = FactorSpace.from_sizes(("sample",), (len(images),))
    return GridDataset(name, space, images.shape[1:], lambda f: images[f[:, 0]], source="memory")


def run_method(
    method: str,
    images: np.ndarray,
    d: int,
    cfg: IsometryExperimentConfig,
    run_dir: Path,
    name: str = "manifold",
    overrides: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(raw codes, +ICA codes, info) of one method fitted on ``images`` (n, C, H, W).

    Autoencoders train through ``untwine.train`` into ``run_dir`` for ``epochs`` passes' worth
    of steps (batches drawn with replacement from the images); ``overrides`` are extra
    ``--set``-style keys of the run config (e.g. ``{"isometry_weight": 1.0}``)."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    if method == "hlle":
        model = SpectralICA(d, pca_components=cfg.pca_components, random_state=cfg.seed)
        ica_codes = model.fit_transform(images)
        return model.embedding_, ica_codes, {"n_neighbors": model.n_neighbors_}
    steps = cfg.epochs * math.ceil(len(images) / cfg.batch_size)
    model_name = AUTOENCODERS[method]
    config = make_run_config(
        model_name,
        {"train.steps": steps, "train.batch_size": cfg.batch_size, "train.lr": cfg.lr,
         "train.seed": cfg.seed, "train.metrics": "none", "train.log_every": max(1, steps // 5),
         "train.checkpoint_every": steps, "data.name": name,
         "latents": max(d, model_entry(model_name).config_class.latents), **(overrides or {})},
    )
    result = train(config, run_dir, force=True, quiet=True, dataset=in_memory_dataset(name, images))
    raw = representer(result.model, batch_size=512)(images)
    ica_codes = _ica(raw, d, cfg.seed)
    ica_codes = ica_codes * isometric_axis_scales(ica_codes, flat, cfg.metric_neighbors)
    last = runs.read_log(run_dir)[-1]
    info = {"final_loss": last["loss"], "final_terms": last,
            "config": config.to_dict()["model_config"]}
    return raw, ica_codes, info


def run_isometry_experiment(
    cfg: IsometryExperimentConfig, runs_dir: Path | None = None
) -> dict[str, Any]:
    """Every method on every manifold: scores, timings and the codes for the figure.

    The autoencoders' run folders go to ``runs_dir`` (default: a temporary folder, removed)."""
    if runs_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run_isometry_experiment(cfg, Path(tmp))
    torch.set_num_threads(min(2, torch.get_num_threads()))
    results: list[dict[str, Any]] = []
    codes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for name in cfg.manifolds:
        ds = load_dataset(name)
        latents = ds.sample_latents(cfg.n_samples, np.random.RandomState(cfg.seed))
        images = ds.render_latents(latents)
        flat = images.reshape(len(images), -1).astype(np.float64)
        for method in cfg.methods:
            start = time.perf_counter()
            run_dir = runs_dir / f"{name}-{method}-s{cfg.seed}"
            raw, ica_codes, info = run_method(method, images, ds.latent_dim, cfg, run_dir, name)
            seconds = time.perf_counter() - start
            results.append(
                {
                    "manifold": name,
                    "method": method,
                    "raw": _scores(raw, latents, flat, cfg.metric_neighbors),
                    "ica": _scores(ica_codes, latents, flat, cfg.metric_neighbors),
                    "seconds": seconds,
                    "info": info,
                }
            )
            codes[(name, method)] = (ica_codes, latents)
    return {"config": asdict(cfg), "results": results, "codes": codes}


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The MCC / LI table: one row per manifold × method, raw codes and after FastICA."""
    lines = [
        "| manifold | method | MCC | MCC +ICA | Spearman MCC +ICA | LI | LI +ICA | time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['manifold']} | {METHODS[r['method']]} | {r['raw']['mcc']:.3f} | "
            f"{r['ica']['mcc']:.3f} | {r['ica']['mcc_spearman']:.3f} | {r['raw']['li']:.3f} | "
            f"{r['ica']['li']:.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_seeds(cfg: IsometryExperimentConfig, seeds: tuple[int, ...]) -> dict[str, Any]:
    """The experiment once per seed (latents, nets and ICA all reseeded); rows carry ``seed``.

    The codes kept for the figure are the first seed's."""
    if not seeds:
        raise UntwineError("seeds must name at least one seed")
    configs = [replace(cfg, seed=seed) for seed in seeds]  # every seed checked before training
    results, codes = [], None
    for each in configs:
        report = run_isometry_experiment(each)
        results += [{**r, "seed": each.seed} for r in report["results"]]
        codes = report["codes"] if codes is None else codes
    return {"config": {**asdict(cfg), "seeds": list(seeds)}, "results": results, "codes": codes}


def summary_table(results: list[dict[str, Any]]) -> str:
    """MCC / LI as mean ± std over seeds: one row per manifold × method."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["manifold"], r["method"]), []).append(r)

    def cell(rows: list[dict[str, Any]], kind: str, key: str) -> str:
        v = np.array([r[kind][key] for r in rows])
        return f"{v.mean():.3f} ± {v.std():.3f}"

    lines = [
        "| manifold | method | seeds | MCC | MCC +ICA | LI | LI +ICA |",
        "|---|---|---|---|---|---|---|",
    ]
    for (manifold, method), rows in groups.items():
        lines.append(
            f"| {manifold} | {METHODS[method]} | {len(rows)} | {cell(rows, 'raw', 'mcc')} | "
            f"{cell(rows, 'ica', 'mcc')} | {cell(rows, 'raw', 'li')} | {cell(rows, 'ica', 'li')} |"
        )
    return "\n".join(lines) + "\n"


def plot_codes(
    codes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
    manifolds: tuple[str, ...],
    methods: tuple[str, ...],
    path: Path,
) -> None:
    """Grid of scatter plots: each method's +ICA codes matched to latents 1 and 2, coloured by
    the true latents (red = latent 1, green = latent 2); a clean recovery is an axis-aligned
    square with a smooth red-left-to-right, green-bottom-to-top gradient."""
    fig, axes = subplots(
        len(manifolds),
        len(methods),
        figsize=(2.3 * len(methods), 2.3 * len(manifolds)),
        squeeze=False,
    )
    for i, name in enumerate(manifolds):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            c, z = codes[(name, method)]
            pairs = dict((k, dim) for dim, k in mcc(c, z)["matching"])
            xy = [c[:, pairs.get(k, k)] for k in (0, 1)]
            zn = (z[:, :2] - z[:, :2].min(0)) / np.ptp(z[:, :2], axis=0)
            colour = np.stack([zn[:, 0], zn[:, 1], np.full(len(z), 0.4)], axis=1)
            ax.scatter(xy[0], xy[1], c=colour, s=2, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{METHODS[method]} +ICA", fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    save(fig, path, dpi=90)


def write_outputs(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """isometry.md (table; mean ± std first for ``run_seeds``), isometry.json (scores, config),
    isometry.png (figure) in ``out``."""
    from untwine.files import atomic_write_text

    paths = {k: out / f"isometry.{k}" for k in ("md", "json", "png")}
    table = markdown_table(report["results"])
    if "seeds" in report["config"]:
        table = summary_table(report["results"]) + "\n" + table
    atomic_write_text(paths["md"], table)
    payload = {"config": report["config"], "results": report["results"]}
    atomic_write_text(paths["json"], json.dumps(payload, indent=2))
    cfg = report["config"]
    plot_codes(report["codes"], tuple(cfg["manifolds"]), tuple(cfg["methods"]), paths["png"])
    return paths
