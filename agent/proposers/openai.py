"""OpenAI Chat Completions: the official API and any server that speaks it.

`openai` asks for JSON-schema structured output. `openai-compatible` (vLLM, Ollama,
llama.cpp server, llama-cpp-python, LM Studio, a LiteLLM proxy) speaks the same wire format
at `llm.base_url`, but servers differ in what they support: with `structured_output: auto`
it tries json_schema, then json_object (with the schema beside it, which llama-cpp-python's
server enforces), then plain JSON extracted from the text, and keeps the first mode the
server accepts for the rest of the run. A server says it cannot do a mode in an error of
any status (400, 422, and 500 from llama-cpp-python): the error's text decides, not its
status, and such an error steps down at once instead of being retried.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import openai

from edas_agent.config import LLMSettings
from edas_agent.proposers.base import ProposerStopped
from edas_agent.proposers.edits import ProposedEdits
from edas_agent.proposers.grammar import gbnf, longest_sentence
from edas_agent.proposers.llm import (
    LLMProposer,
    Reply,
    answer_schema,
    client_options,
    describe_failure,
    parse_text,
)
from edas_agent.proposers.prompts import RenderedPrompt
from edas_agent.training.costs import LLMBudget

_MODES = ("json_schema", "json_object", "prompt")
_CHARS_PER_TOKEN = 3.0  # until the server has counted a prompt: English prose runs about 4
_ANSWER_MARGIN = 64  # tokens beyond the longest schema-valid answer: whitespace, a template
_SMALLEST_ANSWER = 256


class OpenAIWire:
    provider = "openai"
    label = "OpenAI"
    not_found_errors = (openai.NotFoundError,)
    fatal_errors = (openai.AuthenticationError, openai.PermissionDeniedError, *not_found_errors)
    api_error = openai.APIError
    describe_failure = staticmethod(describe_failure)

    def __init__(self, settings: LLMSettings, api_key: str):
        self.settings = settings
        self.model = settings.resolved_model()
        self.client = openai.OpenAI(**client_options(settings, api_key))
        self.mode = "json_schema"
        self.schema = answer_schema()  # this round's: typed by the space (start)
        self.calls = 0  # requests built, for the sampling seed

    def start(self, prompt: RenderedPrompt) -> list[dict[str, Any]]:
        self.schema = prompt.answer_schema or answer_schema()
        system = [{"role": "system", "content": prompt.system}] if prompt.system else []
        return [*system, {"role": "user", "content": prompt.user}]

    def request(self, conversation: list[dict[str, Any]]) -> dict[str, Any]:
        # OpenAI's own newer models take max_completion_tokens; compatible servers max_tokens.
        length_key = "max_tokens" if self.settings.base_url else "max_completion_tokens"
        request = {
            "model": self.model,
            "messages": conversation,
            "temperature": self.settings.temperature,
            length_key: self.settings.max_tokens,
        }
        _set_mode(request, self.mode, self.schema)
        if self.settings.seed is not None:
            request["seed"] = self.settings.seed + self.calls
        self.calls += 1
        return request

    def send(self, request: dict[str, Any]) -> Reply:
        response = self.client.chat.completions.create(**request)
        usage = response.usage
        return Reply(
            raw=response.model_dump(mode="json"),
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            answer=response.choices[0].message.content if response.choices else None,
            mode=self.mode,
            truncated=bool(response.choices) and response.choices[0].finish_reason == "length",
        )

    def parse(self, answer: Any) -> list[ProposedEdits]:
        return parse_text(answer)

    def follow_up(self, conversation: list[dict[str, Any]], reply: Reply, feedback: str):
        return [
            *conversation,
            {"role": "assistant", "content": reply.answer or ""},
            {"role": "user", "content": feedback},
        ]


class OpenAICompatibleWire(OpenAIWire):
    provider = "openai-compatible"
    label = "OpenAI-compatible"

    def __init__(self, settings: LLMSettings, api_key: str):
        super().__init__(settings, api_key)
        auto = settings.structured_output == "auto"
        self.modes = list(_MODES) if auto else [settings.structured_output]
        self.mode = self.modes[0]
        self.chars_per_token = _CHARS_PER_TOKEN  # learnt from the server's own counts
        self.refusals: list[dict[str, Any]] = []  # requests refused for their mode, to log

    def take_refusals(self) -> list[dict[str, Any]]:
        """The requests the server refused for their structured-output mode since the
        last call: each was a call, and goes into the transcript."""
        taken, self.refusals = self.refusals, []
        return taken

    def request(self, conversation: list[dict[str, Any]]) -> dict[str, Any]:
        request = super().request(conversation)
        request["max_tokens"] = self.answer_limit(conversation)
        return request

    def answer_limit(self, conversation: list[dict[str, Any]]) -> int:
        """llm.max_tokens, lowered to the longest answer the schema allows (a runaway answer
        is cut, not waited for) and to the room the prompt leaves in the server's context."""
        settings, limit = self.settings, self.settings.max_tokens
        if settings.cap_answer and self.mode != "prompt":
            # The generic answer schema (no space given) has no longest answer: no cap.
            with contextlib.suppress(ValueError):
                limit = min(limit, longest_sentence(self.schema) + _ANSWER_MARGIN)
        if settings.context_tokens is not None:
            prompt = _characters(conversation)
            room = settings.context_tokens - int(prompt / self.chars_per_token * 1.05) - 32
            if room < _SMALLEST_ANSWER:
                raise ProposerStopped(
                    f"the prompt needs about {settings.context_tokens - room} tokens of the "
                    f"server's {settings.context_tokens} (llm.context_tokens), leaving no room "
                    "for an answer: set llm.prompt: compact, lower llm.history or "
                    "llm.proposals_per_round, or start the server with a larger context"
                )
            limit = min(limit, room)
        return limit

    def learn_token_length(self, request: dict[str, Any], reply: Reply) -> None:
        if reply.input_tokens > 0:
            self.chars_per_token = max(1.0, _characters(request["messages"]) / reply.input_tokens)

    def send(self, request: dict[str, Any]) -> Reply:
        while True:
            try:
                reply = super().send(request)
                self.learn_token_length(request, reply)
                return reply
            except openai.APIStatusError as exc:
                if not _refuses_the_mode(exc) or self.mode == self.modes[-1]:
                    raise
                # The server cannot do this mode: fall back for this and every later call.
                # The request is changed in place, so the transcript shows what was sent.
                previous, self.mode = self.mode, self.modes[self.modes.index(self.mode) + 1]
                reason = _one_line(exc)
                self.refusals.append({"structured_output": previous, "request": dict(request),
                                      "status": exc.status_code, "error": reason})  # fmt: skip
                warnings.warn(
                    f"the {self.label} server at {self.settings.base_url} refused structured "
                    f"output {previous!r} ({reason}); using {self.mode!r} from now on",
                    stacklevel=2,
                )
                _set_mode(request, self.mode, self.schema)


class OpenAIProposer(LLMProposer):
    def __init__(self, settings: LLMSettings, budget: LLMBudget, api_key: str):
        super().__init__(OpenAIWire(settings, api_key), settings, budget)


class OpenAICompatibleProposer(LLMProposer):
    def __init__(self, settings: LLMSettings, budget: LLMBudget, api_key: str):
        super().__init__(OpenAICompatibleWire(settings, api_key), settings, budget)


def _characters(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(message["content"])) for message in messages)


def _set_mode(request: dict[str, Any], mode: str, schema: dict[str, Any]) -> None:
    if mode == "json_schema":
        # Not strict: OpenAI's strict mode refuses schemas with anyOf values and bounds.
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "proposals", "schema": schema, "strict": False},
        }
    elif mode == "grammar":
        # llama.cpp's server and llama-cpp-python's read a GBNF grammar in `grammar`.
        request.pop("response_format", None)
        request["extra_body"] = {"grammar": gbnf(schema)}
    elif mode == "json_object":
        # llama-cpp-python's server constrains decoding to a schema given here; servers
        # that do not know the key ignore it.
        request["response_format"] = {"type": "json_object", "schema": schema}
    else:
        request.pop("response_format", None)
    if mode != "grammar":
        request.pop("extra_body", None)


# Errors that say something else than "this mode is not supported", whatever their text.
_NOT_ABOUT_MODES = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
    openai.RateLimitError,
    openai.ConflictError,
)


def _refuses_the_mode(exc: openai.APIStatusError) -> bool:
    """Does the error (of any status) name the response format or schema?"""
    if isinstance(exc, _NOT_ABOUT_MODES):
        return False
    text = f"{getattr(exc, 'message', '')} {exc.body}".lower()
    return any(word in text for word in ("response_format", "json", "schema", "grammar"))


def _one_line(exc: Exception, limit: int = 400) -> str:
    """The server's whole message on one line (a validation error's reason is often on its
    second line), cut only when very long."""
    text = " ".join(str(getattr(exc, "message", exc)).split())
    return (text[: limit - 3] + "...") if len(text) > limit else text or type(exc).__name__
