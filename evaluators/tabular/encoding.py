"""Encoding a prepared table into tensors: category ids, numeric views, labels.

Encodings are fitted on the training split only, so validation and test statistics are
honest. Ids rank each categorical column's values by training frequency (1 = most
frequent, ties by first appearance in the table, 0 = never seen in training; missing is a
category of its own). Numeric columns are kept as their values with three transforms
fitted to them (standardised, log-standardised, quantile; missing values the training
median), and the float32 view a model reads is computed when it asks for it. Regression
targets are standardised (data.py's docstring says why). Columns are encoded column by
column, in threads, each freed as soon as it is written, so a large table is never held
twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from edas_agent.evaluators.base import Task
from edas_agent.evaluators.tabular.columns import Prepared
from edas_agent.evaluators.tabular.numeric import (
    NumericColumns,
    NumericTransform,
    chunks,
    narrowed,
)

T, R = TypeVar("T"), TypeVar("R")


@dataclass(frozen=True)
class Part:
    """One encoded split. `numeric` gives one tensor per numeric transform (computed when
    asked for: NumericColumns)."""

    categorical: torch.Tensor  # (n, n_categorical) int32 ids, 0 = unseen in training
    numeric: Mapping[str, torch.Tensor]  # standard, log_standard, quantile -> (n, n_numeric)
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
    arrays = SplitArrays((train_idx, val_idx, test_idx), len(prepared.categorical),
                         len(prepared.numeric))  # fmt: skip
    target = encode_target(frame.pop(prepared.target), task, train_idx)
    cardinalities = in_threads(
        lambda column: arrays.write_categorical(*column),
        ((slot, frame.pop(column)) for slot, column in enumerate(prepared.categorical)),
    )
    in_threads(
        lambda column: arrays.write_numeric(column[0], column[1].to_numpy()),
        ((slot, frame.pop(column)) for slot, column in enumerate(prepared.numeric)),
    )
    return encoded_dataset(
        name, task, prepared.categorical, prepared.numeric, cardinalities, target,
        arrays.parts(target.y, range(len(prepared.categorical)), range(len(prepared.numeric))),
        prepared.notes,
    )  # fmt: skip


def encoded_dataset(
    name: str,
    task: Task,
    categorical: list[str],
    numeric: list[str],
    cardinalities: list[int],
    target: Target,
    parts: tuple[Part, Part, Part],
    notes: list[str],
) -> EncodedDataset:
    return EncodedDataset(
        name=name,
        task=task,
        categorical_fields=categorical,
        numeric_fields=numeric,
        cardinalities=cardinalities,
        classes=target.classes,
        target_mean=target.mean,
        target_std=target.std,
        train=parts[0],
        val=parts[1],
        test=parts[2],
        notes=tuple(notes),
    )


class SplitArrays:
    """The encoded splits, allocated once and written a column at a time: the ids (rows,
    categorical columns), row-major as training gathers rows, and each numeric column's
    values (NumericColumns). Writing a column needs only that column's memory, so a table
    can be read and encoded one column at a time and never held whole. Encodings are
    fitted on the training rows, the first of the splits."""

    def __init__(self, splits: tuple[np.ndarray, ...], categorical: int, numeric: int):
        self.splits = splits
        self.categorical = [np.empty((len(idx), categorical), np.int32) for idx in splits]
        self.numeric: list[list[np.ndarray]] = [[np.empty(0)] * numeric for _ in splits]
        self.transforms: list[NumericTransform | None] = [None] * numeric

    def write_categorical(self, slot: int, values: pd.Series | Codes) -> int:
        """Writes the column's ids into `slot`; returns its cardinality."""
        field = _category_ids(values, self.splits[0])
        for out, idx in zip(self.categorical, self.splits, strict=True):
            for rows in chunks(len(idx)):
                out[rows, slot] = field.id_of_code[field.codes[idx[rows]]]
        return field.cardinality

    def write_numeric(self, slot: int, values: np.ndarray) -> None:
        self.transforms[slot] = NumericTransform.fit(values[self.splits[0]].astype(np.float64))
        for i, idx in enumerate(self.splits):
            self.numeric[i][slot] = narrowed(values[idx])

    def parts(
        self, y: np.ndarray, categorical: Iterable[int], numeric: Iterable[int]
    ) -> tuple[Part, Part, Part]:
        """The splits with the slots `categorical` and `numeric` (those written), the others
        squeezed out in place."""
        categorical, numeric = list(categorical), list(numeric)
        ids = [_keep_columns(array, categorical) for array in self.categorical]
        transforms = [self.transforms[slot] for slot in numeric]
        train, val, test = (
            Part(
                categorical=torch.from_numpy(ids[i]),
                numeric=NumericColumns([self.numeric[i][s] for s in numeric], transforms, len(idx)),
                y=torch.from_numpy(y[idx]),
            )
            for i, idx in enumerate(self.splits)
        )
        return train, val, test


def _keep_columns(array: np.ndarray, kept: list[int]) -> np.ndarray:
    """The columns `kept` of a row-major array, moved to the front of its own buffer a
    block of rows at a time (a row's new place never lies after its old one, so nothing
    is overwritten before it is read) and the buffer shrunk: no second copy of a large
    array when a column turned out constant."""
    rows, width = array.shape
    if kept == list(range(width)):
        return array
    flat, kept_width = array.reshape(-1), len(kept)
    for start in range(0, rows, _BLOCK_ROWS):
        block = array[start : start + _BLOCK_ROWS][:, kept]  # a copy
        flat[start * kept_width : start * kept_width + block.size] = block.reshape(-1)
    del flat
    array.resize((rows, kept_width), refcheck=False)  # the first rows * kept_width values
    return array


_BLOCK_ROWS = 8192


@dataclass(frozen=True)
class _Field:
    """A categorical column's codes (missing is the last code) and each code's id."""

    codes: np.ndarray  # per row, in the smallest integer type that holds them
    id_of_code: np.ndarray  # int32; 0 for a code never seen in training
    cardinality: int  # ids in use, with id 0


@dataclass(frozen=True)
class Codes:
    """A categorical column as a code per row into its distinct values (-1: missing), the
    values themselves kept elsewhere (a Parquet dictionary): what ids need of a column."""

    codes: np.ndarray
    n_values: int

    def counts(self) -> np.ndarray:
        """How often each value occurs (missing not counted), a chunk of rows at a time."""
        counts = np.zeros(self.n_values, np.int64)
        for rows in chunks(len(self.codes)):
            chunk = self.codes[rows]
            counts += np.bincount(chunk[chunk >= 0], minlength=self.n_values)
        return counts

    def first_rows(self) -> np.ndarray:
        """Each value's first row (len(codes) for a value that never occurs)."""
        first = np.full(self.n_values, len(self.codes), dtype=np.int64)
        for rows in chunks(len(self.codes)):
            chunk = self.codes[rows]
            present = np.flatnonzero(chunk >= 0)
            np.minimum.at(first, chunk[present], present + rows.start)
        return first


def _category_ids(values: pd.Series | Codes, train_idx: np.ndarray) -> _Field:
    """Ids by training frequency (1 = most frequent, ties by first appearance in the
    table); 0 for a value never seen in training. Missing values form one category of
    their own, last among ties."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = Codes(values.cat.codes.to_numpy(), len(values.cat.categories))
    if isinstance(values, Codes):  # codes in the dictionary's order
        raw, n_values = values.codes, values.n_values
        first = np.append(values.first_rows(), len(raw))
    else:  # codes in order of first appearance
        raw, uniques = pd.factorize(values, use_na_sentinel=True)
        n_values = len(uniques)
        first = np.arange(n_values + 1)
    first[n_values] = len(raw)  # missing: after every value seen
    codes = raw.astype(np.min_scalar_type(n_values))  # missing (-1) becomes the last code:
    codes[raw < 0] = n_values  # n_values fits the type, which -1 may not
    counts = np.zeros(n_values + 1, np.int64)
    for rows in chunks(len(train_idx)):
        counts += np.bincount(codes[train_idx[rows]], minlength=n_values + 1)
    order = np.lexsort((first, -counts))  # most frequent first, then first seen
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(1, len(order) + 1)
    id_of_code = np.where(counts > 0, rank, 0).astype(np.int32)
    return _Field(codes, id_of_code, int((counts > 0).sum()) + 1)


def give_back_freed_memory() -> None:
    """Loading frees many column-sized arrays; glibc keeps those below its (adaptive, up to
    32 MB) threshold in its heaps for later allocations that may never come: at 4 million
    rows, 0.1 to 0.4 GB more at the peak, and through the whole search after it."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


LOAD_THREADS = "EDAS_AGENT_LOAD_THREADS"  # threads that encode columns; 1: one at a time


def in_threads(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item on all cores (up to 4, or $EDAS_AGENT_LOAD_THREADS),
    results in order. numpy's sorting, searching and indexing release the GIL, so columns
    encode in parallel; each item (a column popped from the frame) is released as soon as
    its work is done. One thread works in this one: the lowest peak memory."""
    threads = int(os.environ.get(LOAD_THREADS) or max(1, min(4, os.cpu_count() or 1)))
    if threads <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:  # the first failure stops the items not yet started
            for future in futures:
                future.cancel()
            raise


@dataclass(frozen=True)
class Target:
    y: np.ndarray  # per row of the table: float {0,1}, int64 class ids, or standardised
    classes: list[str]
    mean: float
    std: float


def encode_target(y: pd.Series, task: Task, train_idx: np.ndarray) -> Target:
    if task == "regression":
        values = y.to_numpy(dtype=np.float64)
        mean, std = float(values[train_idx].mean()), float(values[train_idx].std() or 1.0)
        return Target(((values - mean) / std).astype(np.float32), [], mean, std)
    # Classes are the values as text, sorted; factorized first, so that only the distinct
    # values become strings (not one per row)
    codes, uniques = pd.factorize(y)  # no missing values: those rows were dropped
    labels = [str(value) for value in uniques]
    classes = sorted(set(labels))
    class_of = np.array([classes.index(label) for label in labels])
    dtype = np.float32 if task == "binary" else np.int64
    return Target(class_of[codes].astype(dtype), classes, 0.0, 1.0)
