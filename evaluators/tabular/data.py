"""Tabular datasets: load a table, split it once from the run seed, encode it into tensors.

Encodings (category ids, numeric standardisation) are fitted on the training split only,
so validation and test statistics are honest. Column roles and cleaning are decided in
`columns.py`. The built-in default is UCI Adult, vendored in `evaluators/tabular/datasets/`
(see ATTRIBUTION.md there).

Regression targets are standardised with the training split's mean and standard deviation,
and every statistic (E, D, sigma2, E_M) and metric is computed on that scale: the learning
rates of the space work for targets of any magnitude, E reads like 1 - R^2, and float32
predictions keep their precision whatever the target's offset. `EncodedDataset.target_mean`
and `target_std` convert back to the target's own units.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from edas_agent.evaluators.base import Task
from edas_agent.evaluators.tabular.columns import DataError, Prepared, Roles, Table, prepare
from edas_agent.evaluators.tabular.settings import BUILTIN_ADULT, DataSpec

__all__ = ["DataError", "DataSpec", "EncodedDataset", "Part", "Table", "load"]

T, R = TypeVar("T"), TypeVar("R")
_ADULT_TARGET = "income"
_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


@dataclass(frozen=True)
class Part:
    """One encoded split. `numeric` holds one tensor per numeric transform."""

    categorical: torch.Tensor  # (n, n_categorical) int64 ids, 0 = unseen or missing
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


def load(spec: DataSpec, seed: int) -> EncodedDataset:
    """Read, validate, split (from `seed` or the split column) and encode a dataset.

    Raises DataError with one line naming the file, the column and what to do."""
    table = _read(spec)
    task = spec.task or (table.task if spec.target is None else None)  # the built-in target
    roles = Roles(spec.categorical, spec.numeric, spec.ignore, spec.split_column, task)
    name, source = table.name, table.source or table.name
    try:
        prepared = prepare(table, roles)
        del table  # the raw frame: encoding frees the prepared one column by column
        train_idx, val_idx, test_idx = _split(prepared.frame, spec, seed)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    train_idx, val_idx, test_idx = _sampled(spec, prepared.notes, train_idx, val_idx, test_idx)
    return _encode(prepared, name, train_idx, val_idx, test_idx)


def _sampled(spec: DataSpec, notes: list[str], train_idx, val_idx, test_idx):
    """The splits cut to data.sample_rows (training) and data.sample_eval_rows (validation
    and test each), said in the notes. Each split is already in a seeded random order: its
    first rows are a seeded sample, and a larger sample holds a smaller one."""
    judged = spec.sample_eval_rows
    judged_sampled = judged is not None and judged < max(len(val_idx), len(test_idx))
    if spec.sample_rows is not None and spec.sample_rows < len(train_idx):
        whole = "" if judged_sampled else "; validation and test are whole"
        notes.append(
            f"training on a sample of {spec.sample_rows:,} of the {len(train_idx):,} training "
            f"rows (data.sample_rows){whole}"
        )
        train_idx = train_idx[: spec.sample_rows]
    if judged_sampled:
        notes.append(
            f"judging on samples of {judged:,} validation and test rows "
            f"(data.sample_eval_rows) of {len(val_idx):,} and {len(test_idx):,}"
        )
        val_idx, test_idx = val_idx[:judged], test_idx[:judged]
    return train_idx, val_idx, test_idx


def _read(spec: DataSpec) -> Table:
    if spec.path == BUILTIN_ADULT:
        # Opened through importlib.resources so it also reads from a zipped wheel.
        vendored = resources.files("edas_agent.evaluators.tabular") / "datasets" / "adult.csv.gz"
        with vendored.open("rb") as handle:
            frame = pd.read_csv(handle, compression="gzip")
        return Table(frame, spec.target or _ADULT_TARGET, BUILTIN_ADULT, task="binary")
    kind, _, rest = spec.path.partition(":")
    if kind == "synthetic":
        from edas_agent.evaluators.tabular.synthetic import SyntheticSpec, generate

        rows, _, fields = rest.partition(":")
        shape = {"rows": int(rows)}
        if fields:  # two thirds categorical, as in Criteo's 26 + 13
            shape.update(
                categorical=int(fields) * 2 // 3, numeric=int(fields) - int(fields) * 2 // 3
            )
        frame, categorical, numeric = generate(SyntheticSpec(**shape))
        return Table(frame, "label", spec.path, categorical, numeric, task="binary")
    if kind in ("criteo", "avazu"):
        return _read_criteo(Path(rest)) if kind == "criteo" else _read_avazu(Path(rest))
    path = Path(spec.path)
    parquet = path.suffix == ".parquet"
    # The header first: pandas renames a repeated CSV column 'x' to 'x.1' silently, and
    # pyarrow's error for a repeated Parquet column does not say which one it is.
    _refuse_repeated_names(path, _read_file(path, _parquet_names if parquet else _csv_names))
    frame = _read_file(path, _read_parquet if parquet else pd.read_csv)
    assert spec.target is not None  # guaranteed by DataSpec
    return Table(frame, spec.target, path.name, source=str(path))


def _read_file(path: Path, reader):
    """reader(path), its failures as one-line DataErrors; an empty table is one too."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        content = reader(path)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"cannot read {path}: it is empty; a table needs a header and rows"
        ) from None
    except (pd.errors.ParserError, ValueError, ImportError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path}: {reason}") from None
    if isinstance(content, pd.DataFrame) and content.empty:
        raise DataError(f"{path} has a header but no rows")
    return content


def _csv_names(path: Path) -> list[str]:
    return pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()


def _read_parquet(path: Path) -> pd.DataFrame:
    """Column by column, text columns as pandas categoricals on Parquet's own dictionaries:
    a cell is an int32 code, not a Python string (a 4-million-row table with 26 text
    columns would otherwise hold 100 million string objects), and only one column is ever
    held twice (as Arrow and as numpy). A pandas index stored in the file is not a feature."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pyarrow.types as kinds

    schema = pq.read_schema(path)
    text = [f.name for f in schema if kinds.is_string(f.type) or kinds.is_large_string(f.type)]
    stored_index = (schema.pandas_metadata or {}).get("index_columns", [])
    index = {name for name in stored_index if isinstance(name, str)}  # not a RangeIndex
    file = pq.ParquetFile(path, read_dictionary=text)
    columns = {}
    for name in schema.names:
        if name not in index:
            # Copied out of Arrow's memory pool, which keeps what is freed in it for
            # Arrow: encoding frees each column as it goes for the encoded arrays to use
            columns[name] = file.read(columns=[name]).column(0).to_pandas().copy(deep=True)
            pa.default_memory_pool().release_unused()
    return pd.DataFrame(columns, copy=False)  # one block per column, as read


def _parquet_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def _refuse_repeated_names(path: Path, names: list[str]) -> None:
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise DataError(
            f"{path}: column {repeated[0]!r} appears more than once in the header; "
            "rename one of them"
        )


def _read_criteo(path: Path) -> Table:
    """Criteo display-ads format: tab-separated, no header, label, 13 integer and 26
    categorical (hashed hex) fields, any of them possibly empty."""
    integers = [f"I{i}" for i in range(1, 14)]
    categories = [f"C{i}" for i in range(1, 27)]
    names = ["label", *integers, *categories]
    dtypes = {
        "label": "float64",
        **dict.fromkeys(integers, "float64"),
        **dict.fromkeys(categories, "string"),
    }
    probe = _read_file(path, lambda p: pd.read_csv(p, sep="\t", header=None, nrows=5))
    if probe.shape[1] != len(names):
        raise DataError(
            f"{path} is not in the Criteo format: {probe.shape[1]} tab-separated fields, "
            f"expected {len(names)} (label, 13 integers, 26 categories)"
        )
    frame = _read_file(
        path, lambda p: pd.read_csv(p, sep="\t", header=None, names=names, dtype=dtypes)
    )
    return Table(frame, "label", path.name, categories, integers)


def _read_avazu(path: Path) -> Table:
    """Avazu CTR format: CSV with a header, `click` the label, every other field categorical;
    `hour` (YYMMDDHH) becomes hour of day and day of week; `id` is dropped."""
    frame = _read_file(path, lambda p: pd.read_csv(p, dtype=str))
    if "click" not in frame.columns or "hour" not in frame.columns:
        raise DataError(f"{path} is not in the Avazu format: no 'click' or 'hour' column")
    hour = pd.to_datetime(frame["hour"], format="%y%m%d%H", errors="coerce")
    frame = frame.drop(columns=[c for c in ("id", "hour") if c in frame.columns])
    frame["hour_of_day"] = hour.dt.hour.astype("string")
    frame["weekday"] = hour.dt.day_of_week.astype("string")
    frame["click"] = pd.to_numeric(frame["click"], errors="coerce")
    categorical = [c for c in frame.columns if c != "click"]
    return Table(frame, "click", path.name, categorical, [])


def _split(
    frame: pd.DataFrame, spec: DataSpec, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(frame)
    if spec.split_column is not None:
        names = frame[spec.split_column].astype("string").str.strip().str.lower()
        parts = names.map(_SPLIT_NAMES)
        if parts.isna().any():
            bad = sorted(set(names[parts.isna()].astype(str)))[:5]
            raise DataError(
                f"split column {spec.split_column!r} has values {bad}; use train, val, test"
            )
        parts = parts.to_numpy()
        indices = tuple(np.flatnonzero(parts == i) for i in range(3))
        if min(len(i) for i in indices) < 2:
            raise DataError(
                f"split column {spec.split_column!r} leaves a split with fewer than 2 rows"
            )
        return indices
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * spec.val_fraction), round(n * spec.test_fraction)
    if n - n_val - n_test < 2 or min(n_val, n_test) < 2:
        raise DataError(
            f"{n} rows are too few to split into train, validation and test with fractions "
            f"{spec.val_fraction:g} and {spec.test_fraction:g} (each split needs 2 rows); "
            "bring more rows"
        )
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def _encode(
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
        j, values = column[0], column[1].to_numpy(np.float64)
        by_split = _numeric_views([values[idx] for idx in splits])
        for view in NUMERIC_VIEWS:
            for part, encoded in zip(numeric[view], by_split[view], strict=True):
                part[j] = encoded

    _in_threads(fill, ((j, frame.pop(column)) for j, column in enumerate(columns)))
    for parts in numeric.values():
        for i, columns_first in enumerate(parts):
            parts[i] = np.ascontiguousarray(columns_first.T)
    return numeric


def _in_threads(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item on all cores, results in order. numpy's sorting, searching
    and indexing release the GIL, so columns encode in parallel; each item (a column
    popped from the frame) is released as soon as its work is done."""
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return list(pool.map(work, items))


def _numeric_views(splits: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """One numeric column (float64, NaN missing), given per split (training first), as
    each transform the space offers, fitted on the training split. Missing values take the
    training median; a column missing throughout the training split is filled with 0 (it
    still varies elsewhere, or columns.py would have left it out)."""
    observed = splits[0][~np.isnan(splits[0])]
    median = np.median(observed) if len(observed) else 0.0
    filled = [np.where(np.isnan(values), median, values) for values in splits]
    logs = [np.sign(values) * np.log1p(np.abs(values)) for values in filled]
    return {
        "standard": _standardise(filled),
        "log_standard": _standardise(logs),
        "quantile": _quantiles(filled),
    }


def _quantiles(splits: list[np.ndarray]) -> list[np.ndarray]:
    """Each value's position in the training distribution, in [0, 1): bucket b of B holds
    quantiles [b/B, (b+1)/B), so any bucket count is one multiplication away. Looked up in
    the distinct training values (few for counts and codes: a fast search)."""
    distinct, counts = np.unique(splits[0], return_counts=True)
    at_most = np.concatenate([[0], np.cumsum(counts)])  # training values <= distinct[i - 1]
    below_one = np.nextafter(1.0, 0.0)
    return [
        np.minimum(at_most[np.searchsorted(distinct, values, side="right")] / len(splits[0]),
                   below_one).astype(np.float32)
        for values in splits
    ]  # fmt: skip


def _standardise(splits: list[np.ndarray]) -> list[np.ndarray]:
    mean, std = splits[0].mean(), splits[0].std()
    std = std if std > 0 else 1.0
    return [((values - mean) / std).astype(np.float32) for values in splits]


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
