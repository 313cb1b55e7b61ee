"""The encoded-data cache and training on a sample of rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edas_agent.cli.app import app
from edas_agent.evaluators.tabular.cache import cache_key, cache_root, load_cached
from edas_agent.evaluators.tabular.data import DataSpec, load
from tests.conftest import make_table


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("EDAS_AGENT_CACHE_DIR", str(folder))
    return folder


def test_a_cached_table_is_read_back_mapped_and_equal_to_a_fresh_load(
    table_csv: Path, cache_dir: Path
):
    spec = DataSpec(path=str(table_csv), target="label", cache=True)
    first = load_cached(spec, 3)
    assert first.cached_at and Path(first.cached_at).parent == cache_dir == cache_root()
    again = load_cached(spec, 3)
    fresh = load(spec, 3)
    assert again.cached_at == first.cached_at
    maps = Path("/proc/self/maps")  # Linux: the entry's files are mapped, not read in
    if maps.exists():
        assert f"{again.cached_at}/train.categorical.npy" in maps.read_text()
    for cached, direct in ((again.train, fresh.train), (again.val, fresh.val)):
        assert torch.equal(cached.categorical, direct.categorical)
        assert torch.equal(cached.y, direct.y)
        assert all(torch.equal(cached.numeric[v], direct.numeric[v]) for v in direct.numeric)
    assert again.cardinalities == fresh.cardinalities and again.notes == fresh.notes
    assert len(list(cache_dir.iterdir())) == 1


def test_the_key_changes_with_the_file_the_settings_and_the_seed(table_csv: Path, cache_dir):
    spec = DataSpec(path=str(table_csv), target="label", cache=True)
    key = cache_key(spec, 0)
    assert cache_key(spec, 1) != key
    assert cache_key(spec.model_copy(update={"ignore": ["noise"]}), 0) != key
    assert cache_key(spec.model_copy(update={"sample_rows": 100}), 0) != key
    make_table(1300).to_csv(table_csv, index=False)  # the file changed
    os.utime(table_csv, ns=(1, 1))
    assert cache_key(spec, 0) != key


def test_small_tables_and_the_builtin_one_are_not_cached_unless_asked(table_csv: Path, cache_dir):
    assert cache_key(DataSpec(path=str(table_csv), target="label"), 0) is None
    assert cache_key(DataSpec(), 0) is None
    assert cache_key(DataSpec(path="synthetic:5000"), 0) is None
    assert cache_key(DataSpec(path="synthetic:2000000"), 0) is not None
    assert cache_key(DataSpec(path=str(table_csv), target="label", cache=False), 0) is None


def test_cache_list_and_clear(table_csv: Path, cache_dir: Path):
    load_cached(DataSpec(path=str(table_csv), target="label", cache=True), 0)
    runner = CliRunner()
    listed = runner.invoke(app, ["cache", "list"])
    assert listed.exit_code == 0 and "toy.csv-seed0-" in listed.output
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0 and "removed 1 entries" in cleared.output
    assert not any(cache_dir.iterdir())
    assert "is empty" in runner.invoke(app, ["cache", "list"]).output


def test_a_sample_of_the_training_rows_is_seeded_nested_and_leaves_validation_whole(
    table_csv: Path,
):
    whole = load(DataSpec(path=str(table_csv), target="label"), 2)
    small = load(DataSpec(path=str(table_csv), target="label", sample_rows=200), 2)
    larger = load(DataSpec(path=str(table_csv), target="label", sample_rows=400), 2)
    assert len(small.train) == 200 and len(larger.train) == 400 and len(whole.train) == 720
    assert torch.equal(small.val.y, whole.val.y) and torch.equal(small.test.y, whole.test.y)
    # The first 200 of the 400 are the 200 (numeric views are fitted on each sample)
    assert torch.equal(larger.train.y[:200], small.train.y)
    assert any("sample of 200 of the 720 training rows" in note for note in small.notes)
    unsampled = load(DataSpec(path=str(table_csv), target="label", sample_rows=5000), 2)
    assert not any("sample" in note for note in unsampled.notes)


def test_validation_and_test_can_be_sampled_too(table_csv: Path):
    whole = load(DataSpec(path=str(table_csv), target="label"), 2)
    judged = load(DataSpec(path=str(table_csv), target="label", sample_eval_rows=100), 2)
    assert len(judged.val) == len(judged.test) == 100 and len(judged.train) == len(whole.train)
    assert torch.equal(judged.val.y, whole.val.y[:100])
    assert any("samples of 100 validation and test rows" in note for note in judged.notes)


def test_a_cache_that_cannot_be_written_only_means_no_cache(table_csv: Path, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("EDAS_AGENT_CACHE_DIR", str(blocked / "cache"))
    data = load_cached(DataSpec(path=str(table_csv), target="label", cache=True), 0)
    assert data.cached_at is None and len(data.train) == 720
