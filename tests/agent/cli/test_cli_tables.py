"""Tables of shapes our other tests never use, through the command line end to end:
`run --budget 2` and `replay`, or exit code 2 with one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edas_agent.record import read_records
from tests.agent.cli.test_cli import invoke

ROWS = 600


def numeric_regression() -> pd.DataFrame:
    r = np.random.default_rng(0)
    x = r.normal(size=(ROWS, 8))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    return frame.assign(price=(x @ r.normal(size=8) + r.normal(size=ROWS)) * 1e5 + 3e6)


def categorical_multiclass_missing_targets() -> pd.DataFrame:
    r = np.random.default_rng(1)
    colour = r.choice(["red", "green", "blue", None], ROWS)
    shape = r.choice(["circle", "square", "star"], ROWS)
    kind = np.where(colour == "red", "a", np.where(shape == "star", "b", "c"))
    kind = np.where(r.random(ROWS) < 0.1, None, kind)
    return pd.DataFrame({"colour": colour, "shape": shape, "kind": kind})


def awkward_names() -> pd.DataFrame:
    r = np.random.default_rng(2)
    rows = {
        "city/region": r.choice([f"c{i}" for i in range(40)], ROWS),
        "a~b": r.choice(["x", "y", "z"], ROWS),
        "größe (cm)": r.normal(170, 10, ROWS),
    }
    frame = pd.DataFrame(rows)
    return frame.assign(label=np.where(frame["größe (cm)"] > 170, "yes", "no"))


@pytest.mark.parametrize(
    ("build", "target", "note"),
    [
        (numeric_regression, "price", "task 'regression' inferred"),
        (categorical_multiclass_missing_targets, "kind", "dropped 48 of 600 rows"),
        (awkward_names, "label", "task 'binary' inferred"),
    ],
    ids=["numeric-regression", "categorical-multiclass", "awkward-names"],
)
def test_run_and_replay_on_tables_of_other_shapes(
    build, target, note, monkeypatch, capsys, tmp_path: Path
):
    path = tmp_path / "table.csv"
    build().to_csv(path, index=False)
    runs = tmp_path / "runs"
    args = ["--data", str(path), "--target", target, "--runs-dir", str(runs)]
    code, out, err = invoke(monkeypatch, capsys, "run", "--budget", "2", *args)
    assert code == 0, out + err
    assert "note:" in err and note in err  # said on the console...
    (folder,) = runs.iterdir()
    baseline = read_records(folder)[0]
    assert any(note in n for n in baseline.notes)  # ...and kept in the run
    assert baseline.stats is not None and np.isfinite(baseline.stats.E_M)
    code, out, _ = invoke(monkeypatch, capsys, "replay", str(folder))
    assert code == 0 and "all agree" in out


def test_evaluate_json_stays_clean_when_loading_has_notes(monkeypatch, capsys, tmp_path: Path):
    path = tmp_path / "wide.csv"
    r = np.random.default_rng(3)
    x = r.normal(size=(ROWS, 74))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(74)])
    frame.assign(t=(x[:, :5].sum(axis=1) > 0).astype(int)).to_csv(path, index=False)
    code, out, err = invoke(
        monkeypatch, capsys, "evaluate", "--data", str(path), "--target", "t", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert np.isfinite(result["validation"]["E_M"]) and "task 'binary' inferred" in err


def test_a_table_that_cannot_be_used_exits_2_with_one_line(monkeypatch, capsys, tmp_path: Path):
    path = tmp_path / "nested.parquet"
    table = pa.table({"x": np.arange(ROWS, dtype=float), "y": np.arange(ROWS) % 2})
    pq.write_table(table.append_column("tags", pa.array([[1, 2]] * ROWS)), path)
    args = ["--data", str(path), "--target", "y", "--runs-dir", str(tmp_path / "runs")]
    code, out, err = invoke(monkeypatch, capsys, "run", "--budget", "2", *args)
    assert code == 2 and "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "'tags'" in lines[0]
    assert "--ignore tags" in lines[0]
    code, out, err = invoke(monkeypatch, capsys, "run", "--budget", "1", *args, "--ignore", "tags")
    assert code == 0, out + err
