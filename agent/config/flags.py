"""The config as the command line sets it: the data flags every data-loading command
shares, and `--set KEY=VALUE` for any key."""

from __future__ import annotations

from typing import Any

import yaml

from edas_agent.errors import UserError

_COLUMNS = "Comma-separated column names"
_DATA = "evaluator.data"  # the tabular evaluator's table
# The data options of every command that loads data: (name, config key, help).
DATA_OPTIONS = (
    ("data", f"{_DATA}.path", "'adult', a CSV/CSV.gz/Parquet, criteo:F, avazu:F, synthetic:N."),
    ("target", f"{_DATA}.target", "Target column of --data."),
    ("task", f"{_DATA}.task", "binary, multiclass or regression (inferred if unset)."),
    ("categorical", f"{_DATA}.categorical", f"{_COLUMNS}: the categorical features."),
    ("numeric", f"{_DATA}.numeric", f"{_COLUMNS}: the numeric features."),
    ("ignore", f"{_DATA}.ignore", f"{_COLUMNS} to leave out of the features."),
    ("split_column", f"{_DATA}.split_column", "Column holding train / val / test for each row."),
    ("sample_rows", f"{_DATA}.sample_rows", "Train on a seeded sample of this many training rows."),
)
LIST_OPTIONS = ("categorical", "numeric", "ignore")


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            overrides[key.strip()] = value
    return overrides
