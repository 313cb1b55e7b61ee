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

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from edas_agent.evaluators.base import Task
from edas_agent.evaluators.tabular.columns import DataError, Prepared, Roles, Table, prepare
from edas_agent.evaluators.tabular.settings import BUILTIN_ADULT, DataSpec

__all__ = ["DataError", "DataSpec", "EncodedDataset", "Part", "Table", "load"]

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
    try:
        prepared = prepare(table, roles)
        train_idx, val_idx, test_idx = _split(prepared.frame, spec, seed)
    except DataError as exc:
        raise DataError(f"{table.source or table.name}: {exc}") from None
    return _encode(prepared, table.name, train_idx, val_idx, test_idx)


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
    frame = _read_file(path, pd.read_parquet if parquet else pd.read_csv)
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
    frame, task = prepared.frame, prepared.task
    categorical, numeric = prepared.categorical, prepared.numeric
    cat_codes, cardinalities = _encode_categorical(frame, categorical, train_idx)
    numeric_views = _encode_numeric(frame, numeric, train_idx)
    y, classes, mean, std = _encode_target(frame[prepared.target], task, train_idx)

    def part(idx: np.ndarray) -> Part:
        return Part(
            categorical=torch.from_numpy(cat_codes[idx]),
            numeric={t: torch.from_numpy(v[idx]) for t, v in numeric_views.items()},
            y=torch.from_numpy(y[idx]),
        )

    return EncodedDataset(
        name=name,
        task=task,
        categorical_fields=categorical,
        numeric_fields=numeric,
        cardinalities=cardinalities,
        classes=classes,
        target_mean=mean,
        target_std=std,
        train=part(train_idx),
        val=part(val_idx),
        test=part(test_idx),
        notes=tuple(prepared.notes),
    )


def _encode_categorical(
    frame: pd.DataFrame, columns: list[str], train_idx: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """Ids by training frequency (1 = most frequent); unseen in training or missing: 0 if
    never seen, else missing is a category of its own."""
    codes = np.zeros((len(frame), len(columns)), dtype=np.int64)
    cardinalities = []
    for j, column in enumerate(columns):
        raw, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        raw = np.where(raw < 0, len(uniques), raw)  # missing values form one category
        counts = np.bincount(raw[train_idx], minlength=len(uniques) + 1)
        order = np.argsort(-counts, kind="stable")  # most frequent first, then first seen
        rank = np.empty_like(order)
        rank[order] = np.arange(1, len(order) + 1)
        codes[:, j] = np.where(counts[raw] > 0, rank[raw], 0)
        cardinalities.append(int((counts > 0).sum()) + 1)
    return codes, cardinalities


def _encode_numeric(
    frame: pd.DataFrame, columns: list[str], train_idx: np.ndarray
) -> dict[str, np.ndarray]:
    raw = frame[columns].astype(np.float64).to_numpy() if columns else np.zeros((len(frame), 0))
    observed = ~np.isnan(raw[train_idx])
    # A column missing throughout the training split is filled with 0 (it still varies
    # elsewhere, or columns.py would have left it out).
    medians = np.array(
        [np.median(raw[train_idx, j][observed[:, j]]) if observed[:, j].any() else 0.0
         for j in range(raw.shape[1])]
    )  # fmt: skip
    raw = np.where(np.isnan(raw), medians, raw)
    views = {"standard": raw, "log_standard": np.sign(raw) * np.log1p(np.abs(raw))}
    encoded = {name: _standardise(view, train_idx) for name, view in views.items()}
    encoded["quantile"] = _quantiles(raw, train_idx)
    return encoded


def _quantiles(values: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
    """Each value's position in the training distribution, in [0, 1): bucket b of B holds
    quantiles [b/B, (b+1)/B), so any bucket count is one multiplication away."""
    out = np.empty(values.shape, dtype=np.float32)
    for j in range(values.shape[1]):
        reference = np.sort(values[train_idx, j])
        ranks = np.searchsorted(reference, values[:, j], side="right")
        out[:, j] = np.minimum(ranks / max(len(reference), 1), np.nextafter(1.0, 0.0))
    return out


def _standardise(values: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
    mean = values[train_idx].mean(axis=0)
    std = values[train_idx].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return ((values - mean) / std).astype(np.float32)


def _encode_target(
    y: pd.Series, task: Task, train_idx: np.ndarray
) -> tuple[np.ndarray, list[str], float, float]:
    if task == "regression":
        values = y.to_numpy(dtype=np.float64)
        mean, std = float(values[train_idx].mean()), float(values[train_idx].std() or 1.0)
        return ((values - mean) / std).astype(np.float32), [], mean, std
    classes = sorted(y.astype(str).unique())
    codes = y.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    dtype = np.float32 if task == "binary" else np.int64
    return codes.astype(dtype), classes, 0.0, 1.0
