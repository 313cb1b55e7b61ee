"""Which rows train, validate and test, and which of them a sample keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edas_agent.evaluators.tabular.columns import DataError
from edas_agent.evaluators.tabular.settings import DataSpec
from edas_agent.evaluators.tabular.splits import sampled, split_rows

SPEC = DataSpec(path="t.csv", target="y")


def test_a_seeded_split_covers_every_row_once_in_a_seeded_order():
    train, val, test = split_rows(1000, None, SPEC, seed=4)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1000))
    assert len(val) == len(test) == 200
    again = split_rows(1000, None, SPEC, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    with pytest.raises(DataError, match="too few"):
        split_rows(5, None, SPEC, seed=0)


def test_a_sample_of_a_split_columns_rows_is_drawn_not_the_first_rows():
    """A split column's splits are in the table's order (often time): a sample of them is
    a seeded draw over the whole split, nested, kept in the table's order."""
    column = pd.Series(["train"] * 800 + ["val"] * 100 + ["test"] * 100)
    spec = SPEC.model_copy(update={"split_column": "split", "sample_rows": 100})
    splits = split_rows(1000, column, spec, seed=1)
    notes: list[str] = []
    train, val, test = sampled(spec, notes, splits, seed=1)
    assert len(train) == 100 and train.max() > 400  # not the oldest 100 rows
    assert np.all(np.diff(train) > 0) and len(val) == len(test) == 100
    larger = sampled(spec.model_copy(update={"sample_rows": 300}), [], splits, seed=1)[0]
    assert set(train) <= set(larger)
    assert "sample of 100 of the 800 training rows" in notes[0]
