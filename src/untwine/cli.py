"""The `untwine` command line: thin wrappers that parse, call library functions and print."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from untwine.errors import UntwineError
from untwine.metrics.registry import DEFAULT_PRESET


class _Stopped(Exception):
    """Ctrl-C inside a command, carried past Typer (which would exit 130 silently) to ``main``,
    which prints its message: what is kept and how to continue."""


class _Group(TyperGroup):
    """The root command group; a Ctrl-C in any command leaves it as ``_Stopped``."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:
            raise _Stopped(str(err)) from err


app = typer.Typer(
    cls=_Group,
    help="Unsupervised disentanglement: train, evaluate, traverse, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="List the datasets and draw their factors.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
experiment_app = typer.Typer(help="Experiments that check a paper's claim.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")
console = Console(markup=False, highlight=False)  # paths like runs/[x] print as they are
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
    data_options: list[str] = typer.Option(
        None, "--data-option", help="Loader option key=value (e.g. in_memory=true); repeatable."
    ),
    seed: int = typer.Option(0, help="Seed of the base factor combination."),
) -> None:
    """Draw one row per factor, sweeping it over its values with the others fixed."""
    from untwine.config import check_seed
    from untwine.data import load_dataset
    from untwine.viz.gallery import factor_gallery

    check_seed(seed)
    ds = load_dataset(name, path=data_path, **parse_options(data_options))
    out = picture_path(out, Path(f"{ds.name}_factors.png"))
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
    data_options: list[str] = typer.Option(
        None, "--data-option", help="Loader option key=value (e.g. in_memory=true); repeatable."
    ),
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
        devices = [s for s in sets or [] if s.partition("=")[0].strip() in DEVICE_KEYS]
        given = {"MODEL": model, "--data-path": data_path, "--batch-size": batch_size,
                 "--lr": lr, "--seed": seed, "--latents": latents, "--out": out,
                 "--set": [s for s in sets or [] if s not in devices],
                 "--data-option": data_options}
        fixed = [name for name, value in given.items() if value] + (
            ["--data"] if data != "dsprites" else [])
        if fixed:
            raise UntwineError(
                f"--resume continues {resume} with its own config; drop {', '.join(fixed)} "
                "(only --steps, --metrics, --quiet and --set device=... may be given)"
            )
        config = runs.read_config(resume)
        changes = {"train.steps": steps, "train.metrics": metrics}
        for item in devices:
            changes["train.device"] = item.partition("=")[2].strip()
        config = apply_overrides(config, {k: v for k, v in changes.items() if v is not None})
        run_dir = resume
    else:
        if model is None:
            raise UntwineError("name a model, e.g. `untwine train betavae` (see `untwine models`)")
        options = {"data.name": data, "data.path": data_path and str(data_path.resolve()),
                   "data.options": parse_options(data_options) or None,
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


DEVICE_KEYS = ("device", "train.device")


def parse_options(items: list[str] | None) -> dict[str, object]:
    """``--data-option key=value`` strings as keywords: true/false, integers and numbers as
    such, anything else as text."""
    options: dict[str, object] = {}
    for text in items or []:
        key, sep, value = (part.strip() for part in text.partition("="))
        if not sep or not key.isidentifier():
            raise UntwineError(f"--data-option expects key=value; got {text!r}")
        options[key] = _option_value(value)
    return options


def _option_value(value: str) -> object:
    """One option value; ``1,2,3`` or ``(1, 2, 3)`` is a tuple of values."""
    if "," in value:
        parts = value.strip("()[] ").split(",")
        return tuple(_option_value(part.strip()) for part in parts if part.strip())
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def picture_path(out: Path | None, default: Path) -> Path:
    """Where a picture goes: ``--out`` (a folder gets the default name inside it) or the
    default."""
    if out is None:
        return default
    return out / default.name if out.is_dir() else out


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
    from untwine.config import check_seed
    from untwine.pipeline import evaluate_run

    check_seed(seed)
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
    from untwine.config import check_seed
    from untwine.pipeline import load_run
    from untwine.viz.traversal import traversal_grid

    check_seed(seed)
    out = picture_path(out, run / "traversal.png")
    model, dataset = load_run(run)
    path = traversal_grid(model, dataset, out, seed=seed)
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
    samples: int = typer.Option(1500, help="Points per manifold (HLLE is O(N²) in memory)."),
    epochs: int = typer.Option(12, help="Autoencoder training epochs."),
    seed: int = typer.Option(0, help="Seed of the latents, nets and ICA."),
    seeds: str = typer.Option("", help="Comma-separated seeds (e.g. 0,1,2): mean ± std table."),
    manifolds: str = typer.Option(
        "", help="Comma-separated manifolds (default blob2d,blob3d,blob2dwarped; scenes: "
        "scene2d,scene3d,scenewarped)."
    ),
    methods: str = typer.Option(
        "", help="Comma-separated methods (default hlle,ae,irmae,vae,isoae)."
    ),
) -> None:
    """Hessian LLE + ICA vs AE, IRMAE, VAE and the local-isometry AE on image manifolds."""
    from untwine.experiments.isometry import (
        IsometryExperimentConfig,
        markdown_table,
        run_isometry_experiment,
        run_seeds,
        summary_table,
        write_outputs,
    )

    if out.exists() and not out.is_dir():
        raise UntwineError(f"{out} is a file, not a folder; pick a results folder with --out")
    options: dict = {"n_samples": samples, "epochs": epochs, "seed": seed}
    if manifolds:
        options["manifolds"] = tuple(m.strip() for m in manifolds.split(",") if m.strip())
    if methods:
        options["methods"] = tuple(m.strip() for m in methods.split(",") if m.strip())
    cfg = IsometryExperimentConfig(**options)
    if seeds:
        try:
            seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError as err:
            raise UntwineError(f"--seeds must be comma-separated integers; got {seeds!r}") from err
        report = run_seeds(cfg, seed_list)
        typer.echo(summary_table(report["results"]))
    else:
        report = run_isometry_experiment(cfg)
        typer.echo(markdown_table(report["results"]))
    paths = write_outputs(report, out)
    typer.echo(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")


@app.command("sweep")
def sweep_cmd(
    spec: Path = typer.Argument(..., help="Sweep spec (YAML), e.g. examples/sweep_tiny.yaml."),
    out: Path = typer.Option(..., "--out", help="Folder for the trials' run folders."),
    address: str = typer.Option(None, "--address", help="Ray cluster address (default: local)."),
    max_concurrent: int = typer.Option(
        None, "--max-concurrent", help="Trials at once (local default 1: one uses every core)."),
    cpus_per_trial: float = typer.Option(
        None, "--cpus-per-trial", help="CPUs (= torch threads) per trial."),
    gpus_per_trial: float = typer.Option(
        None, "--gpus-per-trial", help="GPUs per trial (default 1 when the cluster has GPUs)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the trials and stop."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress line."),
) -> None:
    """Run a study on Ray: every trial an ordinary run folder under --out.

    Finished trials are skipped when the sweep runs again, interrupted ones resume from their
    checkpoint, and a failing trial is retried once, then reported, not fatal.
    """
    from untwine.sweep import load_spec, run_sweep, summary_rows, trial_state

    plan = load_spec(spec)
    if dry_run:
        table = Table("trial", "state")
        for trial in plan.trials:
            table.add_row(trial.name, trial_state(trial, out / trial.name)[0])
        console.print(table)
        console.print(f"{len(plan.trials)} trials")
        return
    outcomes = run_sweep(plan, out, address=address, max_concurrent=max_concurrent,
                         cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                         quiet=quiet)
    table = Table("trial", "status", "seconds", "MIG", "DCI", "error")
    for row in summary_rows(outcomes, out):
        table.add_row(*row)
    console.print(table)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    shown = min(len(outcomes), 40)
    more = f" (table shows {shown}; all in {out / 'sweep.json'})" if shown < len(outcomes) else ""
    console.print(f"{counts['done']} done, {counts['skipped']} skipped (finished before), "
                  f"{counts['failed']} failed{more}. Report: untwine report {out} "
                  f"--out {out / 'report.html'}")
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    paths: list[Path] = typer.Argument(..., help="Run folders and/or folders of runs (sweeps)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML page to write."),
    max_thumbnails: int = typer.Option(200, help="Runs whose pictures are inlined."),
) -> None:
    """One self-contained HTML page over many runs, plus report.csv and report.json."""
    from untwine.viz.report import write_report

    written = write_report(paths, out, max_thumbnails=max_thumbnails)
    console.print(f"wrote {written['html']} ({written['csv'].name}, {written['json'].name} "
                  "beside it)")


def main() -> None:
    """Console entry point: user errors become one line (full traceback with --debug)."""
    try:
        app()
    except UntwineError as err:
        if _state["debug"]:
            raise
        _error(str(err))
        sys.exit(2)
    except (KeyboardInterrupt, _Stopped) as err:
        if _state["debug"]:
            raise
        _error(str(err) or "interrupted; files already written are kept (a run resumes with "
               "`untwine train --resume RUN`)")
        sys.exit(130)
    except OSError as err:  # a read or write the library did not anticipate
        if _state["debug"]:
            raise
        where = f"{err.filename}: " if err.filename else ""
        _error(f"{where}{err.strerror or err}; check the path and its permissions "
               "(--debug shows where it happened)")
        sys.exit(2)


def _error(message: str) -> None:
    """One line, ``error:`` in bold red, the message verbatim (no rich markup parsing)."""
    from rich.text import Text

    console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


if __name__ == "__main__":
    main()
