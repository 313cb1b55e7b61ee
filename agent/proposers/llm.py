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
    label: str  # how messages name the endpoint
    # Errors every later call would repeat: they stop the run instead of burning the budget.
    auth_errors: tuple[type[Exception], ...]  # bad key, or a key without access
    not_found_error: type[Exception]  # unknown model or wrong base_url
    transient_errors: tuple[type[Exception], ...]

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.model = settings.resolved_model()

    def client_options(self, api_key: str) -> dict[str, Any]:
        """The SDK client's settings; both SDKs take the same names."""
        return {
            "api_key": api_key,
            "base_url": self.settings.base_url,
            "timeout": self.settings.timeout_s,
            "max_retries": self.settings.max_retries,
        }

    def propose(self, context: ProposalContext) -> Proposal:
        request = self.request(render(context, self.settings.templates))
        usage = LLMUsage(provider=self.provider, model=self.model)
        try:
            reply = self.send(request)
        except (*self.auth_errors, self.not_found_error) as exc:
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
        detail = getattr(exc, "message", str(exc))
        if isinstance(exc, self.not_found_error):
            return (
                f"the {self.label} endpoint does not know model {self.model!r} "
                f"(or llm.base_url is wrong): {detail}"
            )
        variable = self.settings.resolved_key_env()
        return f"the {self.label} endpoint refused the API key ({detail}): check ${variable}"
