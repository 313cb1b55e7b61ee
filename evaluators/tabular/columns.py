"""What each column of a user's table becomes: target, categorical, numeric, or left out.

A table from the wild has missing targets, constant columns, dates, booleans, nested
Parquet cells and duplicated names. Each is either cleaned (and the cleaning is said in a
note that the CLI prints and the run's baseline record keeps) or refused with one line that
names the column and what to do. Nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from edas_agent.evaluators.base import DataError, Task

MAX_INFERRED_CLASSES = 50
_MAX_MULTICLASS_INTEGERS = 20  # an integer target with more distinct values is a quantity
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ID_LIKE_ROWS = 1000  # below this, a column unique per row may be chance
_NESTED = (list, tuple, dict, set, np.ndarray)


@dataclass(frozen=True)
class Table:
    """A raw table and what is known about its columns before inference."""

    frame: pd.DataFrame
    target: str
    name: str
    categorical: list[str] | None = None
    numeric: list[str] | None = None
    source: str = ""  # the path as the user gave it, for messages; name when empty
    task: Task | None = None  # known for built-in tables: nothing to infer, nor to note


@dataclass(frozen=True)
class Roles:
    """What the user declared: column lists (None: infer), columns to leave out."""

    categorical: list[str] | None
    numeric: list[str] | None
    ignore: list[str]
    split_column: str | None
    task: Task | None


@dataclass
class Prepared:
    """A cleaned frame whose feature columns are all usable, and what was done to it."""

    frame: pd.DataFrame
    target: str
    task: Task
    categorical: list[str]
    numeric: list[str]
    notes: list[str] = field(default_factory=list)


def prepare(table: Table, roles: Roles) -> Prepared:
    """Decide each column's role and clean the table; raises DataError naming the column."""
    frame, target = table.frame, table.target
    _refuse_duplicated_names(frame)
    check_named_columns(list(frame.columns), target, roles)
    notes: list[str] = []
    kept = rows_with_target(frame[target], notes)
    if kept is not None:
        frame = frame.loc[kept].reset_index(drop=True)
    task = task_of(frame[target], roles.task, notes)
    notes.extend(ignored_notes(roles))
    features = features_of(list(frame.columns), target, roles)
    frame, categorical, numeric = _assign(frame, features, table, roles, notes)
    categorical, numeric = _drop_constant(frame, categorical, numeric, notes)
    if not categorical and not numeric:
        raise DataError("no usable feature columns besides the target; add columns that vary")
    frame = _clean_numeric(frame, numeric, notes)
    _note_id_like(frame, categorical, notes)
    return Prepared(frame, target, task, categorical, numeric, notes)


def _refuse_duplicated_names(frame: pd.DataFrame) -> None:
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(
            f"column {duplicated[0]!r} appears more than once in the header; rename one of them"
        )


def check_named_columns(columns: list[str], target: str, roles: Roles) -> None:
    """The target, the split column and every column the user named are in the table."""
    if target not in columns:
        raise DataError(f"target column {target!r} not in the data; columns: {_names(columns, 20)}")
    if roles.split_column is not None and roles.split_column not in columns:
        raise DataError(f"split column {roles.split_column!r} not in the data")
    named = (roles.categorical or []) + (roles.numeric or []) + roles.ignore
    unknown = [c for c in named if c not in columns or c in (target, roles.split_column)]
    if unknown:
        raise DataError(
            f"unknown feature columns {unknown}; feature columns: "
            f"{_names([c for c in columns if c not in (target, roles.split_column)], 20)}"
        )
    both = sorted(set(roles.categorical or []) & set(roles.numeric or []))
    if both:
        raise DataError(f"column {both[0]!r} is declared both categorical and numeric")


def rows_with_target(y: pd.Series, notes: list[str]) -> np.ndarray | None:
    """The rows whose target is present and finite (None: all of them), said in a note;
    refuses a target with no values, or one value once those rows are dropped."""
    target = y.name
    missing = y.isna()
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        missing |= ~np.isfinite(y.astype(np.float64).fillna(0.0))
    if missing.all():
        raise DataError(f"target column {target!r} has no values")
    if missing.any():
        notes.append(
            f"dropped {int(missing.sum())} of {len(y)} rows whose target {target!r} is "
            "missing or infinite"
        )
    kept = (~missing).to_numpy() if missing.any() else None
    if (y if kept is None else y[kept]).nunique() < 2:
        raise DataError(f"target column {target!r} is constant: there is nothing to learn")
    return kept


def features_of(columns: list[str], target: str, roles: Roles) -> list[str]:
    """The columns that may be features: all but the target, the split column and those
    left out as asked."""
    return [c for c in columns if c not in (target, roles.split_column, *roles.ignore)]


def ignored_notes(roles: Roles) -> list[str]:
    return [f"left out as asked (--ignore): {_names(roles.ignore)}"] if roles.ignore else []


def task_of(y: pd.Series, declared: Task | None, notes: list[str]) -> Task:
    distinct = int(y.nunique())
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if declared == "binary" and distinct != 2:
        raise DataError(f"task 'binary' needs exactly 2 target values, found {distinct}")
    if declared == "regression" and not numeric:
        raise DataError(
            f"a regression target must be numeric, {y.name!r} holds {y.dtype} values; "
            "use --task binary or multiclass"
        )
    if declared is not None:
        return declared
    if distinct == 2:
        task: Task = "binary"
    elif numeric and (pd.api.types.is_float_dtype(y) or distinct > _MAX_MULTICLASS_INTEGERS):
        task = "regression"
    elif distinct > MAX_INFERRED_CLASSES:
        raise DataError(
            f"target {y.name!r} has {distinct} distinct text values: too many classes to "
            "infer; set --task multiclass if they are classes"
        )
    else:
        task = "multiclass"
    notes.append(f"task {task!r} inferred from {distinct} distinct target values (--task to set)")
    return task


def _assign(
    frame: pd.DataFrame, features: list[str], table: Table, roles: Roles, notes: list[str]
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Categorical and numeric columns, dates turned into numbers and calendar fields."""
    declared_categorical = roles.categorical or table.categorical
    declared_numeric = roles.numeric if roles.numeric is not None else table.numeric
    categorical: list[str] = []
    numeric: list[str] = []
    left_out: list[str] = []
    derived: dict[str, pd.Series] = {}
    for column in features:
        values = frame[column]
        _refuse_nested(values, column)
        if declared_categorical is not None and column in declared_categorical:
            categorical.append(column)
        elif declared_numeric is not None and column in declared_numeric:
            numeric.append(_as_numeric(values, column, derived))
        elif declared_categorical is not None and declared_numeric is not None:
            left_out.append(column)  # both lists given: they are the whole feature set
        elif is_date(values) or pd.api.types.is_timedelta64_dtype(values):
            dates = _calendar(values, column)
            derived.update(dates)
            numeric.append(next(iter(dates)))
            categorical.extend(list(dates)[1:])
            notes.append(f"column {column!r} holds dates: used as {_names(list(dates))}")
        elif pd.api.types.is_numeric_dtype(values) and declared_numeric is None:
            numeric.append(column)
        elif not pd.api.types.is_numeric_dtype(values) and declared_categorical is None:
            refuse_mixed_types(values, column)
            categorical.append(column)
        else:  # its role was declared by listing the others
            left_out.append(column)
    notes.extend(left_out_notes(left_out))
    if derived:
        frame = frame.assign(**derived)
    return frame, categorical, numeric


def left_out_notes(left_out: list[str]) -> list[str]:
    if not left_out:
        return []
    return [
        f"left out, not declared categorical or numeric: {_names(left_out)} "
        "(name them in --categorical or --numeric to use them)"
    ]


def _refuse_nested(values: pd.Series, column: str) -> None:
    if values.dtype != object:
        return
    present = values.dropna()
    nested = present.map(lambda v: isinstance(v, _NESTED))
    if nested.any():
        kind = type(present[nested].iloc[0]).__name__
        raise DataError(
            f"column {column!r} holds nested values ({kind}), not one value per cell; "
            f"flatten it into columns, or leave it out with --ignore {_quote(column)}"
        )


def _as_numeric(values: pd.Series, column: str, derived: dict[str, pd.Series]) -> str:
    """A declared numeric column; dates count as days, durations as seconds."""
    if pd.api.types.is_numeric_dtype(values):
        return column
    if is_date(values) or pd.api.types.is_timedelta64_dtype(values):
        days = next(iter(_calendar(values, column).items()))
        derived[days[0]] = days[1]
        return days[0]
    raise DataError(
        f"column {column!r} is declared numeric but holds non-numeric values such as "
        f"{values.dropna().iloc[0]!r}; declare it categorical or clean it"
    )


def is_date(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if isinstance(values.dtype, pd.CategoricalDtype):  # the distinct values decide
        return is_date(pd.Series(values.cat.categories)) if len(values.cat.categories) else False
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        present = values.dropna()
        if len(present) == 0 or not _ISO_DATE.match(str(present.iloc[0])):
            return False
        parsed = pd.to_datetime(present, format="ISO8601", errors="coerce", utc=True)
        return bool(parsed.notna().all())
    return False


def _calendar(values: pd.Series, column: str) -> dict[str, pd.Series]:
    """Days since 1970 (numeric) first, then month and weekday (categorical); a duration
    becomes its seconds alone."""
    if pd.api.types.is_timedelta64_dtype(values):
        return {f"{column}.seconds": values.dt.total_seconds()}
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(values.cat.categories.dtype)
    dates = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return {
        f"{column}.days": (dates - epoch).dt.total_seconds() / 86_400,
        f"{column}.month": dates.dt.month.astype("Int64"),
        f"{column}.weekday": dates.dt.day_of_week.astype("Int64"),
    }


def refuse_mixed_types(values: pd.Series, column: str) -> None:
    """A text column that is mostly numbers is usually a numeric column with a few bad cells."""
    refuse_mixed_distinct(*_distinct_present(values), column)


def refuse_mixed_distinct(distinct: pd.Series, counts: np.ndarray, column: str) -> None:
    """`refuse_mixed_types` from the column's distinct values and how often each occurs."""
    # The most frequent values that hold over a tenth of the cells: all text, and the
    # column is text (no need to convert a million distinct values to tell)
    order = np.argsort(-counts, kind="stable")
    head = order[: int(np.searchsorted(np.cumsum(counts[order]), 0.1 * counts.sum())) + 1]
    if pd.to_numeric(distinct.iloc[head], errors="coerce").isna().all():
        return
    not_numbers = pd.to_numeric(distinct, errors="coerce").isna().to_numpy()
    present, text = int(counts.sum()), int(counts[not_numbers].sum())
    if present and 0 < text <= 0.1 * present:
        example = distinct[not_numbers].iloc[0]
        raise DataError(
            f"column {column!r} mixes numbers and text ({text} of {present} values are not "
            f"numbers, e.g. {example!r}); clean it, or declare it with --categorical / --numeric"
        )


def _distinct_present(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The distinct non-missing values and how often each occurs (a categorical's own
    dictionary: converting its distinct values, not every row, is what keeps a table of
    millions of rows fast)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        counts = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories))
        return pd.Series(values.cat.categories), counts
    counted = values.value_counts(dropna=True, sort=False)
    return pd.Series(counted.index), counted.to_numpy()


def _drop_constant(
    frame: pd.DataFrame, categorical: list[str], numeric: list[str], notes: list[str]
) -> tuple[list[str], list[str]]:
    """A column with one value carries nothing (missing counts as a value for categories,
    while missing numbers are filled in and so vanish)."""
    constant = [
        c
        for c in frame.columns  # in the table's order
        if (c in categorical or c in numeric) and is_constant(frame[c], c in categorical)
    ]
    notes.extend(constant_notes(constant))
    return (
        [c for c in categorical if c not in constant],
        [c for c in numeric if c not in constant],
    )


def _clean_numeric(frame: pd.DataFrame, numeric: list[str], notes: list[str]) -> pd.DataFrame:
    cleaned = {c: finite(frame[c]) for c in numeric}
    notes.extend(missing_notes({c: int(v.isna().sum()) for c, v in cleaned.items()}))
    return frame.assign(**cleaned) if cleaned else frame


def is_constant(values: pd.Series, categorical: bool) -> bool:
    """One value at most: missing counts as a value for categories, while missing numbers
    are filled in and so vanish."""
    if categorical:
        return values.nunique(dropna=False) < 2
    return _single_value(finite(values).to_numpy())


def constant_notes(constant: list[str]) -> list[str]:
    return [f"left out, constant or empty: {_names(constant)}"] if constant else []


def missing_notes(missing: dict[str, int]) -> list[str]:
    """Numeric columns' counts of missing or infinite values, columns in the table's order."""
    missing = {c: n for c, n in missing.items() if n}
    if not missing:
        return []
    counts = ", ".join(f"{c!r}: {n}" for c, n in list(missing.items())[:8])
    more = f" and {len(missing) - 8} more columns" if len(missing) > 8 else ""
    return [f"missing or infinite numbers filled with the training median ({counts}{more})"]


def _single_value(values: np.ndarray) -> bool:
    """At most one distinct value besides NaN (min and max: no hashing of millions)."""
    present = values[~np.isnan(values)]
    return len(present) == 0 or present.min() == present.max()


def finite(values: pd.Series) -> pd.Series:
    """Floats with NaN for missing and infinite values: float32 and float64 columns keep
    their type (a Parquet reader keeps exact float32s narrow), others become float64
    (booleans 0/1); the column itself when it has no infinities (no copy of a large table)."""
    as_float = values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)
    if not np.isinf(as_float.to_numpy()).any():
        return as_float
    return as_float.where(np.isfinite(as_float))


def _note_id_like(frame: pd.DataFrame, categorical: list[str], notes: list[str]) -> None:
    notes.extend(id_like_note(c) for c in categorical if is_id_like(frame[c]))


def is_id_like(values: pd.Series) -> bool:
    return looks_like_ids(values.nunique(), len(values))


def looks_like_ids(distinct: int, rows: int) -> bool:
    """A distinct value in nearly every row (of enough rows for that not to be chance)."""
    return rows >= _ID_LIKE_ROWS and distinct >= 0.9 * rows


def id_like_note(column: str) -> str:
    return (
        f"column {column!r} has a distinct value in nearly every row, so it can only "
        f"be memorised; consider --ignore {_quote(column)} (or embeddings.hash_buckets)"
    )


def _names(columns: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(c) for c in columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _quote(column: str) -> str:
    """A column name as the user would type it after a CLI option."""
    return column if re.fullmatch(r"[\w.-]+", column) else repr(column)
