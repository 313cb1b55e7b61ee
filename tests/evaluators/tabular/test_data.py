from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluators.tabular.data import DataError, DataSpec, load
from tests.conftest import make_table


def test_builtin_adult_loads_without_the_shared_folder():
    data = load(DataSpec(), seed=0)
    assert data.name == "adult" and data.task == "binary"
    assert data.classes == ["<=50K", ">50K"]
    assert len(data.train) + len(data.val) + len(data.test) == 48_842
    assert len(data.categorical_fields) == 8 and len(data.numeric_fields) == 6
    assert 0.2 < float(data.train.y.mean()) < 0.3


def test_split_depends_on_the_seed_only(table_csv: Path):
    spec = DataSpec(path=str(table_csv), target="label")
    a, b, c = load(spec, 1), load(spec, 1), load(spec, 2)
    assert np.array_equal(a.val.y.numpy(), b.val.y.numpy())
    assert not np.array_equal(a.val.categorical.numpy(), c.val.categorical.numpy())


def test_inference_of_columns_and_task(table_csv: Path):
    data = load(DataSpec(path=str(table_csv), target="label"), 0)
    assert data.categorical_fields == ["colour", "shape"]
    assert data.numeric_fields == ["size", "weight", "noise"]
    assert data.task == "binary" and data.n_outputs == 1


def test_multiclass_and_regression(tmp_path: Path):
    frame = make_table(600)
    frame["kind"] = np.random.default_rng(0).choice(["a", "b", "c"], 600)
    path = tmp_path / "t.parquet"
    try:
        frame.to_parquet(path)
    except ImportError:
        path = tmp_path / "t.csv.gz"
        frame.to_csv(path, index=False)
    multi = load(DataSpec(path=str(path), target="kind"), 0)
    assert multi.task == "multiclass" and multi.n_outputs == 3
    regression = load(DataSpec(path=str(path), target="size"), 0)
    assert regression.task == "regression"
    # Trained standardised, reported in the target's own units.
    parts = (regression.train, regression.val, regression.test)
    recovered = np.sort(np.concatenate([regression.labels(p) for p in parts]))
    assert np.allclose(recovered, np.sort(frame["size"].to_numpy()), atol=1e-5)


def _write(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}.csv"  # one file per case
    frame.to_csv(path, index=False)
    return str(path)


def test_bad_files_get_clear_errors(tmp_path: Path):
    good = make_table(100)
    cases = [
        (DataSpec(path=str(tmp_path / "missing.csv"), target="label"), "not found"),
        (
            DataSpec(path=_write(tmp_path, good), target="income"),
            "target column 'income' not in the data",
        ),
        (DataSpec(path=_write(tmp_path, good.assign(label="yes")), target="label"), "constant"),
        (
            DataSpec(path=_write(tmp_path, good.assign(label=[None] + ["a"] * 99)), target="label"),
            "missing values",
        ),
        (DataSpec(path=_write(tmp_path, good), target="label", numeric=["colour"]), "non-numeric"),
        (
            DataSpec(path=_write(tmp_path, good), target="label", categorical=["flavour"]),
            "unknown feature columns",
        ),
    ]
    for spec, message in cases:
        with pytest.raises(DataError, match=message):
            load(spec, 0)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="cannot read"):
        load(DataSpec(path=str(empty), target="label"), 0)
