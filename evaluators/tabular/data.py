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

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from edas_agent.evaluators.tabular.columns import DataError, Roles, Table, prepare
from edas_agent.evaluators.tabular.encoding import EncodedDataset, Part, encode
from edas_agent.evaluators.tabular.settings import BUILTIN_ADULT, DataSpec

__all__ = ["DataError", "DataSpec", "EncodedDataset", "Part", "Table", "load"]

_ADULT_TARGET = "income"
_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


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
    return encode(prepared, name, train_idx, val_idx, test_idx)


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
            column = file.read(columns=[name]).column(0).to_pandas().copy(deep=True)
            columns[name] = _as_float32_if_exact(column)
            pa.default_memory_pool().release_unused()
    return pd.DataFrame(columns, copy=False)  # one block per column, as read


def _as_float32_if_exact(column: pd.Series) -> pd.Series:
    """A float64 column as float32 when float32 holds every value exactly (counts,
    integers below 2^24, halves...): half the memory until it is encoded, and the same
    values, so the same encoding as a CSV of the table gives. Others stay as they are."""
    if column.dtype != np.float64:
        return column
    values = column.to_numpy()
    narrow = values.astype(np.float32)
    if not np.array_equal(narrow, values, equal_nan=True):
        return column
    return pd.Series(narrow, index=column.index, name=column.name, copy=False)


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
