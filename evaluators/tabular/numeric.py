"""Numeric columns: their values as read, each column's transforms fitted on the training
split, and the float32 view a model reads, computed when it asks for it.

Stored, the three views (standardised, log-standardised, quantile) would take 12 bytes per
value; the values take 4 (8 where float32 does not hold them exactly), and a model reads
one view at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

NUMERIC_VIEWS = ("standard", "log_standard", "quantile")
CHUNK_ROWS = 1 << 20  # rows transformed at once: float64 temporaries stay small


def chunks(rows: int) -> Iterable[slice]:
    return (slice(start, start + CHUNK_ROWS) for start in range(0, rows, CHUNK_ROWS))


class NumericColumns(Mapping[str, torch.Tensor]):
    """A split's numeric columns as read (missing as NaN) and each column's transforms,
    fitted on the training split. `columns[view]` is the (rows, columns) float32 view,
    computed when asked for; the last one asked for is kept. Stored, the three views would
    take 12 bytes per value; the values take 4 (8 where float32 does not hold them
    exactly), and a model reads one view."""

    def __init__(self, arrays: list[np.ndarray], transforms: list[NumericTransform], rows: int):
        self.arrays, self.transforms, self.rows = arrays, transforms, rows
        self._last: tuple[str, torch.Tensor] | None = None

    def __getitem__(self, view: str) -> torch.Tensor:
        if view not in NUMERIC_VIEWS:
            raise KeyError(view)
        if self._last is None or self._last[0] != view:
            self._last = None  # the previous view is freed before the next is computed
            self._last = (view, torch.from_numpy(self._computed(view)))
        return self._last[1]

    def __getstate__(self) -> dict:
        """Pickled (shipped to Ray workers) without the kept view: it is computed again."""
        return {**self.__dict__, "_last": None}

    def __iter__(self) -> Iterator[str]:
        return iter(NUMERIC_VIEWS)

    def __len__(self) -> int:
        return len(NUMERIC_VIEWS)

    def _computed(self, view: str) -> np.ndarray:
        out = np.empty((self.rows, len(self.arrays)), np.float32)
        for j, (values, transform) in enumerate(zip(self.arrays, self.transforms, strict=True)):
            for rows in chunks(self.rows):
                out[rows, j] = transform.apply(values[rows].astype(np.float64), view)
        return out


def narrowed(values: np.ndarray) -> np.ndarray:
    """Float64 values as float32 when float32 holds every one exactly (counts, integers
    below 2^24, halves...): half the memory, and the same values once widened again."""
    if values.dtype != np.float64:
        return values
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: not exact
        narrow = values.astype(np.float32)
    return narrow if np.array_equal(narrow, values, equal_nan=True) else values


@dataclass(frozen=True)
class NumericTransform:
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
    def fit(cls, train: np.ndarray) -> NumericTransform:
        observed = train[~np.isnan(train)]
        median = float(np.median(observed)) if len(observed) else 0.0
        del observed
        filled = np.where(np.isnan(train), median, train)
        distinct, counts = np.unique(filled, return_counts=True)
        mean, std = _moments(filled)
        log_mean, log_std = _moments(_signed_log(filled))
        return cls(median, mean, std, log_mean, log_std, distinct,
                   np.concatenate([[0], np.cumsum(counts)]), len(train))  # fmt: skip

    def apply(self, values: np.ndarray, view: str) -> np.ndarray:
        filled = np.where(np.isnan(values), self.median, values)
        if view == "standard":
            return ((filled - self.mean) / self.std).astype(np.float32)
        if view == "log_standard":
            return ((_signed_log(filled) - self.log_mean) / self.log_std).astype(np.float32)
        position = self.at_most[np.searchsorted(self.distinct, filled, side="right")]
        return np.minimum(position / self.train_rows, _BELOW_ONE).astype(np.float32)


_BELOW_ONE = np.nextafter(1.0, 0.0)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _moments(values: np.ndarray) -> tuple[float, float]:
    mean, std = float(values.mean()), float(values.std())
    return mean, std if std > 0 else 1.0
