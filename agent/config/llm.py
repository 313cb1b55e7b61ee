"""Who proposes edits: the builtin proposer, random search, or an LLM backend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edas_agent.config.section import Section

Provider = Literal[
    "builtin", "random", "optuna", "openai", "openai-compatible", "anthropic", "replay"
]

# The providers that call a language model's endpoint (and so read prompts/)
SERVER_PROVIDERS = ("openai", "openai-compatible", "anthropic")

DEFAULT_MODELS: dict[str, str] = {
    "builtin": "builtin",
    "random": "random",
    "openai": "gpt-4.1-mini",
    "openai-compatible": "local-model",
    "anthropic": "claude-sonnet-4-5",
    "replay": "replay",
    "optuna": "tpe",
}
DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "openai-compatible": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


class Price(Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class LLMSettings(Section):
    provider: Provider = Field(
        "builtin",
        description="Who proposes edits. random draws whole architectures from the space "
        "(random search, to compare with); optuna asks an Optuna sampler (model: tpe, cmaes, "
        "qmc, random, or nsga2 with FLOPs per example as a second objective) for whole "
        "architectures and tells it the gate's predicted E_M.",
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
    max_failed_calls: int = Field(
        3,
        ge=1,
        le=1000,
        description="Stop the run (non-zero exit, resumable) after this many LLM calls in a "
        "row failed after their retries: a server that went away is not a search outcome.",
    )
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
    place: Literal["auto", "any", "rotate"] = Field(
        "auto",
        description="any: the answer may edit any place of the architecture. rotate: each "
        "call offers one editable place, in turn (a fixed order), and the model chooses its "
        "value: small local models otherwise edit the same place round after round. auto: "
        "rotate for openai-compatible servers (local models), any for openai and anthropic.",
    )
    proposals_per_round: int = Field(
        1, ge=1, le=16, description="Distinct proposals asked for per LLM call."
    )
    history: int = Field(12, ge=0, le=200, description="Recent outcomes shown in the prompt.")
    near_misses: int = Field(
        5,
        ge=0,
        le=50,
        description="Older proposals (before the recent history) shown because their first "
        "learners predicted a lower E_M than their baseline before a guard stopped them, the "
        "largest predicted gains first; with them, the places already edited on the current "
        "baseline and the values tried. 0: neither.",
    )
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

    @property
    def prompts_a_model(self) -> bool:
        """The proposer renders prompts/ for a language model (the others never read them)."""
        return self.provider in SERVER_PROVIDERS

    def resolved_model(self) -> str:
        return self.model or DEFAULT_MODELS[self.provider]

    def resolved_place(self) -> str:
        """llm.place with auto decided: a local server's model is usually small (measured
        in docs/pages/guides/llm-backends.md: one place edited in ten rounds, left free)."""
        if self.place != "auto":
            return self.place
        return "rotate" if self.provider == "openai-compatible" else "any"

    def resolved_key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)
