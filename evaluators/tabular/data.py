"""Tabular datasets: load a table, split it once from the run seed, encode it into tensors.

Encodings (category ids, numeric standardisation) are fitted on the training split only,
so validation and test statistics are honest. The built-in default is UCI Adult, vendored
in `evaluators/tabular/datasets/` (see ATTRIBUTION.md there).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from evaluators.base import Task

BUILTIN_ADULT = "adult"
_ADULT_TARGET = "income"
_FORMATS = ("criteo", "avazu", "synthetic")
_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
_MAX_CLASSES = 50


class DataError(ValueError):
    """A data file or data setting that cannot be used, with a message for the user."""


class DataSpec(BaseModel):
    """Which table to search on and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        BUILTIN_ADULT,
        description="'adult' (built-in); a CSV, CSV.gz or Parquet file; 'criteo:FILE' or "
        "'avazu:FILE' for those formats; 'synthetic:ROWS[:FIELDS]' for generated CTR data.",
    )
    target: str | None = Field(None, description="Target column; required for a plain file.")
    task: Task | None = Field(None, description="Inferred from the target when absent.")
    categorical: list[str] | None = Field(None, description="Inferred from dtypes when absent.")
    numeric: list[str] | None = Field(None, description="Inferred from dtypes when absent.")
    split_column: str | None = Field(
        None, description="Column with train / val / test per row, instead of random fractions."
    )
    val_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)

    @model_validator(mode="after")
    def _file_needs_target(self) -> DataSpec:
        known_format = self.path == BUILTIN_ADULT or self.path.split(":", 1)[0] in _FORMATS
        if not known_format and not self.target:
            raise ValueError("a data file needs a target column (data.target / --target)")
        if self.path.startswith("synthetic:"):
            numbers = self.path.split(":")[1:]
            valid = 1 <= len(numbers) <= 2 and all(n.isdigit() for n in numbers)
            if not valid or int(numbers[0]) < 100 or (len(numbers) == 2 and int(numbers[1]) < 2):
                raise ValueError(
                    "synthetic data is 'synthetic:ROWS' or 'synthetic:ROWS:FIELDS' "
                    "(ROWS >= 100, FIELDS >= 2)"
                )
        return self


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
    target_mean: float  # regression targets are trained standardised and reported in
    target_std: float  # their own units
    train: Part
    val: Part
    test: Part

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1

    def labels(self, part: Part) -> np.ndarray:
        """Targets in the units the statistics are computed in."""
        y = part.y.numpy()
        if self.task == "regression":
            return y.astype(np.float64) * self.target_std + self.target_mean
        return y


@dataclass(frozen=True)
class Table:
    """A raw table and what is known about its columns before inference."""

    frame: pd.DataFrame
    target: str
    name: str
    categorical: list[str] | None = None
    numeric: list[str] | None = None


def load(spec: DataSpec, seed: int) -> EncodedDataset:
    """Read, validate, split (from `seed` or the split column) and encode a dataset."""
    table = _read(spec)
    frame, target = table.frame, table.target
    categorical, numeric = _columns(table, spec)
    task = spec.task or _infer_task(frame[target])
    train_idx, val_idx, test_idx = _split(frame, spec, seed)
    return _encode(
        frame, target, task, categorical, numeric, table.name, train_idx, val_idx, test_idx
    )


def _read(spec: DataSpec) -> Table:
    if spec.path == BUILTIN_ADULT:
        # Opened through importlib.resources so it also reads from a zipped wheel.
        vendored = resources.files("evaluators.tabular") / "datasets" / "adult.csv.gz"
        with vendored.open("rb") as handle:
            frame = pd.read_csv(handle, compression="gzip")
        return Table(frame, spec.target or _ADULT_TARGET, BUILTIN_ADULT)
    kind, _, rest = spec.path.partition(":")
    if kind == "synthetic":
        from evaluators.tabular.synthetic import SyntheticSpec, generate

        rows, _, fields = rest.partition(":")
        shape = {"rows": int(rows)}
        if fields:  # two thirds categorical, as in Criteo's 26 + 13
            shape.update(
                categorical=int(fields) * 2 // 3, numeric=int(fields) - int(fields) * 2 // 3
            )
        frame, categorical, numeric = generate(SyntheticSpec(**shape))
        return Table(frame, "label", spec.path, categorical, numeric)
    if kind in ("criteo", "avazu"):
        return _read_criteo(Path(rest)) if kind == "criteo" else _read_avazu(Path(rest))
    path = Path(spec.path)
    frame = _read_file(
        path, lambda p: pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    )
    assert spec.target is not None  # guaranteed by DataSpec
    return Table(frame, spec.target, path.name)


def _read_file(path: Path, reader) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        frame = reader(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, ImportError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if frame.empty:
        raise DataError(f"{path} has no rows")
    return frame


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


def _columns(table: Table, spec: DataSpec) -> tuple[list[str], list[str]]:
    frame, target = table.frame, table.target
    if target not in frame.columns:
        raise DataError(f"target column {target!r} not in the data; columns: {list(frame.columns)}")
    y = frame[target]
    if y.isna().any():
        raise DataError(f"target column {target!r} has {int(y.isna().sum())} missing values")
    if y.nunique() < 2:
        raise DataError(f"target column {target!r} is constant")
    features = [c for c in frame.columns if c not in (target, spec.split_column)]
    if spec.split_column is not None and spec.split_column not in frame.columns:
        raise DataError(f"split column {spec.split_column!r} not in the data")
    unknown = [c for c in (spec.categorical or []) + (spec.numeric or []) if c not in features]
    if unknown:
        raise DataError(f"unknown feature columns {unknown}; columns: {features}")
    declared_categorical = spec.categorical or table.categorical
    declared_numeric = spec.numeric if spec.numeric is not None else table.numeric
    numeric_dtype = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = declared_categorical or [
        c for c in features if c not in numeric_dtype and c not in (declared_numeric or [])
    ]
    numeric = (
        declared_numeric
        if declared_numeric is not None
        else [c for c in numeric_dtype if c not in categorical]
    )
    for column in numeric:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(f"column {column!r} is declared numeric but holds non-numeric values")
    if declared_categorical is None:
        for column in categorical:
            _refuse_mixed_types(frame[column], column)
    if not categorical and not numeric:
        raise DataError("no feature columns besides the target")
    return categorical, numeric


def _refuse_mixed_types(values: pd.Series, column: str) -> None:
    """A text column that is mostly numbers is usually a numeric column with a few bad cells."""
    present = values.dropna()
    as_numbers = pd.to_numeric(present, errors="coerce")
    not_numbers = as_numbers.isna()
    if len(present) and 0 < not_numbers.sum() and not_numbers.mean() <= 0.1:
        example = present[not_numbers].iloc[0]
        raise DataError(
            f"column {column!r} mixes numbers and text ({int(not_numbers.sum())} of "
            f"{len(present)} values are not numbers, e.g. {example!r}); clean it, or declare it "
            "with --categorical / --numeric"
        )


def _infer_task(y: pd.Series) -> Task:
    distinct = y.nunique()
    if distinct == 2:
        return "binary"
    if pd.api.types.is_float_dtype(y) or (pd.api.types.is_numeric_dtype(y) and distinct > 20):
        return "regression"
    if distinct > _MAX_CLASSES:
        raise DataError(f"target has {distinct} classes; set the task explicitly")
    return "multiclass"


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
        raise DataError(f"{n} rows are too few to split into train, validation and test")
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def _encode(
    frame: pd.DataFrame,
    target: str,
    task: Task,
    categorical: list[str],
    numeric: list[str],
    name: str,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    test_idx: np.ndarray,
) -> EncodedDataset:
    cat_codes, cardinalities = _encode_categorical(frame, categorical, train_idx)
    numeric_views = _encode_numeric(frame, numeric, train_idx)
    y, classes, mean, std = _encode_target(frame[target], task, train_idx)

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
    medians = np.nanmedian(raw[train_idx], axis=0) if columns else np.zeros(0)
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
        if not pd.api.types.is_numeric_dtype(y):
            raise DataError("a regression target must be numeric")
        values = y.to_numpy(dtype=np.float64)
        mean, std = float(values[train_idx].mean()), float(values[train_idx].std() or 1.0)
        return ((values - mean) / std).astype(np.float32), [], mean, std
    classes = sorted(y.astype(str).unique())
    if task == "binary" and len(classes) != 2:
        raise DataError(f"task 'binary' needs exactly 2 target values, found {len(classes)}")
    codes = y.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    dtype = np.float32 if task == "binary" else np.int64
    return codes.astype(dtype), classes, 0.0, 1.0
