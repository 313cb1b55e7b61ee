"""The run configuration: one YAML file, validated by pydantic, overridable from the CLI.

Unknown keys are errors (a typo must not silently fall back to a default). API keys never
appear here: `llm.api_key_env` names the environment variable that holds the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from edas_agent.config.executor import ExecutorSettings
from edas_agent.config.llm import LLMSettings
from edas_agent.config.search import GateSettings, ScreeningSettings, SearchSettings
from edas_agent.config.section import Section
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.evaluators.settings import EvaluatorSettings, SpaceSettings


class Config(Section):
    name: str = Field("edas", pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Run name.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Data split, learner and proposer seed.")
    budget: int = Field(50, ge=1, le=100_000, description="Proposals to evaluate.")
    members: int = Field(50, ge=2, le=100_000, description="M, the deployed ensemble size.")
    max_train_hours: float | None = Field(
        None,
        gt=0,
        description="Stop once the learners' training has taken this many hours (summed over "
        "learners trained in parallel), after the round that reaches it.",
    )
    max_train_tflop: float | None = Field(
        None,
        gt=0,
        description="Stop once training has cost this many TFLOP (1e12 floating-point "
        "operations, as the evaluator reports them), after the round that reaches it.",
    )
    runs_dir: str = Field("runs", description="Where run folders are created.")
    baseline: str | None = Field(None, description="Architecture JSON to start from.")
    evaluator: EvaluatorSettings = Field(default_factory=EvaluatorSettings)
    space: SpaceSettings = Field(default_factory=SpaceSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)

    @model_validator(mode="before")
    @classmethod
    def _data_belongs_to_the_evaluator(cls, raw: Any) -> Any:
        """`data:` at the top (configs written before it moved, and the short form users
        write) is the tabular evaluator's `evaluator.data`; keys set there win."""
        if not isinstance(raw, dict) or "data" not in raw:
            return raw
        raw = dict(raw)
        data, evaluator = raw.pop("data"), raw.get("evaluator") or {}
        if not isinstance(data, dict) or not isinstance(evaluator, dict):
            raise ValueError("data and evaluator must be mappings")
        raw["evaluator"] = {**evaluator, "data": {**data, **(evaluator.get("data") or {})}}
        return raw

    @model_validator(mode="before")
    @classmethod
    def _budget_buys_evidence(cls, raw: Any) -> Any:
        """A run with a compute budget trains gate.budget_learners learners per decision and
        per confirmation where neither count is set. Resolved here, once, so the run's
        config.yaml says what it used and a resume or `replay` reads it back unchanged."""
        if not isinstance(raw, dict):
            return raw
        if raw.get("max_train_tflop") is None and raw.get("max_train_hours") is None:
            return raw
        evaluator, gate = raw.get("evaluator") or {}, raw.get("gate") or {}
        if not isinstance(evaluator, dict) or not isinstance(gate, dict):
            return raw  # the section's own validation says what is wrong
        learners = gate.get("budget_learners", GateSettings.model_fields["budget_learners"].default)
        if learners is None or "learners" in evaluator or "confirm_learners" in gate:
            return raw
        return {
            **raw,
            "evaluator": {**evaluator, "learners": learners},
            "gate": {**gate, "confirm_learners": learners},
        }

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.gate.sequential and self.gate.max_learners < self.evaluator.learners + 2:
            raise ValueError(
                f"gate.max_learners ({self.gate.max_learners}) leaves no room for sequential "
                f"rounds above evaluator.learners ({self.evaluator.learners})"
            )
        if self.gate.rule == "logloss" and self.evaluator.data.task == "regression":
            raise ValueError("gate.rule 'logloss' needs a classification task")
        if self.search.target == "mixture" and self.gate.rule != "exact":
            raise ValueError(
                "search.target 'mixture' decides on the squared-loss mixture error, which "
                f"gate.rule 'exact' generalises; gate.rule {self.gate.rule!r} cannot be used"
            )
        if self.screening.enabled and self.search.target == "mixture":
            raise ValueError(
                "screening ranks candidates by their own predicted E_M, which does not "
                "decide a mixture search: set screening.enabled false with search.target "
                "mixture"
            )
        survivors = self.screening.survivor_learners
        if survivors is not None and survivors < self.evaluator.learners:
            raise ValueError(
                f"screening.survivor_learners ({survivors}) is below evaluator.learners "
                f"({self.evaluator.learners}): a survivor has that many learners already"
                + _budget_hint(self)
            )
        if self.llm.provider == "replay" and not self.llm.replay_from:
            raise ValueError("llm.provider 'replay' needs llm.replay_from (--replay-from RUN_DIR)")
        if self.llm.provider == "openai-compatible" and not self.llm.base_url:
            raise ValueError("llm.provider 'openai-compatible' needs llm.base_url")
        return self


def _budget_hint(config: Config) -> str:
    if config.max_train_tflop is None and config.max_train_hours is None:
        return ""
    return (
        f" (with a compute budget evaluator.learners is gate.budget_learners, "
        f"{config.gate.budget_learners}, unless set)"
    )


def load_config(
    path: Path | None, overrides: dict[str, Any], sets: dict[str, Any] | None = None
) -> Config:
    """Read the YAML file (if any), apply dotted-key overrides, validate.

    `overrides` maps dotted keys ('llm.provider') to values; None values are ignored so
    CLI options left unset do not override the file. `sets` (--set KEY=VALUE) apply last,
    and there None is a value: `--set gate.min_effect=null` turns the floor off.
    """
    raw = _read_yaml(path) if path else {}
    for dotted, value in overrides.items():
        if value is not None:
            _set_dotted(raw, dotted, value)
    for dotted, value in (sets or {}).items():
        _set_dotted(raw, dotted, value)
    _reject_secrets(raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        raise UserError(f"invalid config: {where}{describe_validation_error(exc)}") from None


def parse_llm_option(option: str) -> dict[str, str]:
    """'--llm provider[:model]' to config overrides; the model may itself contain ':'."""
    provider, _, model = option.partition(":")
    overrides = {"llm.provider": provider}
    if model:
        overrides["llm.model"] = model
    return overrides


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where (line and column, 1-based) and what, without PyYAML's excerpt."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"config {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"config {path} must be a mapping of keys to values")
    return raw


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise UserError(f"config key {key!r} must be a mapping to set {dotted}")
        node = child
    node[leaf] = value


def _reject_secrets(raw: dict[str, Any]) -> None:
    llm = raw.get("llm")
    if isinstance(llm, dict) and "api_key" in llm:
        raise UserError(
            "invalid config: llm.api_key: API keys are read only from environment variables; "
            "put the variable's name in llm.api_key_env instead"
        )
