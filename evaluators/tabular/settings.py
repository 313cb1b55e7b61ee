"""The tabular evaluator's data settings, as the run's config embeds them (`evaluator.data`,
or `data:` at the top of a config file).

Plain pydantic models with no torch import, so the config (and the agent with it) loads
without the evaluator's machinery.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edas_agent.evaluators.base import Task

BUILTIN_ADULT = "adult"
_FORMATS = ("criteo", "avazu", "synthetic")


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
    ignore: list[str] = Field(default_factory=list, description="Columns left out of the features.")
    split_column: str | None = Field(
        None, description="Column with train / val / test per row, instead of random fractions."
    )
    val_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    sample_rows: int | None = Field(
        None,
        ge=2,
        description="Train on a seeded sample of this many rows of the training split "
        "(validation and test stay whole); `verify --full-data` checks winners on all of it.",
    )
    sample_eval_rows: int | None = Field(
        None,
        ge=2,
        description="Judge on a seeded sample of this many rows of the validation split, and "
        "as many of the test split (every learner predicts on them; whole when unset).",
    )
    cache: bool | None = Field(
        None,
        description="Keep the encoded table in the encoded-data cache (none: files of 64 MB "
        "or more and generated tables of a million rows or more); `edas-agent cache` lists "
        "and clears it.",
    )

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
