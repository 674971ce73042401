"""The `untwine` command line: thin wrappers that parse, call library functions and print."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from untwine.errors import UntwineError

app = typer.Typer(
    help="Unsupervised disentanglement: train, evaluate, traverse, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="List the datasets and draw their factors.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
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


def main() -> None:
    """Console entry point: user errors become one line (full traceback with --debug)."""
    try:
        app()
    except UntwineError as err:
        if _state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(2)
