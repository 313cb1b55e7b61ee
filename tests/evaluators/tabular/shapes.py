"""The table shapes a user can bring, each written to a file: the catalogue that
test_table_shapes.py trains or expects refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from edas_agent.evaluators.tabular.space import Architecture

ROWS = 400
FAST = Architecture.model_validate(
    {"tower": {"widths": [16]}, "training": {"epochs": 1, "batch_size": 256}}
)
rng = np.random.default_rng


def signal(rows: int, seed: int = 0) -> np.ndarray:
    return rng(seed).normal(size=rows)


def binary(score: np.ndarray) -> np.ndarray:
    return np.where(score + rng(1).normal(size=len(score)) * 0.5 > 0, "yes", "no")


def classes(score: np.ndarray, n: int) -> np.ndarray:
    cuts = np.quantile(score, np.linspace(0, 1, n + 1)[1:-1])
    return np.array([f"class {i}" for i in np.digitize(score, cuts)])


def numeric_frame(rows: int = ROWS, columns: int = 3) -> pd.DataFrame:
    data = rng(2).normal(size=(rows, columns))
    return pd.DataFrame(data, columns=[f"x{i}" for i in range(columns)])


def categorical_frame(rows: int = ROWS) -> pd.DataFrame:
    r = rng(3)
    return pd.DataFrame(
        {"colour": r.choice(["red", "green", "blue"], rows), "size": r.choice(list("SMLX"), rows)}
    )


def target_of(frame: pd.DataFrame) -> np.ndarray:
    """A score that depends on the frame's first column, whatever its type."""
    first = frame.iloc[:, 0]
    if pd.api.types.is_numeric_dtype(first):
        return first.fillna(0).to_numpy(dtype=float) + 0.3 * signal(len(frame), 9)
    codes = pd.factorize(first)[0].astype(float)
    return codes - codes.mean() + 0.3 * signal(len(frame), 9)


@dataclass
class Shape:
    """One table: its frame, how it is written, the data options, and what must happen."""

    name: str
    build: Callable[[], pd.DataFrame | None]  # None: an empty file
    target: str = "y"
    options: dict = field(default_factory=dict)
    suffix: str = ".csv"
    refused: str | None = None  # a regex the one-line error must match
    note: str | None = None  # a regex one of the loading notes must match
    task: str | None = None  # the task that must be inferred
    writer: Callable[[Path], None] | None = None  # for files pandas cannot write

    def write(self, folder: Path) -> Path:
        path = folder / f"table{self.suffix}"
        frame = None if self.writer else self.build()
        if self.writer:
            self.writer(path)
        elif frame is None:
            path.write_text("")
        elif self.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        return path


def with_target(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    score = target_of(frame)
    y = {
        "binary": lambda: binary(score),
        "multiclass": lambda: classes(score, 4),
        "regression": lambda: score,
    }[kind]()
    return frame.assign(y=y)


def tasks(name: str, build: Callable[[], pd.DataFrame], **kwargs) -> list[Shape]:
    return [
        Shape(f"{name}-{kind}", lambda kind=kind: with_target(build(), kind), task=kind, **kwargs)
        for kind in ("binary", "multiclass", "regression")
    ]


def with_missing(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[::7, "x0"] = np.nan
    frame.loc[::5, "colour"] = None
    return frame


def mixed_columns() -> pd.DataFrame:
    return pd.concat([numeric_frame(), categorical_frame()], axis=1)


def nested_parquet(path: Path) -> None:
    frame = with_target(numeric_frame(), "binary")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    tags = pa.array([[i % 3, i % 5] for i in range(ROWS)])
    pq.write_table(table.append_column("tags", tags), path)


def repeated_parquet(path: Path) -> None:
    arrays = [pa.array(signal(ROWS)), pa.array(signal(ROWS, 4)), pa.array(binary(signal(ROWS)))]
    pq.write_table(pa.Table.from_arrays(arrays, names=["x", "x", "y"]), path)


def dates(text: bool) -> pd.DataFrame:
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng(5).integers(0, 700, ROWS), unit="D")
    frame = numeric_frame(columns=1).assign(when=days.strftime("%Y-%m-%d") if text else days)
    return with_target(frame, "binary")


SHAPES: list[Shape] = [
    *tasks("numeric-only", numeric_frame),
    *tasks("categorical-only", categorical_frame),
    *tasks("mixed", mixed_columns),
    *tasks("missing-values", lambda: with_missing(mixed_columns()), note="training median"),
    Shape("single-numeric-column", lambda: with_target(numeric_frame(columns=1), "binary")),
    Shape(
        "single-categorical-column",
        lambda: with_target(categorical_frame()[["colour"]], "regression"),
    ),
    Shape(
        "constant-column",
        lambda: with_target(mixed_columns(), "binary").assign(always=1.0, same="a"),
        note="constant or empty: 'always', 'same'",
    ),
    Shape(
        "all-missing-column",
        lambda: with_target(mixed_columns(), "binary").assign(empty=np.nan),
        note="constant or empty: 'empty'",
    ),
    Shape(
        "only-feature-is-constant",
        lambda: pd.DataFrame({"c": [1.0] * ROWS, "y": binary(signal(ROWS))}),
        refused="no usable feature columns",
    ),
    Shape(
        "infinite-numbers",
        lambda: with_target(numeric_frame(), "regression").assign(
            x1=lambda f: f.x1.where(f.index % 9 != 0, np.inf)
        ),
        note=r"missing or infinite numbers filled .*'x1': 45",
    ),
    Shape(
        "missing-targets",
        lambda: with_target(mixed_columns(), "binary").assign(
            y=lambda f: f.y.where(f.index % 10 != 0)
        ),
        note="dropped 40 of 400 rows whose target 'y'",
    ),
    Shape(
        "missing-regression-targets",
        lambda: with_target(numeric_frame(), "regression").assign(
            y=lambda f: f.y.where(f.index % 4 != 0, np.inf)
        ),
        note="dropped 100 of 400 rows",
        task="regression",
    ),
    Shape(
        "target-never-present",
        lambda: numeric_frame().assign(y=np.nan),
        refused="target column 'y' has no values",
    ),
    Shape(
        "labels-greater-than",
        lambda: mixed_columns().assign(y=np.where(signal(ROWS) > 0.7, ">50K", "<=50K")),
        task="binary",
    ),
    Shape(
        "boolean-target",
        lambda: mixed_columns().assign(y=signal(ROWS) > 0),
        task="binary",
        suffix=".parquet",
    ),
    Shape("boolean-target-csv", lambda: mixed_columns().assign(y=signal(ROWS) > 0), task="binary"),
    Shape(
        "fifty-classes-one-rare",
        lambda: mixed_columns().assign(y=[f"c{i % 49}" for i in range(ROWS - 1)] + ["rare"]),
        task="multiclass",
    ),
    Shape(
        "ten-integer-classes",
        lambda: numeric_frame().assign(y=np.arange(ROWS) % 10),
        task="multiclass",
    ),
    Shape(
        "thirty-integer-values-inferred-as-regression",
        lambda: numeric_frame().assign(y=np.arange(ROWS) % 30),
        task="regression",
        note="task 'regression' inferred from 30 distinct",
    ),
    Shape(
        "thirty-integer-classes-declared",
        lambda: numeric_frame().assign(y=np.arange(ROWS) % 30),
        options={"task": "multiclass"},
        task="multiclass",
    ),
    Shape(
        "eighty-text-classes",
        lambda: numeric_frame().assign(y=[f"c{i % 80}" for i in range(ROWS)]),
        refused="80 distinct text values: too many classes to infer; set --task multiclass",
    ),
    Shape(
        "binary-declared-with-three-values",
        lambda: numeric_frame().assign(y=np.arange(ROWS) % 3),
        options={"task": "binary"},
        refused="task 'binary' needs exactly 2 target values, found 3",
    ),
    Shape(
        "regression-declared-on-text",
        lambda: numeric_frame().assign(y=binary(signal(ROWS))),
        options={"task": "regression"},
        refused="a regression target must be numeric",
    ),
    *[
        Shape(
            f"regression-scale-{scale:g}",
            lambda scale=scale: with_target(numeric_frame(), "regression").assign(
                y=lambda f: f.y * scale
            ),
            task="regression",
        )
        for scale in (1e-3, 1e6)
    ],
    Shape(
        "regression-large-offset",
        lambda: with_target(numeric_frame(), "regression").assign(y=lambda f: f.y + 1e7),
        task="regression",
    ),
    Shape(
        "regression-heavy-tails",
        lambda: numeric_frame().assign(y=rng(6).standard_t(1.2, ROWS) * 1e3),
        task="regression",
    ),
    Shape("tiny-50-rows", lambda: with_target(mixed_columns().head(50), "binary")),
    Shape(
        "too-few-rows",
        lambda: with_target(mixed_columns().head(6), "regression"),
        refused="6 rows are too few to split",
    ),
    Shape(
        "integer-ids",
        lambda: with_target(numeric_frame(100_000, 2), "binary").assign(id=np.arange(100_000)),
    ),
    Shape(
        "text-ids",
        lambda: with_target(numeric_frame(100_000, 2), "binary").assign(
            id=[f"user{i}" for i in range(100_000)]
        ),
        note="'id' has a distinct value in nearly every row",
        suffix=".parquet",
    ),
    Shape(
        "boolean-columns",
        lambda: with_target(mixed_columns(), "binary").assign(
            flag=signal(ROWS, 7) > 0,
            maybe=pd.array([True, None, False, True] * (ROWS // 4), dtype="boolean"),
        ),
        suffix=".parquet",
    ),
    Shape("dates-parquet", lambda: dates(text=False), suffix=".parquet", note="holds dates"),
    Shape("dates-csv", lambda: dates(text=True), note="'when' holds dates: used as 'when.days'"),
    Shape(
        "durations",
        lambda: with_target(numeric_frame(), "binary").assign(
            wait=pd.to_timedelta(rng(8).integers(0, 100, ROWS), unit="min")
        ),
        suffix=".parquet",
    ),
    Shape(
        "mostly-numbers-with-text",
        lambda: with_target(numeric_frame(), "binary").assign(
            x0=lambda f: [str(round(v, 3)) if i % 50 else "oops" for i, v in enumerate(f.x0)]
        ),
        refused="column 'x0' mixes numbers and text",
    ),
    Shape(
        "half-numbers-half-text",
        lambda: with_target(numeric_frame(), "binary").assign(
            code=[str(i % 7) if i % 2 else f"k{i % 5}" for i in range(ROWS)]
        ),
    ),
    Shape(
        "awkward-names",
        lambda: with_target(
            mixed_columns().rename(
                columns={"x0": "weight (kg)", "x1": "größe", "colour": "a/b", "size": "t~1"}
            ),
            "binary",
        ),
    ),
    Shape(
        "repeated-name",
        lambda: with_target(numeric_frame(), "binary").rename(columns={"x1": "x0"}),
        refused="column 'x0' appears more than once in the header; rename one",
    ),
    Shape(
        "repeated-name-parquet",
        lambda: None,
        writer=repeated_parquet,
        suffix=".parquet",
        refused="'x' appears more",
    ),
    Shape("empty-file", lambda: None, refused="it is empty"),
    Shape("header-only", lambda: numeric_frame().head(0).assign(y=[]), refused="header but no"),
    Shape(
        "nested-parquet",
        lambda: None,
        writer=nested_parquet,
        suffix=".parquet",
        refused=r"column 'tags' holds nested values .* --ignore tags",
    ),
    Shape(
        "nested-parquet-ignored",
        lambda: None,
        writer=nested_parquet,
        suffix=".parquet",
        options={"ignore": ["tags"]},
        note="left out as asked",
    ),
    Shape(
        "declared-categorical-leaves-text-out",
        lambda: with_target(mixed_columns(), "binary"),
        options={"categorical": ["colour"]},
        note="left out, not declared categorical or numeric: 'size'",
    ),
]
