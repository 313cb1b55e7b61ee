"""The run configuration: one YAML file, validated by pydantic, overridable from the CLI.

Unknown keys are errors (a typo must not silently fall back to a default). API keys never
appear here: `llm.api_key_env` names the environment variable that holds the key.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edas_agent.door import DataSpec, EvaluatorSettings, SpaceSettings
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.executors import ExecutorSettings
from edas_agent.gate import Rule

Provider = Literal["builtin", "random", "openai", "openai-compatible", "anthropic", "replay"]

DEFAULT_MODELS: dict[str, str] = {
    "builtin": "builtin",
    "random": "random",
    "openai": "gpt-4.1-mini",
    "openai-compatible": "local-model",
    "anthropic": "claude-sonnet-4-5",
    "replay": "replay",
}
DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "openai-compatible": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateSettings(_Section):
    rule: Rule = Field(
        "exact",
        description="Which rule decides (all are logged): exact or paper on squared loss, or "
        "logloss, the approximate log-loss E_M with logit averaging (classification); single "
        "judges by single-learner error alone (the gate at M = 1, for comparison).",
    )
    confidence: float | None = Field(
        None,
        ge=0.5,
        lt=1.0,
        description="Also require the paired-bootstrap upper bound of delta E_M at this "
        "confidence to be below zero; unset: the point estimate decides.",
    )
    min_effect: float | None = Field(
        0.5,
        ge=0,
        le=10,
        description="Also require the deciding loss to fall by at least this many times the "
        "seed noise measured on the starting baseline (sqrt(2) times the jackknife standard "
        "error of its E_M over its learners), so gains below what reseeding alone moves are "
        "not taken. The starting baseline then gets at least 3 learners. 0.5 by default "
        "(docs/search_value.md); null turns it off.",
    )
    interval_level: float = Field(
        0.9, ge=0.5, lt=1.0, description="Level of the logged interval when confidence is unset."
    )
    resamples: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples.")
    sequential: bool = Field(
        False, description="Train two more learners while the interval straddles zero."
    )
    max_learners: int = Field(
        8, ge=2, le=64, description="Cap on a candidate's learners in sequential mode."
    )
    confirm: bool = Field(
        True, description="Train fresh learners of an accepted candidate and judge again."
    )
    confirm_learners: int = Field(2, ge=1, le=64, description="Fresh learners per confirmation.")


class SearchSettings(_Section):
    target: Literal["single", "mixture"] = Field(
        "single",
        description="What the search improves. single: one architecture, deployed as M "
        "copies (the gate compares E_M). mixture: an ensemble of several architectures; a "
        "candidate is accepted when the best mixture of the current mixture's architectures "
        "plus the candidate predicts a lower M-member error (agent/mixture_gate.py).",
    )
    max_architectures: int | None = Field(
        None,
        ge=1,
        le=64,
        description="search.target mixture: most different architectures in the mixture "
        "(each one is a model to build and serve); unset: no limit.",
    )


class ScreeningSettings(_Section):
    enabled: bool = Field(
        False,
        description="Multi-fidelity screening (agent/staging.py): each round asks for "
        "screening.proposals proposals, trains them all to a small fraction of their "
        "schedule, drops those that cannot beat the baseline and keeps the best 1/eta at "
        "each stage; only the survivors are fully trained and judged by the gate.",
    )
    proposals: int = Field(9, ge=2, le=64, description="Proposals per screened round.")
    eta: int = Field(
        3,
        ge=1,
        le=16,
        description="Successive halving: each stage keeps the best ceil(n / eta) by predicted "
        "E_M; 1 keeps all (only the early-stopping rule prunes).",
    )
    stages: int = Field(
        2,
        ge=1,
        le=4,
        description="Partial-fidelity stages before full training, at fractions "
        "eta^-stages, ..., eta^-1 of the schedule (with eta 1: 1/3, 2/3, ...).",
    )
    prune: bool = Field(
        True,
        description="Stop a candidate when the optimistic end of its predicted final E_M "
        "(early-curve model, screening.level) still fails the gate's bar.",
    )
    level: float = Field(
        0.95, ge=0.5, le=0.99, description="One-sided confidence of that optimistic bound."
    )
    predictor: bool = Field(
        True,
        description="A fused predictor of full-fidelity E_M from cheap signals (size, FLOPs, "
        "a zero-cost proxy, lowest-fidelity E_M and D, distance to evaluated architectures), "
        "refitted after every full evaluation; it orders a round's proposals and, once warm, "
        "ranks the first stage.",
    )
    warm: int = Field(
        6, ge=3, le=1000, description="Full evaluations before the predictor ranks anything."
    )
    skip: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of a round's proposals the warm predictor skips before any "
        "training (recorded as pruned at stage 0); 0 only orders them.",
    )

    stage_seeds: Literal["shared", "independent"] = Field(
        "shared",
        description="shared: stages train the gate's own learners and a survivor goes on "
        "from its last stage to full training; independent: stages train learners of their "
        "own seeds, which the gate never sees, and a survivor's full training starts again "
        "on the gate's seeds (costs that stage's share of a full training more, but the luck "
        "that made a candidate look good early does not also decide its judgement, and an "
        "audit of pruned candidates is unbiased).",
    )
    survivor_learners: int | None = Field(
        None,
        ge=2,
        le=64,
        description="Learners a survivor's decision round uses; unset: evaluator.learners. "
        "More make the gate's judgement of the few survivors less noisy, paid from what "
        "screening saves; with shared stage seeds the extra ones are fresh seeds, which "
        "the early selection did not pick for their luck.",
    )
    reach: int | None = Field(
        None,
        ge=1,
        le=6,
        description="Builtin proposer: a screened round's proposals combine 1, 2, ... up to "
        "this many mutations, in equal shares; unset: one or two, as without screening. "
        "Screening looks at a proposal cheaply, so it can afford farther steps, whose gains "
        "and losses are larger than the seed noise a cheap stage must see through.",
    )
    stage_fractions: list[float] | None = Field(
        None,
        description="Explicit partial fractions of the schedule, increasing, in (0, 1), "
        "instead of eta^-stages ... (e.g. [0.111] with eta 3: one stage at 1/9 keeping a "
        "third); screening.stages is then ignored.",
    )

    @field_validator("stage_fractions")
    @classmethod
    def _increasing(cls, fractions: list[float] | None) -> list[float] | None:
        if fractions is not None and (
            not fractions
            or any(not 0 < f < 1 for f in fractions)
            or any(b <= a for a, b in itertools.pairwise(fractions))
        ):
            raise ValueError("must be increasing fractions strictly between 0 and 1")
        return fractions

    def fractions(self) -> tuple[float, ...]:
        """The partial fractions of the schedule, increasing (full training follows)."""
        if self.stage_fractions is not None:
            return tuple(self.stage_fractions)
        if self.eta == 1:
            return tuple((s + 1) / (self.stages + 1) for s in range(self.stages))
        return tuple(float(self.eta) ** -(self.stages - s) for s in range(self.stages))


class Price(_Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class LLMSettings(_Section):
    provider: Provider = Field(
        "builtin",
        description="Who proposes edits. random draws whole architectures from the space "
        "(random search, to compare with).",
    )
    model: str | None = Field(None, description="Model name; a per-provider default if unset.")
    base_url: str | None = Field(
        None, description="Endpoint of an OpenAI-compatible server (vLLM, Ollama, llama.cpp)."
    )
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key (OPENAI_API_KEY, ...)."
    )
    structured_output: Literal["auto", "json_schema", "json_object", "grammar", "prompt"] = Field(
        "auto",
        description="openai-compatible: how to ask for JSON. auto tries json_schema, then "
        "json_object (with the schema), then plain JSON extraction (prompt), keeping the "
        "first the server accepts. grammar sends a GBNF grammar of the answer in the "
        "`grammar` field (llama.cpp server, llama-cpp-python); it is never tried by auto, "
        "because servers that do not know the field ignore it silently.",
    )
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    seed: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="openai / openai-compatible: sampling seed, sent as seed + the call's "
        "number, so a repair never resamples the same answer and a run against a local "
        "server can be reproduced. Unset: not sent.",
    )
    max_tokens: int = Field(2048, ge=256, le=65536, description="Answer length limit.")
    cap_answer: bool = Field(
        True,
        description="openai-compatible with a structured-output mode: ask for no more tokens "
        "than the longest answer the typed schema allows (plus a margin), so a runaway answer "
        "is cut, not waited for. Turn off for models that think before they answer.",
    )
    context_tokens: int | None = Field(
        None,
        ge=1024,
        description="The server's context window in tokens (llama.cpp's --n_ctx / -c, vLLM's "
        "max_model_len, Ollama's num_ctx). When set, each call asks for at most the room left "
        "after its prompt, and a prompt that leaves no room for an answer stops the run with "
        "advice instead of failing every round.",
    )
    prompt: Literal["full", "compact"] = Field(
        "full",
        description="full shows the space's JSON Schema, the acceptance frontier and the "
        "history; compact leaves out the schema and the frontier (the typed answer schema "
        "carries the bounds) for small models and small contexts.",
    )
    instructions: Literal["system", "user"] = Field(
        "system",
        description="Where the instructions go: a system message, or the top of the user "
        "message for chat formats that drop system messages (llama-cpp-python's gemma).",
    )
    timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Seconds per LLM call. A call that times out is retried with twice the "
        "time: a local server is still finishing the abandoned answer before it starts the "
        "retry.",
    )
    max_retries: int = Field(
        4, ge=0, le=20, description="Retries of a call on connection errors, 408, 429 and 5xx."
    )
    backoff_s: float = Field(
        1.0, gt=0, le=60, description="Base of the exponential backoff with jitter."
    )
    max_wait_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between retries.")
    max_repairs: int = Field(
        2, ge=0, le=10, description="Times a bad answer is sent back with its error."
    )
    edits_per_proposal: int = Field(
        3,
        ge=1,
        le=12,
        description="Most edits in one proposal, in the answer schema. 1 makes every answer "
        "of a server with constrained decoding valid and new by construction (small local "
        "models); more lets a capable model combine edits.",
    )
    proposals_per_round: int = Field(
        1, ge=1, le=16, description="Distinct proposals asked for per LLM call."
    )
    history: int = Field(12, ge=0, le=200, description="Recent outcomes shown in the prompt.")
    prompt_tokens: int = Field(
        8000,
        ge=1000,
        le=1_000_000,
        description="Budget for the user prompt (about 4 characters a token); the oldest "
        "history is summarised to fit.",
    )
    templates: str | None = Field(
        None, description="Folder with your own system.j2 / propose.j2 / repair.j2."
    )
    prices: dict[str, Price] = Field(
        default_factory=dict, description="Per-model prices, added to the built-in table."
    )
    max_cost: float | None = Field(
        None, gt=0, description="Stop the run once LLM calls have cost this many US dollars."
    )
    max_calls: int | None = Field(None, ge=1, description="Stop the run after this many calls.")
    replay_from: str | None = Field(
        None, description="provider 'replay': the run folder whose llm/ transcripts answer."
    )

    def resolved_model(self) -> str:
        return self.model or DEFAULT_MODELS[self.provider]

    def resolved_key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)


class Config(_Section):
    name: str = Field("edas", pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Run name.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Data split, learner and proposer seed.")
    budget: int = Field(50, ge=1, le=100_000, description="Proposals to evaluate.")
    members: int = Field(50, ge=2, le=100_000, description="M, the deployed ensemble size.")
    runs_dir: str = Field("runs", description="Where run folders are created.")
    baseline: str | None = Field(None, description="Architecture JSON to start from.")
    data: DataSpec = Field(default_factory=DataSpec)
    evaluator: EvaluatorSettings = Field(default_factory=EvaluatorSettings)
    space: SpaceSettings = Field(default_factory=SpaceSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.gate.sequential and self.gate.max_learners < self.evaluator.learners + 2:
            raise ValueError(
                f"gate.max_learners ({self.gate.max_learners}) leaves no room for sequential "
                f"rounds above evaluator.learners ({self.evaluator.learners})"
            )
        if self.gate.rule == "logloss" and self.data.task == "regression":
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
            )
        if self.llm.provider == "replay" and not self.llm.replay_from:
            raise ValueError("llm.provider 'replay' needs llm.replay_from (--replay-from RUN_DIR)")
        if self.llm.provider == "openai-compatible" and not self.llm.base_url:
            raise ValueError("llm.provider 'openai-compatible' needs llm.base_url")
        return self


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


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"config {path} is not valid YAML: {exc}") from None
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
