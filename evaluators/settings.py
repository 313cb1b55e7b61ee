"""Settings of any evaluator, as the run's config embeds them (`evaluator:` and `space:`),
the built-in tabular evaluator's table among them (`evaluator.data`, written `data:` too).

Here, not in the agent, because evaluators read them (the tabular one its device, threads
and timeout) and evaluators never import the agent. Plain pydantic models with no torch
import, so the config loads without an evaluator's machinery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edas_agent.evaluators.tabular.settings import DataSpec


class EvaluatorSettings(BaseModel):
    """Which evaluator trains the learners (the built-in tabular one, a Python plugin or a
    command) and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plugin: str | None = Field(
        None,
        description="'module:function' returning your Evaluator (or a FunctionEvaluator); "
        "called with seed= the run seed and the keyword arguments in evaluator.options.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the plugin's function."
    )
    command: str | None = Field(
        None,
        description="A shell command that trains one learner: {arch} (the architecture's "
        "JSON file), {seed} and {out} (the NPZ to write, with val and test predictions) are "
        "filled in. Needs evaluator.space and evaluator.targets.",
    )
    space: str | None = Field(
        None, description="command: the space as a JSON Schema file with bounds and defaults."
    )
    targets: str | None = Field(
        None, description="command: an NPZ with y_val and y_test (and optionally task)."
    )
    workdir: str | None = Field(
        None,
        description="Where the command runs, and where a plugin module is imported from "
        "(besides installed packages); the folder `run` starts in if unset.",
    )

    data: DataSpec = Field(
        default_factory=DataSpec,
        description="The built-in tabular evaluator's table (also written `data:` at the top).",
    )
    learners: int = Field(2, ge=2, le=64, description="Learners trained per candidate (k).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where learners train.")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="bf16: forward passes under bfloat16 autocast (parameters, optimiser, "
        "losses and every statistic stay float32/float64); for GPUs with bf16 units.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=512,
        description="CPU threads for torch, fixed. Unset: before each training, the cores "
        "other processes left free since the last one (all of them on a quiet machine; "
        "at least one), so two runs on one machine share it instead of stalling each other.",
    )
    fuse: Literal["auto", "padded", "same_shapes", "off"] = Field(
        "auto",
        description="Train the full trainings a round hands over at once as one program "
        "(tabular: evaluators/tabular/fused.py); each learner's predictions are those it "
        "gives alone, to float rounding. same_shapes: candidates whose parameters have the "
        "same shapes (they may differ in learning rate, weight decay, epochs, bagging, "
        "numeric transform, embedding penalty); padded: also tower widths, cross layers "
        "and dropout, zero-padded to the widest; off: one after another. auto: padded on "
        "a GPU, off on a CPU (where a learner's step is its own arithmetic, not launches: "
        "fused rounds measured 0.7 to 1.1 times as fast, performance page).",
    )
    fuse_memory_mb: float = Field(
        2048,
        gt=0,
        description="Most memory one fused group of learners may hold while training "
        "(parameters, optimiser moments, a batch's activations); a larger round is split.",
    )
    fuse_learners: int = Field(
        16,
        ge=2,
        le=4096,
        description="Most learners in one fused group. A group's results arrive together, "
        "so this is also how often verify saves members; on a CPU, groups beyond 16 "
        "learners gained little (performance page).",
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="Fail a candidate whose training takes longer (command: each learner's "
        "run of the command).",
    )

    @field_validator("fuse", mode="before")
    @classmethod
    def _yaml_reads_off_as_false(cls, value: Any) -> Any:
        """YAML reads a bare `off` (in a file or `--set evaluator.fuse=off`) as false."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="before")
    @classmethod
    def _code_runs_where_started(cls, data: Any) -> Any:
        has_code = data.get("command") or data.get("plugin") if isinstance(data, dict) else False
        if has_code and not data.get("workdir"):
            return {**data, "workdir": str(Path.cwd())}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> EvaluatorSettings:
        if self.plugin and self.command:
            raise ValueError("evaluator.plugin and evaluator.command exclude each other")
        if self.plugin and ":" not in self.plugin:
            raise ValueError("evaluator.plugin is 'module:function', e.g. 'mypkg.search:make'")
        if self.command:
            missing = [k for k in ("space", "targets") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"evaluator.command needs evaluator.{' and evaluator.'.join(missing)}"
                )
            absent = [f"{{{k}}}" for k in ("arch", "seed", "out") if f"{{{k}}}" not in self.command]
            if absent:
                raise ValueError(f"evaluator.command must contain {', '.join(absent)}")
        elif self.space or self.targets:
            raise ValueError("evaluator.space and evaluator.targets belong to evaluator.command")
        return self

    @field_validator("space", "targets", "workdir")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        # Stored absolute in the run's config, so resume and verify find the files from
        # any folder.
        return None if path is None else str(Path(path).expanduser().resolve())


class SpaceSettings(BaseModel):
    """Caps on candidates, checked before any training (over the cap: status failed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_params: int | None = Field(None, ge=1, description="Trainable parameters per learner.")
    max_flops: int | None = Field(None, ge=1, description="Forward FLOPs per example.")
