"""A Parquet file read and encoded a column at a time gives exactly what reading it whole
and preparing it gives: the same fields, ids, views, labels and notes, or the same
refusal. Every table shape of the catalogue is written as Parquet and loaded both ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from edas_agent.evaluators.tabular import parquet
from edas_agent.evaluators.tabular.data import DataError, DataSpec, EncodedDataset, load
from tests.evaluators.tabular.shapes import SHAPES, Shape


def _both_ways(spec: DataSpec, monkeypatch) -> tuple[EncodedDataset | str, EncodedDataset | str]:
    """(by column, whole), each a dataset or the refusal's message."""

    def attempt() -> EncodedDataset | str:
        try:
            return load(spec, seed=3)
        except DataError as exc:
            return str(exc)

    by_column = attempt()
    with monkeypatch.context() as patched:
        patched.setattr(parquet, "load_by_column", lambda *args: None)
        whole = attempt()
    return by_column, whole


def _assert_same(a: EncodedDataset | str, b: EncodedDataset | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    same = ("name", "task", "categorical_fields", "numeric_fields", "cardinalities",
            "classes", "target_mean", "target_std", "notes")  # fmt: skip
    for attribute in same:
        assert getattr(a, attribute) == getattr(b, attribute), attribute
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert x.categorical.shape == y.categorical.shape
        assert torch.equal(x.categorical, y.categorical) and torch.equal(x.y, y.y)
        assert all(torch.equal(x.numeric[v], y.numeric[v]) for v in x.numeric)


def _as_parquet(shape: Shape, folder: Path) -> Path | None:
    frame = None if shape.writer else shape.build()
    if shape.writer:
        return shape.write(folder) if shape.suffix == ".parquet" else None
    if frame is None or frame.empty:
        return None
    path = folder / "table.parquet"
    try:
        frame.to_parquet(path, index=False)
    except (ValueError, TypeError, pa.ArrowException):  # repeated names, mixed objects
        return None
    return path


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_every_shape_loads_by_column_as_it_loads_whole(shape: Shape, tmp_path: Path, monkeypatch):
    path = _as_parquet(shape, tmp_path)
    if path is None:
        pytest.skip("not a table Parquet holds")
    spec = DataSpec(path=str(path), target=shape.target, **shape.options)
    _assert_same(*_both_ways(spec, monkeypatch))


def _awkward_table(rows: int = 3000) -> pd.DataFrame:
    r = np.random.default_rng(0)
    amount = r.lognormal(size=rows)
    amount[::97] = np.inf
    frame = pd.DataFrame({
        "city": r.choice(["b", "a", "c", None], rows),
        "same_text": "x",  # constant: squeezed out of the encoded arrays
        "user": [f"u{i}" for i in range(rows)],  # an id: noted
        "count": r.poisson(3, rows).astype(float),  # float32 holds it exactly
        "amount": amount,  # infinities: missing
        "same_number": 7.0,
        "small_int": r.integers(0, 5, rows),
        "rare": [f"v{i}" for i in r.integers(0, 800, rows)],
        "part": r.choice(["train", "val", "test"], rows, p=[0.6, 0.2, 0.2]),
        "label": r.choice(["no", "yes", None], rows, p=[0.6, 0.35, 0.05]),
    })  # fmt: skip
    frame.loc[:5, "city"] = ["c", "c", "b", "a", None, "b"]
    return frame


def _write_in_row_groups(frame: pd.DataFrame, path: Path) -> None:
    """Row groups of 500 rows: Parquet stores each group's text with a dictionary of that
    group's own values, in its own order (the reader maps them onto one)."""
    schema = pa.Table.from_pandas(frame.head(1), preserve_index=False).schema
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(frame), 500):
            group = pa.Table.from_pandas(frame.iloc[start : start + 500], preserve_index=False)
            writer.write_table(group.cast(schema))


SETTINGS = [
    {},
    {"ignore": ["user"], "task": "binary"},
    {"categorical": ["small_int", "city"]},  # the other text columns: left out (not dates)
    {"numeric": ["count", "amount"]},
    {"categorical": ["rare"], "numeric": ["count"]},
    {"split_column": "part", "sample_rows": 700},
    {"sample_rows": 900, "sample_eval_rows": 300},
]


@pytest.mark.parametrize("options", SETTINGS, ids=lambda o: ",".join(o) or "inferred")
def test_awkward_columns_load_by_column_as_whole(options: dict, tmp_path: Path, monkeypatch):
    path = tmp_path / "awkward.parquet"
    _write_in_row_groups(_awkward_table(), path)
    spec = DataSpec(path=str(path), target="label", **options)
    by_column, whole = _both_ways(spec, monkeypatch)
    assert isinstance(by_column, EncodedDataset), by_column
    assert "same_text" not in by_column.categorical_fields
    assert parquet.load_by_column(path, spec, seed=3) is not None  # not the whole-table path
    _assert_same(by_column, whole)


def test_text_holding_dates_leaves_the_file_to_the_whole_table_path(tmp_path: Path):
    frame = _awkward_table().assign(day=lambda f: ["2024-01-0" + str(1 + i % 9) for i in f.index])
    path = tmp_path / "dates.parquet"
    frame.to_parquet(path)
    spec = DataSpec(path=str(path), target="label")
    assert parquet.load_by_column(path, spec, seed=3) is None
    assert "day.days" in load(spec, seed=3).numeric_fields


def test_columns_are_read_one_at_a_time_and_a_refusal_stops_the_rest(tmp_path: Path, monkeypatch):
    """A column that mixes numbers and text is refused as the whole-table path refuses it,
    before the columns after it are read."""
    frame = _awkward_table()
    frame["mostly_numbers"] = [str(i) for i in range(len(frame))]
    frame.loc[3, "mostly_numbers"] = "n/a"
    frame["after"] = frame["city"]
    path = tmp_path / "mixed.parquet"
    frame.to_parquet(path)
    read: list[str] = []
    for reader in ("_read_column", "_read_codes", "_read_numbers"):
        original = getattr(parquet, reader)
        monkeypatch.setattr(
            parquet, reader, lambda p, n, *rest, f=original: read.append(n) or f(p, n, *rest)
        )
    monkeypatch.setattr(parquet, "in_threads", lambda work, items: [work(i) for i in items])
    with pytest.raises(DataError, match="'mostly_numbers' mixes numbers and text"):
        load(DataSpec(path=str(path), target="label"), seed=0)
    assert "after" not in read and read.count("city") == 1
