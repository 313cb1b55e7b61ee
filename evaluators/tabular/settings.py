"""The tabular evaluator's settings, as the run's config embeds them.

Plain pydantic models with no torch import, so the config (and the agent with it) loads
without the evaluator's machinery.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evaluators.base import Task

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


class EvaluatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    learners: int = Field(2, ge=2, le=64, description="Learners trained per candidate (k).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where learners train.")
    threads: int | None = Field(
        None, ge=1, le=512, description="CPU threads for torch; all cores when unset."
    )
    timeout_s: float | None = Field(
        None, gt=0, le=86_400, description="Fail a candidate whose training takes longer."
    )


class SpaceSettings(BaseModel):
    """Caps on candidates, checked before any training (over the cap: status failed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_params: int | None = Field(None, ge=1, description="Trainable parameters per learner.")
    max_flops: int | None = Field(None, ge=1, description="Forward FLOPs per example.")
