from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from edas_agent.evaluators.tabular.data import DataError, DataSpec, load
from edas_agent.evaluators.tabular.parquet import read_whole
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
    frame.to_parquet(path)
    multi = load(DataSpec(path=str(path), target="kind"), 0)
    assert multi.task == "multiclass" and multi.n_outputs == 3
    regression = load(DataSpec(path=str(path), target="size"), 0)
    assert regression.task == "regression"
    # Statistics are on the standardised target (training split's mean and std), and the
    # conversion back to the target's own units is exact.
    parts = (regression.train, regression.val, regression.test)
    standardised = regression.labels(regression.train)
    assert abs(standardised.mean()) < 1e-5 and standardised.std() == pytest.approx(1, abs=1e-5)
    recovered = np.sort(
        np.concatenate([regression.original_units(regression.labels(p)) for p in parts])
    )
    assert np.allclose(recovered, np.sort(frame["size"].to_numpy()), atol=1e-5)


def test_parquet_text_columns_read_as_codes_encode_as_the_same_table_in_csv(tmp_path: Path):
    """The lean Parquet path (Arrow dictionaries, pandas categoricals, no string per row)
    gives exactly the tensors the CSV path gives: ids (frequency order, ties by first
    appearance, missing a category, unseen in training 0), numeric views and labels."""
    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame({
        "city": rng.choice(["b", "a", "c", "d"], n),  # ties broken by first appearance
        "rare": [f"v{i}" for i in rng.integers(0, 2000, n)],  # many seen only outside train
        "with_gaps": rng.choice(["x", "y", None], n),
        "day": rng.choice(["2024-01-03", "2024-02-10", "2024-03-21"], n),  # dates as text
        "count": rng.poisson(3, n).astype(float),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(size=n)),
        "label": rng.choice(["no", "yes"], n),
    })  # fmt: skip
    frame.loc[:5, "city"] = ["d", "c", "b", "a", "a", "b"]  # a stated first-appearance order
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    frame.to_csv(csv, index=False)
    stored = frame.set_index(pd.Index(rng.permutation(n) + 10))  # an index in the file
    # A dictionary in an order of its own, not first appearance: ties must not follow it
    values = sorted(frame["rare"].unique(), reverse=True)
    stored["rare"] = pd.Categorical(frame["rare"].to_numpy(), categories=values)
    stored.to_parquet(parquet)
    a = load(DataSpec(path=str(csv), target="label"), 5)
    b = load(DataSpec(path=str(parquet), target="label"), 5)
    assert a.categorical_fields == b.categorical_fields  # the index is not a feature
    assert "day.month" in b.categorical_fields and "day.days" in b.numeric_fields
    assert a.numeric_fields == b.numeric_fields and a.cardinalities == b.cardinalities
    assert a.classes == b.classes == ["no", "yes"]
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert x.categorical.dtype == torch.int32
        assert torch.equal(x.categorical, y.categorical) and torch.equal(x.y, y.y)
        assert all(torch.equal(x.numeric[v], y.numeric[v]) for v in x.numeric)
    assert (a.train.categorical[:, a.categorical_fields.index("rare")] > 0).all()
    assert (a.test.categorical[:, a.categorical_fields.index("rare")] == 0).any()
    # Counts are held as float32 until encoded (exactly: the tensors above are equal),
    # values float32 cannot hold exactly stay float64
    raw = read_whole(parquet)
    assert raw["count"].dtype == np.float32 and raw["amount"].dtype == np.float64


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
            DataSpec(path=_write(tmp_path, good.assign(label=[None] * 100)), target="label"),
            "has no values",
        ),
        (
            # Rows without a target are dropped (with a note); what remains is constant.
            DataSpec(path=_write(tmp_path, good.assign(label=[None] + ["a"] * 99)), target="label"),
            "constant",
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


def test_synthetic_generator_is_seeded_and_shaped():
    from edas_agent.evaluators.tabular.synthetic import SyntheticSpec, generate

    spec = SyntheticSpec(rows=5000, categorical=6, numeric=3, max_cardinality=500, seed=1)
    a, categorical, numeric = generate(spec)
    b, _, _ = generate(spec)
    c, _, _ = generate(spec.model_copy(update={"seed": 2}))
    assert a.equals(b) and not a.equals(c)
    assert categorical == [f"C{i}" for i in range(1, 7)] and numeric == ["I1", "I2", "I3"]
    assert 0.1 < a["label"].mean() < 0.45
    assert a["C1"].max() < 500 and (a["I1"] > 0).all()


def test_synthetic_data_loads_as_a_binary_task():
    data = load(DataSpec(path="synthetic:3000"), seed=0)
    assert data.task == "binary" and len(data.categorical_fields) == 26
    assert not any("inferred" in note for note in data.notes)  # nobody chose a target
    assert len(data.numeric_fields) == 13
    assert len(data.train) + len(data.val) + len(data.test) == 3000
    narrow = load(DataSpec(path="synthetic:500:9"), seed=0)
    assert (len(narrow.categorical_fields), len(narrow.numeric_fields)) == (6, 3)
    with pytest.raises(ValueError, match="synthetic:ROWS"):
        DataSpec(path="synthetic:many")


def test_csv_gz_reads_like_csv(tmp_path: Path):
    path = tmp_path / "t.csv.gz"
    make_table(300).to_csv(path, index=False)
    assert len(load(DataSpec(path=str(path), target="label"), 0).categorical_fields) == 2


def test_criteo_format(tmp_path: Path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(200):
        integers = ["" if rng.random() < 0.2 else str(rng.integers(0, 50)) for _ in range(13)]
        categories = [
            "" if rng.random() < 0.1 else f"{rng.integers(0, 2**31):08x}"[:8] for _ in range(26)
        ]
        lines.append("\t".join([str(int(i % 3 == 0)), *integers, *categories]))
    path = tmp_path / "day_0.txt"
    path.write_text("\n".join(lines) + "\n")
    data = load(DataSpec(path=f"criteo:{path}"), seed=0)
    assert data.task == "binary" and data.numeric_fields == [f"I{i}" for i in range(1, 14)]
    assert len(data.categorical_fields) == 26
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\t3\n0\t1\t1\n")
    with pytest.raises(DataError, match="Criteo format"):
        load(DataSpec(path=f"criteo:{bad}"), seed=0)


def test_avazu_format(tmp_path: Path):
    rng = np.random.default_rng(0)
    rows = {
        "id": range(300),
        "click": rng.integers(0, 2, 300),
        "hour": [f"1410{21 + i % 5:02d}{i % 24:02d}" for i in range(300)],
        "C1": rng.integers(1000, 1010, 300),
        "site_id": [f"s{rng.integers(0, 30)}" for _ in range(300)],
    }
    path = tmp_path / "train.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    data = load(DataSpec(path=f"avazu:{path}"), seed=0)
    assert set(data.categorical_fields) == {"C1", "site_id", "hour_of_day", "weekday"}
    assert data.numeric_fields == [] and data.task == "binary"


def test_a_split_column_decides_the_split(tmp_path: Path):
    frame = make_table(300)
    frame["part"] = ["train"] * 200 + ["val"] * 50 + ["Test"] * 50
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    data = load(DataSpec(path=str(path), target="label", split_column="part"), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (200, 50, 50)
    assert "part" not in data.categorical_fields
    frame["part"] = ["train"] * 299 + ["holdout"]
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="use train, val, test"):
        load(DataSpec(path=str(path), target="label", split_column="part"), seed=0)


def test_a_mostly_numeric_text_column_is_refused(tmp_path: Path):
    frame = make_table(200)
    frame["size"] = frame["size"].round(3).astype(str)
    frame.loc[7, "size"] = "oops"  # 'n/a' would already read as missing
    path = tmp_path / "m.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"mixes numbers and text .* e\.g\. 'oops'"):
        load(DataSpec(path=str(path), target="label"), seed=0)
    # Declaring the column's role is the way out.
    data = load(
        DataSpec(path=str(path), target="label", categorical=["colour", "shape", "size"]), 0
    )
    assert "size" in data.categorical_fields


def test_categories_unseen_in_training_map_to_zero(tmp_path: Path):
    frame = make_table(400)
    frame["part"] = ["train"] * 300 + ["val"] * 50 + ["test"] * 50
    frame.loc[350:, "colour"] = "ultraviolet"  # only in the test split
    path = tmp_path / "u.csv"
    frame.to_csv(path, index=False)
    data = load(DataSpec(path=str(path), target="label", split_column="part"), seed=0)
    column = data.categorical_fields.index("colour")
    assert (data.test.categorical[:, column] == 0).all()
    assert (data.train.categorical[:, column] > 0).all()
