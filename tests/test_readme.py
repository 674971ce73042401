"""The README's Python examples run as written (the blocks after ``<!-- readme-test -->``), and
the commands CI reads from it are there."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from untwine.data.registry import DATASETS
from untwine.models.base import MODELS

README = Path(__file__).parents[1] / "README.md"


def blocks() -> list[str]:
    text = README.read_text()
    return re.findall(r"<!-- readme-test -->\n```python\n(.*?)```", text, flags=re.S)


def test_the_readme_marks_its_own_model_and_dataset_examples():
    found = blocks()
    assert len(found) == 2
    assert any("register_model" in b for b in found) and any("register_twin" in b for b in found)


@pytest.mark.parametrize("index", [0, 1])
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved_models, saved_data = dict(MODELS), dict(DATASETS)
    try:
        module = types.ModuleType(f"readme_example_{index}")
        monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look it up
        namespace = module.__dict__
        exec(compile(blocks()[index], f"README block {index}", "exec"), namespace)
    finally:
        MODELS.clear()
        MODELS.update(saved_models)
        DATASETS.clear()
        DATASETS.update(saved_data)
    result = namespace["result"]
    assert not result.interrupted and (tmp_path / "runs").is_dir()
    if "scores" in namespace:
        assert 0.0 <= namespace["scores"]["metrics"]["mig"]["discrete_mig"] <= 1.0
    if "model" in namespace:
        assert not namespace["model"].training


def test_ci_setup_and_test_commands_are_one_line_each():
    text = README.read_text()
    for marker in ("ci:setup", "ci:test"):
        command = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)\n```", text).group(1)
        assert "\n" not in command and "pip install torch==2.13.0 -e" in command
