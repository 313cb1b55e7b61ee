"""Parquet files, read and encoded one column at a time.

A Parquet file stores each column on its own, so a table of tens of millions of rows need
never be held whole. `load_by_column` decides each column's role from the file's types,
reads the target (and the split column), then reads, checks and encodes one feature column
at a time into the encoded splits' arrays (`encoding.SplitArrays`), each column freed as
soon as it is written: the peak is the encoded table and the columns in flight. It gives
exactly what reading the whole table and preparing it (columns.py) gives, notes included;
a file with a column whose role needs more than its type (booleans, dates, nested values,
text declared numeric) is left to that whole-table path, which reads it with `read_whole`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from edas_agent.evaluators.base import Task
from edas_agent.evaluators.tabular import columns
from edas_agent.evaluators.tabular.columns import DataError, Roles
from edas_agent.evaluators.tabular.encoding import (
    Codes,
    EncodedDataset,
    SplitArrays,
    Target,
    encode_target,
    encoded_dataset,
    give_back_freed_memory,
    in_threads,
)
from edas_agent.evaluators.tabular.numeric import narrowed
from edas_agent.evaluators.tabular.settings import DataSpec
from edas_agent.evaluators.tabular.splits import Splits, sampled, split_rows

# "text": categorical unless it holds dates, refused when it mixes numbers and text (an
# undeclared text column); "left_out_unless_date": a date column would still be used
Role = Literal["categorical", "numeric", "text", "left_out", "left_out_unless_date"]


Kind = Literal["number", "text"] | None  # None: a type whose role the values decide


class _NeedsWholeTable(Exception):
    """A column's role needs the whole-table path (a text column holding dates)."""


def column_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def read_whole(path: Path) -> pd.DataFrame:
    """Every column, as `_read_column` reads it, copied out of Arrow's memory pool (which
    keeps what is freed in it for Arrow): encoding frees each column as it goes for the
    encoded arrays to use. A pandas index stored in the file is not a feature."""
    import pyarrow as pa

    text = _text_columns(_kinds(path))
    frame = {}
    for name in _feature_file_columns(path):
        frame[name] = _read_column(path, name, name in text).copy(deep=True)
        pa.default_memory_pool().release_unused()
    return pd.DataFrame(frame, copy=False)  # one block per column, as read


def load_by_column(path: Path, spec: DataSpec, seed: int) -> EncodedDataset | None:
    """The file read, checked and encoded a column at a time (module docstring); None when
    a column's role needs the whole table. Raises DataError naming the column."""
    assert spec.target is not None  # guaranteed by DataSpec for a file
    names, kinds = _feature_file_columns(path), _kinds(path)
    roles = Roles(spec.categorical, spec.numeric, spec.ignore, spec.split_column, spec.task)
    columns.check_named_columns(names, spec.target, roles)
    plan = _plan(kinds, columns.features_of(names, spec.target, roles), roles)
    if plan is None or _rows(path) == 0:  # the whole-table path says what to do
        return None
    text = _text_columns(kinds)
    rows = _rows_and_target(path, spec, roles, text, seed)
    try:
        with _system_memory_pool():
            arrays, encoded = _encode_columns(path, plan, text, rows)
    except _NeedsWholeTable:
        return None
    return _dataset(path.name, plan, arrays, encoded, rows)


@dataclass(frozen=True)
class _Rows:
    """The rows the features are encoded for, and the target's encoding."""

    kept: np.ndarray | None  # rows whose target is present (None: all)
    splits: Splits  # of the kept rows, sampled
    task: Task
    target: Target
    notes: list[str]  # the target's and the task's, as columns.prepare makes them
    sample_notes: list[str]  # said after the columns' notes, as data.load says them


def _rows_and_target(path: Path, spec: DataSpec, roles: Roles, text: set[str], seed: int) -> _Rows:
    assert spec.target is not None
    notes: list[str] = []
    y = _read_column(path, spec.target, spec.target in text)
    kept = columns.rows_with_target(y, notes)
    y = _kept(y, kept)
    task = columns.task_of(y, spec.task, notes)
    notes += columns.ignored_notes(roles)
    split_column = None
    if spec.split_column is not None:
        split_column = _kept(_read_column(path, spec.split_column, spec.split_column in text), kept)
    sample_notes: list[str] = []
    splits = sampled(spec, sample_notes, split_rows(len(y), split_column, spec, seed), seed)
    return _Rows(kept, splits, task, encode_target(y, task, splits[0]), notes, sample_notes)


def _dataset(
    name: str, plan: dict[str, Role], arrays: SplitArrays, encoded: list[_Encoded], rows: _Rows
) -> EncodedDataset:
    """The encoded columns, constant ones squeezed out, with the notes prepare would make."""
    categorical = [c.name for c in encoded if c.role == "categorical" and not c.constant]
    numeric = [c.name for c in encoded if c.role == "numeric" and not c.constant]
    if not categorical and not numeric:
        raise DataError("no usable feature columns besides the target; add columns that vary")
    notes = rows.notes + columns.left_out_notes(
        [c for c, r in plan.items() if r.startswith("left")]
    )
    notes += columns.constant_notes([c.name for c in encoded if c.constant])
    notes += columns.missing_notes({c.name: c.missing for c in encoded if c.name in numeric})
    notes += [columns.id_like_note(c.name) for c in encoded if c.id_like and not c.constant]
    slots = {c.name: c.slot for c in encoded}
    parts = arrays.parts(
        rows.target.y, [slots[c] for c in categorical], [slots[c] for c in numeric]
    )
    cardinalities = [c.cardinality for c in encoded if c.name in categorical]
    return encoded_dataset(name, rows.task, categorical, numeric, cardinalities, rows.target,
                           parts, notes + rows.sample_notes)  # fmt: skip


def _plan(kinds: dict[str, Kind], features: list[str], roles: Roles) -> dict[str, Role] | None:
    """Each feature column's role from its type, as columns.py's `_assign` decides it from
    the pandas type the column reads as; None when some column's type does not decide it.
    (An empty --categorical list counts as none given, as there.)"""
    declared_categorical, declared_numeric = roles.categorical or None, roles.numeric
    plan: dict[str, Role] = {}
    for name in features:
        kind = kinds[name]
        if kind is None:
            return None
        if declared_categorical is not None and name in declared_categorical:
            plan[name] = "categorical"
        elif declared_numeric is not None and name in declared_numeric:
            if kind == "text":  # dates count as days; other text is refused there
                return None
            plan[name] = "numeric"
        elif declared_categorical is not None and declared_numeric is not None:
            plan[name] = "left_out"
        elif kind == "number":
            plan[name] = "numeric" if declared_numeric is None else "left_out"
        else:  # text: categorical unless it holds dates (checked when read)
            plan[name] = "text" if declared_categorical is None else "left_out_unless_date"
    if not any(role in ("categorical", "numeric", "text") for role in plan.values()):
        return None  # columns.py says why there are no feature columns
    return plan


def _kinds(path: Path) -> dict[str, Kind]:
    """Arrow types whose pandas type decides a role: integers and floats (numbers), strings
    and dictionaries of strings (text). Booleans read as objects when some are missing,
    dates and nested values have roles of their own: None, the whole-table path."""
    import pyarrow.parquet as pq
    import pyarrow.types as types

    def kind(arrow_type) -> Kind:
        if types.is_dictionary(arrow_type):
            return "text" if _is_string(arrow_type.value_type) else None
        if types.is_integer(arrow_type) or types.is_floating(arrow_type):
            return "number"
        return "text" if _is_string(arrow_type) else None

    return {field.name: kind(field.type) for field in pq.read_schema(path)}


@dataclass(frozen=True)
class _Encoded:
    """What became of one feature column."""

    name: str
    role: Literal["categorical", "numeric"]
    slot: int
    constant: bool = False
    missing: int = 0  # numeric: missing or infinite values
    id_like: bool = False
    cardinality: int = 0


def _encode_columns(
    path: Path, plan: dict[str, Role], text: set[str], rows: _Rows
) -> tuple[SplitArrays, list[_Encoded]]:
    """Every planned column read, checked and written into its slot of the encoded splits,
    on all cores."""
    categorical = [c for c, role in plan.items() if role in ("categorical", "text")]
    numeric = [c for c, role in plan.items() if role == "numeric"]
    arrays, kept = SplitArrays(rows.splits, len(categorical), len(numeric)), rows.kept
    slots = {**{c: j for j, c in enumerate(categorical)}, **{c: j for j, c in enumerate(numeric)}}

    def encode(name: str) -> _Encoded | None:
        role = plan[name]
        if name not in text:  # numbers
            column = _Encoded(name, "numeric" if role == "numeric" else "categorical", slots[name])
            if role == "numeric":
                return _numeric(column, arrays, _kept(_read_numbers(path, name), kept))
            return _categorical(column, arrays, _kept(_read_column(path, name, False), kept))
        codes, dictionary = _read_codes(path, name)
        codes = Codes(codes if kept is None else codes[kept], len(dictionary))
        distinct = pd.Series(pd.Index(dictionary))  # as a categorical's categories read
        if role in ("text", "left_out_unless_date") and columns.is_date(distinct):
            raise _NeedsWholeTable(name)
        if role == "left_out_unless_date":
            return None
        counts = codes.counts()
        if role == "text":
            columns.refuse_mixed_distinct(distinct, counts, name)
        return _text(_Encoded(name, "categorical", slots[name]), arrays, codes, counts)

    def encode_and_give_back(name: str) -> _Encoded | None:
        encoded = encode(name)
        give_back_freed_memory()  # what reading the column freed, before the next
        return encoded

    done = in_threads(encode_and_give_back, [c for c, r in plan.items() if r != "left_out"])
    return arrays, [column for column in done if column is not None]


def _text(column: _Encoded, arrays: SplitArrays, codes: Codes, counts: np.ndarray) -> _Encoded:
    """columns.py's checks of a categorical column, from its codes and their counts."""
    values = int((counts > 0).sum())  # distinct values present
    if values + bool((codes.codes < 0).any()) < 2:  # missing counts as a value
        return replace(column, constant=True)
    cardinality = arrays.write_categorical(column.slot, codes)
    id_like = columns.looks_like_ids(values, len(codes.codes))
    return replace(column, id_like=id_like, cardinality=cardinality)


def _categorical(column: _Encoded, arrays: SplitArrays, values: pd.Series) -> _Encoded:
    if columns.is_constant(values, categorical=True):
        return replace(column, constant=True)
    cardinality = arrays.write_categorical(column.slot, values)
    return replace(column, id_like=columns.is_id_like(values), cardinality=cardinality)


def _numeric(column: _Encoded, arrays: SplitArrays, values: pd.Series) -> _Encoded:
    if columns.is_constant(values, categorical=False):
        return replace(column, constant=True)
    values = columns.finite(values)
    arrays.write_numeric(column.slot, values.to_numpy())
    return replace(column, missing=int(values.isna().sum()))


@contextmanager
def _system_memory_pool() -> Iterator[None]:
    """Arrow allocating from the system allocator, which gives back to the process what
    a column freed (Arrow's default pool keeps it for Arrow's next allocations, which do
    not come: encoded columns live in numpy arrays)."""
    import pyarrow as pa

    default = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(default)


def _kept(values: pd.Series, kept: np.ndarray | None) -> pd.Series:
    return values if kept is None else values[kept]


def _read_column(path: Path, name: str, text: bool) -> pd.Series:
    """One column as pandas reads it from Arrow: text as a categorical (an int code per
    cell, not a Python string: a 4-million-row table with 26 text columns would otherwise
    hold 100 million string objects); a float64 column that float32 holds exactly as
    float32 (columns.py keeps it so until encoded)."""
    import pyarrow.parquet as pq

    if text:
        return _read_text(path, name)
    arrow = pq.ParquetFile(path).read(columns=[name]).column(0)
    return _as_float32_if_exact(arrow.to_pandas())


def _read_text(path: Path, name: str) -> pd.Series:
    """A text column as the categorical `to_pandas` makes of it (`_read_codes`)."""
    codes, dictionary = _read_codes(path, name)
    categories = pd.CategoricalDtype(pd.Index(dictionary))
    return pd.Series(pd.Categorical.from_codes(codes, dtype=categories), name=name)


def _read_codes(path: Path, name: str):
    """A text column's int32 codes (-1: missing) into its Arrow dictionary of distinct
    values, read a row group at a time: each group's dictionary is mapped onto the
    column's (the first group's values, then each later group's new ones, in order, as
    Arrow unifies them), and the group is freed before the next is read. A column of a
    million categories stores them again in every row group: read whole, they would all
    be held at once."""
    import pyarrow as pa
    import pyarrow.compute as compute
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path, read_dictionary=[name])
    codes = np.empty(file.metadata.num_rows, np.int32)
    dictionary, start = None, 0
    for group in range(file.num_row_groups):
        for chunk in file.read_row_group(group, columns=[name]).column(0).chunks:
            indices = chunk.indices.fill_null(-1).to_numpy()
            if dictionary is None or chunk.dictionary.equals(dictionary):
                dictionary = chunk.dictionary
                codes[start : start + len(chunk)] = indices
            else:
                position = compute.index_in(chunk.dictionary, value_set=dictionary)
                new = chunk.dictionary.filter(compute.is_null(position))
                dictionary = pa.concat_arrays([dictionary, new])
                mapping = compute.index_in(chunk.dictionary, value_set=dictionary).to_numpy()
                codes[start : start + len(chunk)] = np.where(indices < 0, -1, mapping[indices])
            start += len(chunk)
    return codes, pa.array([], pa.string()) if dictionary is None else dictionary


def _read_numbers(path: Path, name: str) -> pd.Series:
    """A column of integers or floats as the float values the whole-table path gives
    (integers, missing as NaN), read a row group at a time into float32 while float32
    holds every value exactly (then float64): the same encoding, in half the memory."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    out, start = np.empty(file.metadata.num_rows, np.float32), 0
    for group in range(file.num_row_groups):
        for chunk in file.read_row_group(group, columns=[name]).column(0).chunks:
            values = chunk.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            if out.dtype == np.float32 and narrowed(values).dtype != np.float32:
                wider = np.empty(len(out), np.float64)
                wider[:start] = out[:start]
                out = wider
            out[start : start + len(values)] = values
            start += len(values)
    return pd.Series(out, name=name, copy=False)


def _as_float32_if_exact(column: pd.Series) -> pd.Series:
    """A float64 column as float32 when float32 holds every value exactly: half the memory
    until it is encoded, and the same values, so the same encoding as a CSV of the table
    gives. Others stay as they are."""
    if column.dtype != np.float64:
        return column
    return pd.Series(narrowed(column.to_numpy()), index=column.index, name=column.name, copy=False)


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _text_columns(kinds: dict[str, Kind]) -> set[str]:
    return {name for name, kind in kinds.items() if kind == "text"}


def _is_string(arrow_type) -> bool:
    import pyarrow.types as types

    return types.is_string(arrow_type) or types.is_large_string(arrow_type)


def _feature_file_columns(path: Path) -> list[str]:
    """The file's columns but a stored pandas index (not a RangeIndex, which is not stored)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    stored_index = (schema.pandas_metadata or {}).get("index_columns", [])
    return [name for name in schema.names if name not in stored_index]
