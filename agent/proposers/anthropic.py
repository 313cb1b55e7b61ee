"""Anthropic Messages API; the answer comes back as the input of a forced tool call.

A repair is the tool's result marked as an error, carrying the exact validation message,
which is how the Messages API expects a tool call to be answered.
"""

from __future__ import annotations

from typing import Any

import anthropic

from edas_agent.config import LLMSettings
from edas_agent.proposers.edits import ProposedEdits
from edas_agent.proposers.llm import (
    LLMProposer,
    MalformedAnswer,
    Reply,
    answer_schema,
    client_options,
    describe_failure,
    parse_object,
)
from edas_agent.proposers.prompts import RenderedPrompt
from edas_agent.training.costs import LLMBudget

_TOOL = "propose_edits"


class AnthropicWire:
    provider = "anthropic"
    label = "Anthropic"
    not_found_errors = (anthropic.NotFoundError,)
    fatal_errors = (
        anthropic.AuthenticationError,
        anthropic.PermissionDeniedError,
        *not_found_errors,
    )
    api_error = anthropic.APIError
    describe_failure = staticmethod(describe_failure)

    def __init__(self, settings: LLMSettings, api_key: str):
        self.settings = settings
        self.model = settings.resolved_model()
        self.client = anthropic.Anthropic(**client_options(settings, api_key))
        self.schema = answer_schema()  # this round's: typed by the space (start)

    def start(self, prompt: RenderedPrompt) -> dict[str, Any]:
        self.schema = prompt.answer_schema or answer_schema()
        return {"system": prompt.system, "messages": [{"role": "user", "content": prompt.user}]}

    def request(self, conversation: dict[str, Any]) -> dict[str, Any]:
        system = {"system": conversation["system"]} if conversation["system"] else {}
        return {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            **system,
            "messages": conversation["messages"],
            "tools": [
                {
                    "name": _TOOL,
                    "description": "Propose JSON Patch edits to the baseline architecture.",
                    "input_schema": self.schema,
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
            truncated=response.stop_reason == "max_tokens",
        )

    def parse(self, answer: Any) -> list[ProposedEdits]:
        if answer is None:
            raise MalformedAnswer(f"the answer has no '{_TOOL}' tool call")
        return parse_object(answer)

    def follow_up(self, conversation: dict[str, Any], reply: Reply, feedback: str):
        blocks = [_echo(block) for block in reply.raw.get("content", [])]
        tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        if tool_ids:
            answer = [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_ids[0],
                    "content": feedback,
                    "is_error": True,
                }
            ]
        else:
            answer = feedback
        messages = [
            *conversation["messages"],
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": answer},
        ]
        return {"system": conversation["system"], "messages": messages}


class AnthropicProposer(LLMProposer):
    def __init__(self, settings: LLMSettings, budget: LLMBudget, api_key: str):
        super().__init__(AnthropicWire(settings, api_key), settings, budget)


def _echo(block: dict[str, Any]) -> dict[str, Any]:
    """A response block as a request accepts it (responses carry extra read-only fields)."""
    if block.get("type") == "tool_use":
        return {key: block[key] for key in ("type", "id", "name", "input")}
    return {"type": "text", "text": block.get("text", "")}
