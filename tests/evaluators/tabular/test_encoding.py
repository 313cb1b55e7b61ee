"""The encoded splits: ids and numeric columns written a column at a time, constant
columns squeezed out in place, numeric views computed from the stored values."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import torch

from edas_agent.evaluators.tabular.encoding import SplitArrays, _keep_columns
from edas_agent.evaluators.tabular.numeric import NUMERIC_VIEWS, NumericTransform


def _splits(rows: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(rows)
    return order[: rows // 2], order[rows // 2 : 3 * rows // 4], order[3 * rows // 4 :]


def test_numeric_views_are_computed_from_values_stored_as_narrow_as_exact():
    rng = np.random.default_rng(1)
    counts = rng.poisson(3, 4000).astype(np.float64)  # float32 holds these exactly
    amounts = rng.lognormal(size=4000)  # it does not hold these
    amounts[::9] = np.nan
    splits = _splits(4000)
    arrays = SplitArrays(splits, categorical=0, numeric=2)
    arrays.write_numeric(0, counts)
    arrays.write_numeric(1, amounts)
    train, val, _ = arrays.parts(np.zeros(4000, np.float32), [], [0, 1])
    assert [a.dtype for a in train.numeric.arrays] == [np.float32, np.float64]
    transform = NumericTransform.fit(amounts[splits[0]])
    for view in NUMERIC_VIEWS:
        expected = transform.apply(amounts[splits[1]], view)
        assert torch.equal(val.numeric[view][:, 1], torch.from_numpy(expected))
        assert val.numeric[view].dtype == torch.float32 and val.numeric[view].shape == (1000, 2)
    assert set(train.numeric) == set(NUMERIC_VIEWS) and len(train.numeric) == 3


def test_only_the_last_view_asked_for_is_kept():
    arrays = SplitArrays(_splits(100), categorical=0, numeric=1)
    arrays.write_numeric(0, np.arange(100, dtype=np.float64))
    train = arrays.parts(np.zeros(100, np.float32), [], [0])[0]
    standard = train.numeric["standard"]
    assert train.numeric["standard"] is standard  # kept: not computed twice in a row
    train.numeric["quantile"]
    again = train.numeric["standard"]
    assert again is not standard and torch.equal(again, standard)
    shipped = pickle.loads(pickle.dumps(train.numeric))  # as Ray ships the data
    assert shipped._last is None and torch.equal(shipped["standard"], standard)


def test_constant_columns_are_squeezed_out_in_place():
    rng = np.random.default_rng(2)
    array = rng.integers(0, 100, size=(20_000, 6)).astype(np.int32)
    expected = array[:, [0, 2, 5]].copy()
    squeezed = _keep_columns(array, [0, 2, 5])
    assert squeezed is array and np.array_equal(squeezed, expected)
    assert squeezed.flags.c_contiguous and squeezed.nbytes == expected.nbytes


def test_ids_are_written_into_their_slots():
    values = pd.Series(["b", "a", "b", None, "c", "b", "a", "d"] * 50)
    splits = _splits(400, seed=3)
    arrays = SplitArrays(splits, categorical=2, numeric=0)
    cardinality = arrays.write_categorical(1, values)
    train = arrays.parts(np.zeros(400, np.float32), [1], [])[0]
    assert train.categorical.shape == (200, 1) and cardinality == 6  # 5 values and id 0
    is_b = torch.tensor((values[splits[0]] == "b").to_numpy())
    b = train.categorical[:, 0][is_b]
    assert bool((b == 1).all())  # the most frequent value has id 1
