"""Tabular datasets: load a table, split it once from the run seed, encode it into tensors.

Encodings (category ids, numeric standardisation) are fitted on the training split only,
so validation and test statistics are honest. Column roles and cleaning are decided in
`columns.py`; a Parquet file is read and encoded a column at a time (`parquet.py`), other
tables whole. The built-in default is UCI Adult, vendored in `evaluators/tabular/datasets/`
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

import pandas as pd

from edas_agent.evaluators.tabular import parquet
from edas_agent.evaluators.tabular.columns import DataError, Roles, Table, prepare
from edas_agent.evaluators.tabular.encoding import (
    EncodedDataset,
    Part,
    encode,
    give_back_freed_memory,
)
from edas_agent.evaluators.tabular.settings import BUILTIN_ADULT, DataSpec
from edas_agent.evaluators.tabular.splits import sampled, split_rows

__all__ = ["DataError", "DataSpec", "EncodedDataset", "Part", "Table", "load"]

_ADULT_TARGET = "income"


def load(spec: DataSpec, seed: int) -> EncodedDataset:
    """Read, validate, split (from `seed` or the split column) and encode a dataset.

    Raises DataError with one line naming the file, the column and what to do."""
    if by_column := _load_parquet_by_column(spec, seed):
        give_back_freed_memory()
        return by_column
    table = _read(spec)
    task = spec.task or (table.task if spec.target is None else None)  # the built-in target
    roles = Roles(spec.categorical, spec.numeric, spec.ignore, spec.split_column, task)
    name, source = table.name, table.source or table.name
    try:
        prepared = prepare(table, roles)
        del table  # the raw frame: encoding frees the prepared one column by column
        frame = prepared.frame
        split_column = None if spec.split_column is None else frame[spec.split_column]
        splits = split_rows(len(frame), split_column, spec, seed)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    encoded = encode(prepared, name, *sampled(spec, prepared.notes, splits, seed))
    give_back_freed_memory()
    return encoded


def _load_parquet_by_column(spec: DataSpec, seed: int) -> EncodedDataset | None:
    """A Parquet file read and encoded a column at a time (parquet.py); None for other
    tables, and for files whose columns' roles need the whole table to decide."""
    path = Path(spec.path)
    if spec.path == BUILTIN_ADULT or path.suffix != ".parquet":
        return None
    _refuse_repeated_names(path, _read_file(path, parquet.column_names))
    try:
        return parquet.load_by_column(path, spec, seed)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


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
    is_parquet = path.suffix == ".parquet"
    # The header first: pandas renames a repeated CSV column 'x' to 'x.1' silently, and
    # pyarrow's error for a repeated Parquet column does not say which one it is.
    names = parquet.column_names if is_parquet else _csv_names
    _refuse_repeated_names(path, _read_file(path, names))
    frame = _read_file(path, parquet.read_whole if is_parquet else pd.read_csv)
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
