"""What the LLM backends share: the answer schema and turning an answer into edits.

Wire formats (OpenAI chat completions, Anthropic messages) live in their own modules;
this one only knows the answer's JSON shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent.config import LLMSettings
from agent.edits import ProposedEdits
from agent.errors import describe_validation_error
from agent.prompts import RenderedPrompt, render
from agent.proposers.base import LLMUsage, Proposal, ProposalContext, ProposerStopped

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class MalformedAnswer(ValueError):
    """The model's answer is not a usable proposal; the message says exactly why."""


def answer_schema() -> dict[str, Any]:
    return ProposedEdits.model_json_schema()


def parse_text(text: str | None) -> ProposedEdits:
    """Parse a JSON answer, tolerating a Markdown code fence around it."""
    if not text or not text.strip():
        raise MalformedAnswer("the answer is empty")
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    try:
        data = json.loads(fenced.group(1) if fenced else stripped)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"the answer is not valid JSON: {exc}") from None
    return parse_object(data)


def parse_object(data: Any) -> ProposedEdits:
    try:
        return ProposedEdits.model_validate(data)
    except ValidationError as exc:
        raise MalformedAnswer(
            f"the answer does not match the schema: {describe_validation_error(exc)}"
        ) from None


@dataclass(frozen=True)
class Reply:
    """A backend's answer, reduced to what the loop needs."""

    raw: dict[str, Any]  # the whole response as JSON, for llm/ transcripts
    input_tokens: int
    output_tokens: int
    answer: Any  # text or an already-decoded object, for `parse`


class LLMProposer:
    """Renders the prompt, calls a backend, records the exchange, parses the answer.

    A subclass supplies the wire format: `request`, `send`, `parse`, and the error types of
    its SDK. Fatal errors (bad key, unknown model) stop the run; transient ones (network,
    5xx after the SDK's retries) and bad answers are recorded outcomes.
    """

    provider: str
    fatal_errors: tuple[type[Exception], ...]
    transient_errors: tuple[type[Exception], ...]

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.model = settings.resolved_model()

    def propose(self, context: ProposalContext) -> Proposal:
        request = self.request(render(context, self.settings.templates))
        usage = LLMUsage(provider=self.provider, model=self.model)
        try:
            reply = self.send(request)
        except self.fatal_errors as exc:
            raise ProposerStopped(self.fatal_message(exc)) from None
        except self.transient_errors as exc:
            return Proposal(
                rationale="",
                edits=[],
                usage=usage,
                transcript={"request": request, "error": repr(exc)},
                problem=f"LLM call failed: {type(exc).__name__}: {exc}",
                problem_status="failed",
            )
        usage.input_tokens, usage.output_tokens = reply.input_tokens, reply.output_tokens
        transcript = {"request": request, "response": reply.raw}
        try:
            answer = self.parse(reply.answer)
        except MalformedAnswer as exc:
            return Proposal(
                rationale="", edits=[], usage=usage, transcript=transcript, problem=str(exc)
            )
        return Proposal(
            rationale=answer.rationale, edits=answer.edits, usage=usage, transcript=transcript
        )

    def request(self, prompt: RenderedPrompt) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, request: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def parse(self, answer: Any) -> ProposedEdits:
        raise NotImplementedError

    def fatal_message(self, exc: Exception) -> str:
        raise NotImplementedError
