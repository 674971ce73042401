import pytest

from untwine.data import DATASETS, load_dataset
from untwine.errors import UntwineError


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(UntwineError, match="known: .*dsprites"):
        load_dataset("nope")


def test_missing_file_names_the_official_file(tmp_path):
    with pytest.raises(UntwineError, match="no such file"):
        load_dataset("dsprites", path=tmp_path / "missing.npz")


def test_loader_only_datasets_ask_for_a_path():
    for name, entry in DATASETS.items():
        if entry.twin is None:
            with pytest.raises(UntwineError, match="no procedural twin"):
                load_dataset(name)


def test_names_are_forgiving_about_case_and_dashes():
    assert load_dataset("dSprites").name == load_dataset("d-sprites").name == "dsprites"
