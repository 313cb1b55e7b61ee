"""OpenAI Chat Completions, and any server that speaks it (vLLM, Ollama, llama.cpp, ...)."""

from __future__ import annotations

from typing import Any

import openai

from agent.config import LLMSettings
from agent.edits import ProposedEdits
from agent.prompts import RenderedPrompt
from agent.proposers.llm import LLMProposer, Reply, answer_schema, parse_text


class OpenAIProposer(LLMProposer):
    provider = "openai"
    label = "OpenAI-compatible"
    auth_errors = (openai.AuthenticationError, openai.PermissionDeniedError)
    not_found_error = openai.NotFoundError
    transient_errors = (openai.APIError,)

    def __init__(self, settings: LLMSettings, api_key: str):
        super().__init__(settings)
        self.client = openai.OpenAI(**self.client_options(api_key))

    def request(self, prompt: RenderedPrompt) -> dict[str, Any]:
        # OpenAI's own newer models take max_completion_tokens; compatible servers max_tokens.
        length_key = "max_tokens" if self.settings.base_url else "max_completion_tokens"
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "temperature": self.settings.temperature,
            length_key: self.settings.max_tokens,
            # Not strict: strict mode forbids the free-typed "value" of a JSON Patch operation.
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "proposal", "schema": answer_schema(), "strict": False},
            },
        }

    def send(self, request: dict[str, Any]) -> Reply:
        response = self.client.chat.completions.create(**request)
        usage = response.usage
        return Reply(
            raw=response.model_dump(mode="json"),
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            answer=response.choices[0].message.content if response.choices else None,
        )

    def parse(self, answer: Any) -> ProposedEdits:
        return parse_text(answer)
