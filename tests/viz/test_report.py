"""The HTML report: self-contained (inline PNGs, nothing from the network), its tables carry the
runs' numbers, and headless Chromium renders the tables and the pictures."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from studyruns import write_run, write_study

from untwine.errors import UntwineError
from untwine.viz.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _images(page: str) -> list[Image.Image]:
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    return [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))) for s in sources]


def test_report_is_one_self_contained_page_with_tables_pictures_and_thumbnails(tmp_path):
    runs = write_study(tmp_path / "sweep")
    written = write_report([tmp_path / "sweep"], tmp_path / "out" / "report.html")
    page = written["html"].read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert page.count('<table id="configurations">') == 1 and 'table id="runs"' in page
    images = _images(page)
    assert len(images) == 2 + 2 * len(runs)  # two study pictures, two thumbnails per run
    thumbs = [im for im in images if im.width <= 360]
    assert {im.size for im in thumbs} == {(360, 240), (300, 120)}  # wide ones downscaled
    assert {"csv", "json", "scores", "ranks"} <= set(written)
    assert written["csv"].parent == tmp_path / "out"


def test_report_table_cells_show_each_configurations_mean_and_std(tmp_path):
    write_study(tmp_path / "sweep")
    written = write_report([tmp_path / "sweep"], tmp_path / "report.html")
    body = json.loads(written["json"].read_text())
    page = written["html"].read_text()
    for config in body["configurations"]:
        stats = config["scores"]["mig.discrete_mig"]
        assert f"{stats['mean']:.3f} ± {stats['std']:.3f}" in page


def test_few_runs_skip_the_rank_correlation_with_a_note(tmp_path):
    write_run(tmp_path / "runs", "betavae", 1.0, 0)
    written = write_report([tmp_path / "runs"], tmp_path / "report.html")
    assert "ranks" not in written
    assert "needs at least three evaluated runs" in written["html"].read_text()


def test_report_refuses_an_out_that_is_not_html(tmp_path):
    write_run(tmp_path / "runs", "betavae", 1.0, 0)
    with pytest.raises(UntwineError, match="must name an .html file"):
        write_report([tmp_path / "runs"], tmp_path / "report.png")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


def test_chromium_renders_the_tables_and_every_image(tmp_path):
    runs = write_study(tmp_path / "sweep")
    html_path = write_report([tmp_path / "sweep"], tmp_path / "report.html")["html"]
    dom = _chromium("--dump-dom", html_path.as_uri()).stdout
    configurations = dom.split('<table id="configurations">', 1)[1].split("</table>", 1)[0]
    assert configurations.count("<tr>") == 1 + 3  # header + three configurations
    table = dom.split('<table id="runs">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + len(runs)
    assert dom.count("data:image/png;base64,") == 2 + 2 * len(runs)

    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2200", html_path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2200, 1200)
    # the rank-correlation heat map (above the thumbnails): dark red cells of RdBu at ρ ≈ 1
    top = pixels[:1500]
    red = (top[..., 0] > 90) & (top[..., 1] < 80) & (top[..., 2] < 80)
    assert red.sum() > 2000
    # the run thumbnails (random colour noise) fill rows far below the tables
    noisy = np.abs(np.diff(pixels[1600:], axis=1)).sum(-1) > 60
    assert noisy.mean() > 0.05
