"""Encoding a prepared table into tensors: category ids, numeric views, labels.

Encodings are fitted on the training split only, so validation and test statistics are
honest. Ids rank each categorical column's values by training frequency (1 = most
frequent, ties by first appearance in the table, 0 = never seen in training; missing is a
category of its own). Numeric columns get three float32 views (standardised,
log-standardised, quantile), missing values the training median. Regression targets are
standardised (data.py's docstring says why). Columns are encoded column by column, in
threads, each freed from the frame as soon as it is done, so a large table is never held
twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from edas_agent.evaluators.base import Task
from edas_agent.evaluators.tabular.columns import Prepared

T, R = TypeVar("T"), TypeVar("R")


@dataclass(frozen=True)
class Part:
    """One encoded split. `numeric` holds one tensor per numeric transform."""

    categorical: torch.Tensor  # (n, n_categorical) int32 ids, 0 = unseen in training
    numeric: dict[str, torch.Tensor]  # standard, log_standard, quantile -> (n, n_numeric)
    y: torch.Tensor  # binary: float {0,1}; multiclass: int64 class ids; regression: standardised

    def __len__(self) -> int:
        return self.y.shape[0]


@dataclass(frozen=True)
class EncodedDataset:
    name: str
    task: Task
    categorical_fields: list[str]
    numeric_fields: list[str]
    cardinalities: list[int]  # per categorical field, including id 0
    classes: list[str]  # class labels (binary: [negative, positive]); empty for regression
    target_mean: float  # regression targets are standardised with these (training split);
    target_std: float  # statistics are on that scale (module docstring)
    train: Part
    val: Part
    test: Part
    notes: tuple[str, ...] = ()  # what loading did to the table that the user should know
    cached_at: str | None = None  # the encoded-data cache entry it was read from or saved to

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1

    def labels(self, part: Part) -> np.ndarray:
        """Targets on the scale the statistics are computed on (regression: standardised)."""
        return part.y.numpy()

    def original_units(self, values: np.ndarray) -> np.ndarray:
        """Regression values on the statistics' scale, in the target's own units."""
        return np.asarray(values, dtype=np.float64) * self.target_std + self.target_mean


def encode(
    prepared: Prepared,
    name: str,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    test_idx: np.ndarray,
) -> EncodedDataset:
    """Each column is encoded, written into the three splits and dropped from the frame
    before the next: the peak is the frame plus the encoded splits, never two copies of
    the encoded table."""
    frame, task = prepared.frame, prepared.task
    splits = (train_idx, val_idx, test_idx)
    y, classes, mean, std = _encode_target(frame.pop(prepared.target), task, train_idx)
    popped = (frame.pop(column) for column in prepared.categorical)
    fields = _in_threads(lambda values: _category_ids(values, train_idx), popped)
    categorical = [_gather_ids(fields, idx) for idx in splits]
    cardinalities = [field.cardinality for field in fields]
    del fields
    numeric = _numeric_parts(frame, prepared.numeric, splits)

    def part(i: int) -> Part:
        return Part(
            categorical=torch.from_numpy(categorical[i]),
            numeric={view: torch.from_numpy(numeric[view][i]) for view in NUMERIC_VIEWS},
            y=torch.from_numpy(y[splits[i]]),
        )

    return EncodedDataset(
        name=name,
        task=task,
        categorical_fields=prepared.categorical,
        numeric_fields=prepared.numeric,
        cardinalities=cardinalities,
        classes=classes,
        target_mean=mean,
        target_std=std,
        train=part(0),
        val=part(1),
        test=part(2),
        notes=tuple(prepared.notes),
    )


NUMERIC_VIEWS = ("standard", "log_standard", "quantile")


@dataclass(frozen=True)
class _Field:
    """A categorical column's codes (missing is the last code) and each code's id."""

    codes: np.ndarray  # per row, in the smallest integer type that holds them
    id_of_code: np.ndarray  # int32; 0 for a code never seen in training
    cardinality: int  # ids in use, with id 0


def _category_ids(values: pd.Series, train_idx: np.ndarray) -> _Field:
    """Ids by training frequency (1 = most frequent, ties by first appearance in the
    table); 0 for a value never seen in training. Missing values form one category of
    their own, last among ties."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # codes in the dictionary's order
        raw = values.cat.codes.to_numpy()
        n_values = len(values.cat.categories)
        present = np.flatnonzero(raw >= 0)
        first = np.full(n_values + 1, len(raw), dtype=np.int64)
        np.minimum.at(first, raw[present], present)
    else:  # codes in order of first appearance
        raw, uniques = pd.factorize(values, use_na_sentinel=True)
        n_values = len(uniques)
        first = np.arange(n_values + 1)
    first[n_values] = len(raw)  # missing: after every value seen
    codes = np.where(raw < 0, n_values, raw).astype(np.min_scalar_type(n_values))
    counts = np.bincount(codes[train_idx], minlength=n_values + 1)
    order = np.lexsort((first, -counts))  # most frequent first, then first seen
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(1, len(order) + 1)
    id_of_code = np.where(counts > 0, rank, 0).astype(np.int32)
    return _Field(codes, id_of_code, int((counts > 0).sum()) + 1)


_BLOCK_ROWS = 8192


def _gather_ids(fields: list[_Field], idx: np.ndarray) -> np.ndarray:
    """The (rows, fields) int32 ids of the rows `idx`, a block of rows at a time: a
    block's columns are gathered in a small array that is then copied whole, not
    millions of writes one cell apart in a large one."""
    out = np.empty((len(idx), len(fields)), dtype=np.int32)
    if not fields:
        return out
    for start in range(0, len(idx), _BLOCK_ROWS):
        rows = idx[start : start + _BLOCK_ROWS]
        out[start : start + len(rows)] = np.column_stack(
            [field.id_of_code[field.codes[rows]] for field in fields]
        )
    return out


def _numeric_parts(
    frame: pd.DataFrame, columns: list[str], splits: tuple[np.ndarray, ...]
) -> dict[str, list[np.ndarray]]:
    """Each view's (rows, columns) float32 array per split, popping the columns from the
    frame. Column-major while filling, so that writing a column touches only its own
    memory as the frame's column is freed; each array turned row-major at the end, one at
    a time."""
    numeric = {
        view: [np.empty((len(columns), len(idx)), np.float32) for idx in splits]
        for view in NUMERIC_VIEWS
    }

    def fill(column: tuple[int, pd.Series]) -> None:  # row j of every view: its own memory
        j, values = column[0], column[1].to_numpy()
        views = _NumericViews.fit(values[splits[0]].astype(np.float64))
        for i, idx in enumerate(splits):
            for start in range(0, len(idx), _CHUNK_ROWS):  # float64 temporaries stay small
                rows = slice(start, start + _CHUNK_ROWS)
                encoded = views.apply(values[idx[rows]].astype(np.float64))
                for view in NUMERIC_VIEWS:
                    numeric[view][i][j, rows] = encoded[view]

    _in_threads(fill, ((j, frame.pop(column)) for j, column in enumerate(columns)))
    for parts in numeric.values():
        for i, columns_first in enumerate(parts):
            parts[i] = np.ascontiguousarray(columns_first.T)
    return numeric


_CHUNK_ROWS = 1 << 20


def _in_threads(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item on all cores, results in order. numpy's sorting, searching
    and indexing release the GIL, so columns encode in parallel; each item (a column
    popped from the frame) is released as soon as its work is done."""
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return list(pool.map(work, items))


@dataclass(frozen=True)
class _NumericViews:
    """One numeric column's transforms, fitted on the training split: missing values take
    the training median (0 when the training split has none: the column still varies
    elsewhere, or columns.py would have left it out); `standard` and `log_standard` are
    standardised with the training mean and standard deviation; `quantile` is each value's
    position in the training distribution, in [0, 1) (bucket b of B holds quantiles
    [b/B, (b+1)/B), so any bucket count is one multiplication away), looked up in the
    distinct training values (few for counts and codes: a fast search). Applied to any
    rows, a chunk at a time: the same values whatever the chunks."""

    median: float
    mean: float
    std: float
    log_mean: float
    log_std: float
    distinct: np.ndarray
    at_most: np.ndarray  # training values <= distinct[i - 1]
    train_rows: int

    @classmethod
    def fit(cls, train: np.ndarray) -> _NumericViews:
        observed = train[~np.isnan(train)]
        median = float(np.median(observed)) if len(observed) else 0.0
        del observed
        filled = np.where(np.isnan(train), median, train)
        distinct, counts = np.unique(filled, return_counts=True)
        mean, std = _moments(filled)
        log_mean, log_std = _moments(_signed_log(filled))
        return cls(median, mean, std, log_mean, log_std, distinct,
                   np.concatenate([[0], np.cumsum(counts)]), len(train))  # fmt: skip

    def apply(self, values: np.ndarray) -> dict[str, np.ndarray]:
        filled = np.where(np.isnan(values), self.median, values)
        position = self.at_most[np.searchsorted(self.distinct, filled, side="right")]
        return {
            "standard": ((filled - self.mean) / self.std).astype(np.float32),
            "log_standard": ((_signed_log(filled) - self.log_mean) / self.log_std).astype(
                np.float32
            ),
            "quantile": np.minimum(position / self.train_rows, _BELOW_ONE).astype(np.float32),
        }


_BELOW_ONE = np.nextafter(1.0, 0.0)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _moments(values: np.ndarray) -> tuple[float, float]:
    mean, std = values.mean(), values.std()
    return mean, std if std > 0 else 1.0


def _encode_target(
    y: pd.Series, task: Task, train_idx: np.ndarray
) -> tuple[np.ndarray, list[str], float, float]:
    if task == "regression":
        values = y.to_numpy(dtype=np.float64)
        mean, std = float(values[train_idx].mean()), float(values[train_idx].std() or 1.0)
        return ((values - mean) / std).astype(np.float32), [], mean, std
    # Classes are the values as text, sorted; factorized first, so that only the distinct
    # values become strings (not one per row)
    codes, uniques = pd.factorize(y)  # no missing values: those rows were dropped
    labels = [str(value) for value in uniques]
    classes = sorted(set(labels))
    class_of = np.array([classes.index(label) for label in labels])
    dtype = np.float32 if task == "binary" else np.int64
    return class_of[codes].astype(dtype), classes, 0.0, 1.0
