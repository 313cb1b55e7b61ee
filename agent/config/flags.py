"""The config as the command line sets it: the data flags every data-loading command
shares, and `--set KEY=VALUE` for any key."""

from __future__ import annotations

from typing import Any

import yaml

from edas_agent.errors import UserError

_COLUMNS = "Comma-separated column names"
# The data options of every command that loads data: (name, config key, help).
DATA_OPTIONS = (
    ("data", "data.path", "'adult', a CSV/CSV.gz/Parquet file, criteo:F, avazu:F, synthetic:N."),
    ("target", "data.target", "Target column of --data."),
    ("task", "data.task", "binary, multiclass or regression (inferred if unset)."),
    ("categorical", "data.categorical", f"{_COLUMNS}: the categorical features."),
    ("numeric", "data.numeric", f"{_COLUMNS}: the numeric features."),
    ("ignore", "data.ignore", f"{_COLUMNS} to leave out of the features."),
    ("split_column", "data.split_column", "Column holding train / val / test for each row."),
    ("sample_rows", "data.sample_rows", "Train on a seeded sample of this many training rows."),
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
