"""Anthropic Messages API; the answer comes back as the input of a forced tool call."""

from __future__ import annotations

from typing import Any

import anthropic

from agent.config import LLMSettings
from agent.edits import ProposedEdits
from agent.prompts import RenderedPrompt
from agent.proposers.llm import LLMProposer, MalformedAnswer, Reply, answer_schema, parse_object

_TOOL = "propose_edits"


class AnthropicProposer(LLMProposer):
    provider = "anthropic"
    label = "Anthropic"
    auth_errors = (anthropic.AuthenticationError, anthropic.PermissionDeniedError)
    not_found_error = anthropic.NotFoundError
    transient_errors = (anthropic.APIError,)

    def __init__(self, settings: LLMSettings, api_key: str):
        super().__init__(settings)
        self.client = anthropic.Anthropic(**self.client_options(api_key))

    def request(self, prompt: RenderedPrompt) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            "system": prompt.system,
            "messages": [{"role": "user", "content": prompt.user}],
            "tools": [
                {
                    "name": _TOOL,
                    "description": "Propose JSON Patch edits to the baseline architecture.",
                    "input_schema": answer_schema(),
                }
            ],
            "tool_choice": {"type": "tool", "name": _TOOL},
        }

    def send(self, request: dict[str, Any]) -> Reply:
        response = self.client.messages.create(**request)
        tool_inputs = [
            block.input
            for block in response.content
            if block.type == "tool_use" and block.name == _TOOL
        ]
        return Reply(
            raw=response.model_dump(mode="json"),
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            answer=tool_inputs[0] if tool_inputs else None,
        )

    def parse(self, answer: Any) -> ProposedEdits:
        if answer is None:
            raise MalformedAnswer(f"the answer has no '{_TOOL}' tool call")
        return parse_object(answer)
