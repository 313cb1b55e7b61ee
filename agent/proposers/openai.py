"""OpenAI Chat Completions: the official API and any server that speaks it.

`openai` asks for JSON-schema structured output. `openai-compatible` (vLLM, Ollama,
llama.cpp server, LM Studio, a LiteLLM proxy) speaks the same wire format at
`llm.base_url`, but servers differ in what they support: with `structured_output: auto` it
tries json_schema, then json_object, then plain JSON extracted from the text, and keeps the
first mode the server accepts for the rest of the run.
"""

from __future__ import annotations

from typing import Any

import openai

from agent.config import LLMSettings
from agent.costs import LLMBudget
from agent.edits import ProposedEdits
from agent.proposers.llm import (
    LLMProposer,
    Reply,
    answer_schema,
    client_options,
    describe_failure,
    parse_text,
)
from agent.proposers.prompts import RenderedPrompt

_MODES = ("json_schema", "json_object", "prompt")


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

    def start(self, prompt: RenderedPrompt) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ]

    def request(self, conversation: list[dict[str, Any]]) -> dict[str, Any]:
        # OpenAI's own newer models take max_completion_tokens; compatible servers max_tokens.
        length_key = "max_tokens" if self.settings.base_url else "max_completion_tokens"
        request = {
            "model": self.model,
            "messages": conversation,
            "temperature": self.settings.temperature,
            length_key: self.settings.max_tokens,
        }
        _set_mode(request, self.mode)
        return request

    def send(self, request: dict[str, Any]) -> Reply:
        response = self.client.chat.completions.create(**request)
        usage = response.usage
        return Reply(
            raw=response.model_dump(mode="json"),
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            answer=response.choices[0].message.content if response.choices else None,
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

    def send(self, request: dict[str, Any]) -> Reply:
        while True:
            try:
                return super().send(request)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if not _about_json_mode(exc) or self.mode == self.modes[-1]:
                    raise
                # The server cannot do this mode: fall back for this and every later call.
                # The request is changed in place, so the transcript shows what was sent.
                self.mode = self.modes[self.modes.index(self.mode) + 1]
                _set_mode(request, self.mode)


class OpenAIProposer(LLMProposer):
    def __init__(self, settings: LLMSettings, budget: LLMBudget, api_key: str):
        super().__init__(OpenAIWire(settings, api_key), settings, budget)


class OpenAICompatibleProposer(LLMProposer):
    def __init__(self, settings: LLMSettings, budget: LLMBudget, api_key: str):
        super().__init__(OpenAICompatibleWire(settings, api_key), settings, budget)


def _set_mode(request: dict[str, Any], mode: str) -> None:
    if mode == "json_schema":
        # Not strict: strict mode forbids the free-typed "value" of a JSON Patch operation.
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "proposals", "schema": answer_schema(), "strict": False},
        }
    elif mode == "json_object":
        request["response_format"] = {"type": "json_object"}
    else:
        request.pop("response_format", None)


def _about_json_mode(exc: openai.APIStatusError) -> bool:
    text = str(getattr(exc, "message", exc)).lower()
    return any(word in text for word in ("response_format", "json", "schema"))
