"""Every table shape a user can bring either trains with finite statistics, or is refused
with one line naming the file, the column and what to do.

Each shape goes through the real path: written to a file, `load`, then two learners of a
small architecture trained and scored as the gate scores them. A property test throws
random small tables at `load` for the shapes nobody listed.
"""

from __future__ import annotations

import re
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edas_agent.evaluators.tabular.data import DataError, DataSpec, load
from edas_agent.evaluators.tabular.evaluator import EvaluatorSettings, TabularEvaluator
from edas_agent.theory.gate import statistics
from tests.evaluators.tabular.shapes import FAST, SHAPES, Shape, rng


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_every_shape_trains_or_is_refused_in_one_line(shape: Shape, tmp_path: Path):
    path = shape.write(tmp_path)
    spec = DataSpec(path=str(path), target=shape.target, **shape.options)
    if shape.refused:
        with pytest.raises(DataError, match=shape.refused) as refusal:
            load(spec, seed=0)
        message = str(refusal.value)
        assert "\n" not in message and str(path) in message
        return
    data = load(spec, seed=0)
    if shape.task:
        assert data.task == shape.task
    if shape.note:
        assert any(re.search(shape.note, n) for n in data.notes), data.notes
    evaluator = TabularEvaluator.from_data(data, EvaluatorSettings(device="cpu"), seed=0)
    architecture = evaluator.parse(FAST.document())
    evaluation = evaluator.evaluate(architecture, learners=2)
    for predictions, y in (
        (evaluation.val_predictions, evaluator.y_val),
        (evaluation.test_predictions, evaluator.y_test),
    ):
        stats = statistics(predictions, y, members=50)
        values = [stats.E, stats.D, stats.sigma2, stats.rho, stats.E_M]
        assert np.isfinite(values).all(), stats
    if data.task == "regression":
        # The statistics' scale is the standardised target, whatever the target's units.
        assert abs(float(np.mean(evaluator.y_val))) < 2 and 0 < stats.E < 10


# Column kinds for the property test: each draws one column of a given length.
def _column(kind: str, rows: int, r: np.random.Generator) -> pd.Series:
    with_gaps = r.random(rows) < 0.3
    columns = {
        "float": lambda: pd.Series(r.normal(size=rows)).mask(with_gaps),
        "inf": lambda: pd.Series(r.choice([1.0, -np.inf, np.inf, 2.0], rows)),
        "int": lambda: pd.Series(r.integers(0, 5, rows)),
        "bool": lambda: pd.Series(r.random(rows) < 0.5),
        "text": lambda: pd.Series(r.choice(["a", "b", "c"], rows)).mask(with_gaps),
        "constant": lambda: pd.Series(["same"] * rows),
        "empty": lambda: pd.Series([np.nan] * rows),
        "date": lambda: pd.Series(pd.to_datetime(r.integers(0, 9, rows), unit="D")),
        "mixed": lambda: pd.Series([1, "x", 2.5, None][i % 4] for i in range(rows)),
    }  # fmt: skip
    return columns[kind]()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(0, 40),
    kinds=st.lists(
        st.sampled_from(
            ["float", "inf", "int", "bool", "text", "constant", "empty", "date", "mixed"]
        ),
        min_size=1,
        max_size=5,
    ),
    target=st.sampled_from(["float", "int", "bool", "text", "inf", "constant", "empty"]),
    names=st.lists(st.text(string.ascii_letters + " /~é.-", min_size=1, max_size=6), min_size=6),
    parquet=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_tables_load_or_are_refused_in_one_line(rows, kinds, target, names, parquet, seed):
    r = rng(seed)
    frame = pd.DataFrame(
        {f"{names[i]}{i}": _column(kind, rows, r) for i, kind in enumerate(kinds)}
    ).assign(target=_column(target, rows, r))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("t.parquet" if parquet else "t.csv")
        if parquet:
            frame.astype({c: str for c in frame if frame[c].dtype == object}).to_parquet(path)
        else:
            frame.to_csv(path, index=False)
        try:
            data = load(DataSpec(path=str(path), target="target"), seed=0)
        except DataError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            return
    for part in (data.train, data.val, data.test):
        assert len(part) >= 2
        assert all(bool(v.isfinite().all()) for v in part.numeric.values())
        assert bool(part.y.float().isfinite().all())
        assert part.categorical.shape[1] == len(data.categorical_fields)


def test_awkward_field_names_reach_the_prompt_as_json_pointer_tokens(tmp_path: Path):
    from edas_agent.proposers.edits import Edit, apply_edits

    (shape,) = [s for s in SHAPES if s.name == "awkward-names"]
    data = load(DataSpec(path=str(shape.write(tmp_path)), target="y"), seed=0)
    evaluator = TabularEvaluator.from_data(data, EvaluatorSettings(device="cpu"), seed=0)
    assert evaluator.describe()["field_path_tokens"] == {"a/b": "a~1b", "t~1": "t~01"}
    edit = Edit(op="add", path="/embeddings/per_field/a~1b", value=16)
    edited = evaluator.parse(apply_edits(FAST.document(), [edit]))
    assert edited.embeddings.per_field == {"a/b": 16}
    assert np.isfinite(evaluator.evaluate(edited, learners=2).val_predictions).all()
