"""One self-contained HTML page over many runs: the study's tables, its pictures and each run's
traversal and reconstruction thumbnails. Every image is inlined as a base64 PNG and the page
loads nothing from the network, so it can be mailed or archived as one file.

The pictures follow the reference study (Locatello et al., ICML 2019): the distribution of each
score per model and hyper-parameter (its Fig. 3, box plots over seeds), and the Spearman rank
correlation between the scores over all runs (its Fig. 2).
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from untwine.aggregate import Study, collect, write_tables
from untwine.errors import UntwineError
from untwine.viz.figures import save, subplots

THUMB_WIDTH = 360
"""Pixel width of each run's inlined traversal / reconstruction thumbnail."""


def write_report(
    paths: list[str | Path], out: str | Path = "report.html", max_thumbnails: int = 200
) -> dict[str, Path]:
    """Collect the runs under ``paths`` and write ``out`` (HTML) with ``.csv`` / ``.json`` and
    the two study pictures (``_scores.png``, ``_rank_correlation.png``) beside it.

    Returns the paths written, by kind (``html``, ``csv``, ``json``, ``scores``, ``ranks``).
    """
    from untwine.runs import atomic_write_text

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UntwineError(f"--out must name an .html file; got {out}")
    study = collect(paths)
    if not study.runs:
        raise UntwineError(f"no run folders under {', '.join(map(str, paths))}")
    stem = out.with_suffix("")
    csv_path, json_path = write_tables(study, out.parent, stem.name)
    written = {"csv": csv_path, "json": json_path}
    scores_png = score_distributions(study, stem.parent / f"{stem.name}_scores.png")
    ranks_png = rank_correlation(study, stem.parent / f"{stem.name}_rank_correlation.png")
    written.update({k: v for k, v in (("scores", scores_png), ("ranks", ranks_png)) if v})
    page = render_html(study, paths, scores_png, ranks_png, max_thumbnails)
    written["html"] = atomic_write_text(out, page)
    return written


# -- pictures ---------------------------------------------------------------------------------


def _plotted(study: Study) -> list[str]:
    """The headline scores the runs have (all scores when none of the headline ones)."""
    from untwine.aggregate import HEADLINE

    keys = [k for k in study.score_keys if k in HEADLINE]
    return keys or study.score_keys[:8]


def score_distributions(study: Study, out: Path) -> Path | None:
    """One panel per score: a box over seeds per configuration, grouped and coloured by model."""
    keys = _plotted(study)
    configs = sorted(study.configurations(), key=_config_order)
    if not keys or not configs:
        return None
    colours = _model_colours(configs)
    cols = 2 if len(configs) <= 12 and len(keys) > 1 else 1
    rows = math.ceil(len(keys) / cols)
    width = max(6.0, 0.42 * len(configs) + 2.0) * (0.75 if cols == 2 else 1.0)
    fig, axes = subplots(rows, cols, figsize=(width * cols, 1.9 * rows + 1.6), squeeze=False)
    by_name = {r.name: r for r in study.runs}
    for index, ax in enumerate(axes.flat):
        if index >= len(keys):
            ax.set_visible(False)
            continue
        key = keys[index]
        for x, config in enumerate(configs):
            values = [by_name[n].scores[key] for n in config["runs"] if key in by_name[n].scores]
            if not values:
                continue
            colour = colours[config.get("model")]
            ax.boxplot([values], positions=[x], widths=0.6, patch_artist=True, showfliers=False,
                       boxprops={"facecolor": colour, "alpha": 0.35},
                       medianprops={"color": colour})
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), values, s=10, color=colour, zorder=3)
        ax.set_title(key, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_xlim(-0.6, len(configs) - 0.4)
        ax.set_xticks(range(len(configs)))
        bottom = index + cols >= len(keys)
        ax.set_xticklabels([_tick_label(c) for c in configs] if bottom else [],
                           rotation=90, fontsize=7)
    fig.suptitle("score per configuration (box: spread over seeds; dots: seeds)", fontsize=10)
    return save(fig, out, dpi=90)


def _config_order(config: dict[str, Any]) -> tuple:
    rest = tuple(
        (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
        for k, v in config.items()
        if k not in ("model", "label", "seeds", "runs", "scores")
    )
    return (str(config.get("model")), rest)


def _tick_label(config: dict[str, Any]) -> str:
    return config["label"]


def _model_colours(configs: list[dict[str, Any]]) -> dict[Any, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    models = sorted({str(c.get("model")) for c in configs})
    return {m: cmap(i % 10) for i, m in enumerate(models)}


def rank_correlation(study: Study, out: Path) -> Path | None:
    """Spearman rank correlation between the scores over every evaluated run (≥ 3 runs)."""
    from scipy.stats import spearmanr

    keys = _plotted(study)
    runs = [r for r in study.runs if all(k in r.scores for k in keys)]
    if len(keys) < 2 or len(runs) < 3:
        return None
    table = np.array([[float(r.scores[k]) for k in keys] for r in runs])
    rho = np.full((len(keys), len(keys)), np.nan)
    for i in range(len(keys)):
        for j in range(len(keys)):
            a, b = table[:, i], table[:, j]
            if np.ptp(a) > 0 and np.ptp(b) > 0:
                rho[i, j] = spearmanr(a, b).statistic
    size = 1.0 + 0.75 * len(keys)
    fig, ax = subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rho, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(keys)):
        for j in range(len(keys)):
            text = "n/a" if np.isnan(rho[i, j]) else f"{rho[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    families = [k.split(".", 1)[0] for k in keys]
    labels = [f if families.count(f) == 1 else k for f, k in zip(families, keys, strict=True)]
    ax.set_xticks(range(len(keys)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(keys)), labels, fontsize=8)
    ax.set_title(f"Spearman rank correlation over {len(runs)} runs", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save(fig, out, dpi=90)


# -- the page ---------------------------------------------------------------------------------


def _png_data(path: Path, width: int | None = None) -> str:
    """``data:image/png;base64,…`` of a PNG, downscaled to ``width`` pixels when wider."""
    from PIL import Image

    if width is None:
        raw = path.read_bytes()
    else:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.width > width:
                height = max(1, round(image.height * width / image.width))
                image = image.resize((width, height), Image.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            raw = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return html.escape(str(value))


def _mean_std(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return ""
    if stats["std"] is None:
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _table(table_id: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def render_html(
    study: Study,
    paths: list[str | Path],
    scores_png: Path | None,
    ranks_png: Path | None,
    max_thumbnails: int = 200,
) -> str:
    """The report page as one HTML string (inline CSS, inline base64 PNGs, no scripts)."""
    configs = sorted(study.configurations(), key=_config_order)
    done = sum(r.status == "done" for r in study.runs)
    parts = [
        "<h1>untwine study report</h1>",
        f"<p class='meta'>{len(study.runs)} runs ({done} evaluated) in {len(configs)} "
        f"configurations, from {html.escape(', '.join(map(str, paths)))}; written "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</p>",
        "<h2>Configurations: mean ± std over seeds</h2>",
        "<p class='meta'>std is the sample standard deviation (ddof = 1); one seed shows its "
        "value alone. report.csv / report.json hold the same numbers unrounded.</p>",
        _table(
            "configurations",
            [*study.setting_keys, "seeds", *study.score_keys],
            [
                [_cell(c.get(k)) for k in study.setting_keys]
                + [_cell(c["seeds"])]
                + [_mean_std(c["scores"][k]) for k in study.score_keys]
                for c in configs
            ],
        ),
    ]
    for title, png, kind in (
        ("Score distribution per model and hyper-parameter", scores_png, "scores"),
        ("Rank correlation between metrics", ranks_png, "ranks"),
    ):
        parts.append(f"<h2>{title}</h2>")
        if png is None:
            parts.append("<p class='meta'>needs at least three evaluated runs.</p>")
        else:
            parts.append(f'<img class="study" data-kind="{kind}" alt="{title}" '
                         f'src="{_png_data(png)}">')
    rows = study.run_rows()
    header = list(rows[0]) if rows else []
    parts += ["<h2>Runs</h2>", _table("runs", header, [[_cell(r[k]) for k in header]
                                                        for r in rows])]
    if study.failed:
        parts.append("<h2>Failed trials</h2>")
        parts.append(_table("failed", ["trial", "error"], [
            [html.escape(str(t.get("name"))), html.escape(str(t.get("error")))]
            for t in study.failed
        ]))
    parts.append("<h2>Traversals and reconstructions</h2>")
    shown = 0
    for run in study.runs:
        pictures = [(k, run.run_dir / f"{k}.png") for k in ("traversal", "reconstructions")]
        pictures = [(k, p) for k, p in pictures if p.exists()]
        if not pictures:
            continue
        if shown == max_thumbnails:
            parts.append(f"<p class='meta'>thumbnails of the first {max_thumbnails} runs only.</p>")
            break
        shown += 1
        settings = " ".join(f"{k}={_cell(v)}" for k, v in run.settings.items())
        figures = "".join(
            f'<figure><img class="thumb" data-kind="{k}" alt="{k} of {html.escape(run.name)}" '
            f'src="{_png_data(p, THUMB_WIDTH)}"><figcaption>{k}</figcaption></figure>'
            for k, p in pictures
        )
        parts.append(f'<div class="run"><h3>{html.escape(run.name)}</h3>'
                     f"<p class='meta'>{settings} seed={run.seed}</p>{figures}</div>")
    return _PAGE.format(body="\n".join(parts))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>untwine study report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} h2 {{ margin-top: 1.6em; border-bottom: 1px solid #ccc; }}
.meta {{ color: #666; font-size: 0.9em; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 0.8em; }}
th, td {{ border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }}
th {{ background: #f3f3f3; position: sticky; top: 0; }}
tbody tr:nth-child(even) {{ background: #fafafa; }}
img.study {{ max-width: 100%; }}
.run {{ display: inline-block; vertical-align: top; margin: 0 1.5em 1em 0; }}
.run h3 {{ margin: 0.3em 0 0 0; font-size: 0.95em; }}
figure {{ display: inline-block; margin: 0.3em 0.6em 0 0; }}
figcaption {{ font-size: 0.8em; color: #666; }}
</style></head>
<body>
{body}
</body></html>
"""
