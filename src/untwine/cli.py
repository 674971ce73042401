"""The `untwine` command line: thin wrappers that parse, call library functions and print."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from untwine.errors import UntwineError
from untwine.metrics.registry import DEFAULT_PRESET

app = typer.Typer(
    help="Unsupervised disentanglement: train, evaluate, traverse, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="List the datasets and draw their factors.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
experiment_app = typer.Typer(help="Experiments that check a paper's claim.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")
console = Console()
_state = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    _state["debug"] = debug


@datasets_app.command("list")
def datasets_list() -> None:
    """Each dataset with its factors, image shape and source (twin and/or official file)."""
    from untwine.data import DATASETS

    table = Table("dataset", "factors", "image (C, H, W)", "source")
    for name in sorted(DATASETS):
        entry = DATASETS[name]
        sources = [s for s, ok in (("twin", entry.twin), ("file", entry.loader)) if ok]
        if entry.twin is not None:
            ds = entry.twin()
            factors, shape = ds.space.describe(), str(ds.image_shape)
        else:
            factors, shape = entry.official, "from file"
        table.add_row(name, factors, shape, " + ".join(sources))
    console.print(table)


@datasets_app.command("show")
def datasets_show(
    name: str = typer.Argument("dsprites", help="Dataset name (see `untwine datasets list`)."),
    out: Path = typer.Option(None, "--out", help="PNG to write (default: NAME_factors.png)."),
    data_path: Path = typer.Option(None, "--data-path", help="Official file instead of the twin."),
    seed: int = typer.Option(0, help="Seed of the base factor combination."),
) -> None:
    """Draw one row per factor, sweeping it over its values with the others fixed."""
    from untwine.data import load_dataset
    from untwine.viz.gallery import factor_gallery

    ds = load_dataset(name, path=data_path)
    out = out or Path(f"{ds.name}_factors.png")
    factor_gallery(ds, out, seed=seed)
    console.print(f"wrote {out}  ({ds.name}: {ds.space.describe()})")
    from untwine.data.split import SPLITS

    if ds.name in SPLITS:
        console.print(f"declared split (share of pixel variance) {SPLITS[ds.name].describe()}")


@app.command("train")
def train_cmd(
    model: str = typer.Argument(None, help="Model name (see `untwine models`)."),
    data: str = typer.Option("dsprites", "--data", help="Dataset name (`untwine datasets list`)."),
    data_path: Path = typer.Option(None, "--data-path", help="Official file, not the twin."),
    steps: int = typer.Option(None, "--steps", help="Training steps (study default 300,000)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step (default 64)."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate (default 1e-4)."),
    seed: int = typer.Option(None, "--seed", help="Seed of weights and batches (default 0)."),
    latents: int = typer.Option(None, "--latents", help="Code size (default 10)."),
    sets: list[str] = typer.Option(None, "--set", help="key=value override; repeatable."),
    out: Path = typer.Option(None, "--out", help="Run folder (default runs/MODEL-DATA-sSEED)."),
    metrics: str = typer.Option(
        None, "--metrics", help="Evaluation at the end: fast (default), study or none."
    ),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a model, then evaluate it and draw its traversals into the run folder."""
    from untwine import runs
    from untwine.config import apply_overrides, make_run_config
    from untwine.pipeline import run

    if resume is not None:
        given = {"MODEL": model, "--data-path": data_path, "--batch-size": batch_size,
                 "--lr": lr, "--seed": seed, "--latents": latents, "--set": sets, "--out": out}
        fixed = [name for name, value in given.items() if value] + (
            ["--data"] if data != "dsprites" else [])
        if fixed:
            raise UntwineError(
                f"--resume continues {resume} with its own config; drop {', '.join(fixed)} "
                "(only --steps, --metrics and --quiet may be given)"
            )
        config = runs.read_config(resume)
        changes = {"train.steps": steps, "train.metrics": metrics}
        config = apply_overrides(config, {k: v for k, v in changes.items() if v is not None})
        run_dir = resume
    else:
        if model is None:
            raise UntwineError("name a model, e.g. `untwine train betavae` (see `untwine models`)")
        options = {"data.name": data, "data.path": data_path and str(data_path.resolve()),
                   "train.steps": steps, "train.batch_size": batch_size, "train.lr": lr,
                   "train.seed": seed, "latents": latents, "train.metrics": metrics}
        config = make_run_config(model, {k: v for k, v in options.items() if v is not None}, sets)
        run_dir = out or runs.default_run_dir(config)
    console.print(f"training {config.model} on {config.data.name} → {run_dir}")
    result = run(config, run_dir, resume=resume is not None, force=force, quiet=quiet)
    if result.interrupted:
        console.print(
            f"stopped at step {result.step}; checkpoint saved in {run_dir / 'checkpoint'}. "
            f"Continue with: untwine train --resume {run_dir}"
        )
        raise typer.Exit(128 + (result.signal or 2))
    console.print(f"trained {result.step} steps → {run_dir / runs.WEIGHTS}")
    if result.metrics:
        _print_metrics(result.metrics)
        console.print(f"wrote {run_dir / runs.METRICS}")
    for path in result.pictures:
        console.print(f"wrote {path}")


def _print_metrics(metrics: dict) -> None:
    from untwine.metrics.evaluate import flat_scores

    table = Table("metric", "value")
    for key, value in flat_scores(metrics).items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run folder written by `untwine train`."),
    preset: str = typer.Option(
        DEFAULT_PRESET, "--preset", help="Metric preset: fast, or study (the reference protocol)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the metrics' sampling."),
) -> None:
    """Score a trained run with the metric suite; writes RUN/metrics.json."""
    from untwine import runs
    from untwine.pipeline import evaluate_run

    _print_metrics(evaluate_run(run, preset, seed))
    console.print(f"wrote {run / runs.METRICS}")


@app.command("score")
def score_cmd(
    codes: Path = typer.Argument(
        ...,
        help="npz with codes (N, D) and integer factor classes factors (N, K); optional "
        "codes_test / factors_test, else a fixed split (RandomState(0) permutation, last "
        "third = test).",
    ),
    preset: str = typer.Option(
        DEFAULT_PRESET, "--preset", help="fast (≤2000/1000 rows, fast DCI) or study (all rows)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Score codes from any framework with the array-level metrics.

    MIG, DCI, SAP, modularity/explicitness, IRS and the unsupervised scores. BetaVAE and
    FactorVAE need a dataset and an encoder (untwine.metrics.evaluate), not saved codes.
    """
    import json

    from untwine.metrics.evaluate import load_codes_npz, score_arrays

    result = score_arrays(*load_codes_npz(codes), preset=preset)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_metrics(result["metrics"])


@app.command("traverse")
def traverse_cmd(
    run: Path = typer.Argument(..., help="Run folder written by `untwine train`."),
    out: Path = typer.Option(None, "--out", help="PNG to write (default RUN/traversal.png)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the base image."),
) -> None:
    """Draw the latent traversal grid of a trained run (rows: latents by KL, high to low)."""
    from untwine.pipeline import load_run
    from untwine.viz.traversal import traversal_grid

    model, dataset = load_run(run)
    path = traversal_grid(model, dataset, out or run / "traversal.png", seed=seed)
    console.print(f"wrote {path}")


@app.command("models")
def models_cmd() -> None:
    """Each model with its hyper-parameters and their defaults."""
    import dataclasses

    from untwine.models import MODELS

    table = Table("model", "hyper-parameters (defaults)", "method")
    for name in sorted(MODELS):
        entry = MODELS[name]
        fields = dataclasses.fields(entry.config_class)
        params = ", ".join(f"{f.name}={_default(f)}" for f in fields)
        table.add_row(name, params, entry.summary)
    console.print(table)
    console.print("override them with --set key=value, e.g. untwine train betavae --set beta=8")


def _default(f: object) -> object:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "required"


@experiment_app.command("isometry")
def experiment_isometry(
    out: Path = typer.Option(Path("isometry_experiment"), "--out", help="Folder for md/json/png."),
    samples: int = typer.Option(2000, help="Points per manifold (HLLE is O(N²) in memory)."),
    epochs: int = typer.Option(15, help="Autoencoder training epochs."),
    seed: int = typer.Option(0, help="Seed of the latents, nets and ICA."),
) -> None:
    """Hessian LLE + ICA vs AE, IRMAE, VAE and the local-isometry AE on blob manifolds."""
    from untwine.experiments.isometry import (
        IsometryExperimentConfig,
        markdown_table,
        run_isometry_experiment,
        write_outputs,
    )

    cfg = IsometryExperimentConfig(n_samples=samples, epochs=epochs, seed=seed)
    report = run_isometry_experiment(cfg)
    paths = write_outputs(report, out)
    typer.echo(markdown_table(report["results"]))
    typer.echo(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")


def main() -> None:
    """Console entry point: user errors become one line (full traceback with --debug)."""
    try:
        app()
    except UntwineError as err:
        if _state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
