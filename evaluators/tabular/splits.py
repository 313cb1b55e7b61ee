"""Which rows train, validate and test: a seeded split (or the table's split column), and
the seeded samples of `data.sample_rows` and `data.sample_eval_rows`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from edas_agent.evaluators.tabular.columns import DataError
from edas_agent.evaluators.tabular.settings import DataSpec

Splits = tuple[np.ndarray, np.ndarray, np.ndarray]  # row indices of train, val, test

_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


def split_rows(rows: int, split_column: pd.Series | None, spec: DataSpec, seed: int) -> Splits:
    """Each split's rows, each in a seeded random order (so that its first rows are a
    seeded sample); from the split column's train / val / test when the table has one."""
    if split_column is not None:
        return _named_splits(split_column, spec)
    order = np.random.default_rng(seed).permutation(rows)
    n_val, n_test = round(rows * spec.val_fraction), round(rows * spec.test_fraction)
    if rows - n_val - n_test < 2 or min(n_val, n_test) < 2:
        raise DataError(
            f"{rows} rows are too few to split into train, validation and test with fractions "
            f"{spec.val_fraction:g} and {spec.test_fraction:g} (each split needs 2 rows); "
            "bring more rows"
        )
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def _named_splits(split_column: pd.Series, spec: DataSpec) -> Splits:
    names = split_column.astype("string").str.strip().str.lower()
    parts = names.map(_SPLIT_NAMES)
    if parts.isna().any():
        bad = sorted(set(names[parts.isna()].astype(str)))[:5]
        raise DataError(
            f"split column {spec.split_column!r} has values {bad}; use train, val, test"
        )
    parts = parts.to_numpy()
    train, val, test = (np.flatnonzero(parts == i) for i in range(3))
    if min(len(train), len(val), len(test)) < 2:
        raise DataError(f"split column {spec.split_column!r} leaves a split with fewer than 2 rows")
    return train, val, test


def sampled(spec: DataSpec, notes: list[str], splits: Splits, seed: int) -> Splits:
    """The splits cut to data.sample_rows (training) and data.sample_eval_rows (validation
    and test each), said in the notes: seeded samples, a larger one holding a smaller."""
    train_idx, val_idx, test_idx = splits
    judged = spec.sample_eval_rows
    judged_sampled = judged is not None and judged < max(len(val_idx), len(test_idx))
    if spec.sample_rows is not None and spec.sample_rows < len(train_idx):
        whole = "" if judged_sampled else "; validation and test are whole"
        notes.append(
            f"training on a sample of {spec.sample_rows:,} of the {len(train_idx):,} training "
            f"rows (data.sample_rows){whole}"
        )
        train_idx = _sample(train_idx, spec.sample_rows, spec, seed)
    if judged_sampled:
        notes.append(
            f"judging on samples of {judged:,} validation and test rows "
            f"(data.sample_eval_rows) of {len(val_idx):,} and {len(test_idx):,}"
        )
        val_idx, test_idx = (_sample(idx, judged, spec, seed) for idx in (val_idx, test_idx))
    return train_idx, val_idx, test_idx


def _sample(idx: np.ndarray, rows: int, spec: DataSpec, seed: int) -> np.ndarray:
    """The first rows of a seeded split are a seeded sample; a split column's splits are in
    the table's order (often time: their first rows would be the oldest), so those are
    drawn, in the table's order."""
    if spec.split_column is None:
        return idx[:rows]
    drawn = np.random.default_rng([seed, len(idx)]).permutation(len(idx))[:rows]
    return idx[np.sort(drawn)]
