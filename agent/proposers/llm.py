"""What the LLM backends share: the answer's shape, the repair loop, retries and accounting.

A backend module supplies only a Wire: its format (`start`, `request`, `send`, `parse`,
`follow_up`) and its SDK's error types. LLMProposer, the same for every backend, holds the
repair loop, the accounting and the transcripts; endpoint settings come from the config.

One round is one conversation:

    answer = call(prompt)                       # retried on transport errors (transport.py)
    while answer has problems and repairs left:  # malformed JSON, bad path, out of bounds,
        answer = call(conversation + answer + "your answer was rejected: <exact error>")
    -> one Proposal per proposed item; items still wrong are recorded `invalid` with every
       attempt's problems.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edas_agent.config import LLMSettings
from edas_agent.errors import describe_validation_error
from edas_agent.outcome import Outcome
from edas_agent.proposers.base import Check, Proposal, ProposalContext, ProposerStopped
from edas_agent.proposers.edit_schema import (
    checked,
    novel,
    offered_variants,
    place_of,
    typed_answer_schema,
)
from edas_agent.proposers.edits import ProposedEdits
from edas_agent.proposers.prompts import RenderedPrompt, render, render_repair
from edas_agent.proposers.transport import call_with_retries
from edas_agent.record import LLMUsage
from edas_agent.training.costs import BudgetExhausted, LLMBudget

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class MalformedAnswer(ValueError):
    """The model's answer is not a usable proposal; the message says exactly why."""


class ProposalSet(BaseModel):
    """The answer: one or more distinct proposals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proposals: list[ProposedEdits] = Field(min_length=1, max_length=16)


def answer_schema() -> dict[str, Any]:
    return ProposalSet.model_json_schema()


def parse_text(text: str | None) -> list[ProposedEdits]:
    """A JSON answer, possibly in a Markdown fence or surrounded by prose."""
    if not text or not text.strip():
        raise MalformedAnswer("the answer is empty")
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as exc:
        data = _first_json_object(candidate)
        if data is None:
            raise MalformedAnswer(f"the answer is not valid JSON: {exc}") from None
    return parse_object(data)


def parse_object(data: Any) -> list[ProposedEdits]:
    """{"proposals": [...]}, or a single {"rationale", "edits"} object."""
    try:
        if isinstance(data, dict) and "proposals" not in data and "edits" in data:
            return [ProposedEdits.model_validate(data)]
        return list(ProposalSet.model_validate(data).proposals)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise MalformedAnswer(f"the answer does not match the schema: {problems}") from None


def _first_json_object(text: str) -> Any:
    """The first decodable JSON object in free text (servers without JSON modes)."""
    decoder = json.JSONDecoder()
    for start in (i for i, c in enumerate(text) if c == "{"):
        try:
            return decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            continue
    return None


@dataclass(frozen=True)
class Reply:
    """A backend's answer, reduced to what the loop needs."""

    raw: dict[str, Any]  # the whole response as JSON, for llm/ transcripts
    input_tokens: int
    output_tokens: int
    answer: Any  # text or an already-decoded object, for `parse`
    mode: str | None = None  # the structured-output mode the answer was asked in, if any
    truncated: bool = False  # the answer stopped at the length limit (finish_reason length)


class Wire(Protocol):
    """One provider's wire format and the errors its SDK raises."""

    provider: str
    model: str
    label: str  # how messages name the endpoint
    # Errors every later call would repeat: they stop the run instead of burning the budget.
    # A bad key or a key without access, or (not_found_errors) an unknown model or base_url.
    fatal_errors: tuple[type[Exception], ...]
    not_found_errors: tuple[type[Exception], ...]
    api_error: type[Exception]  # the SDK's base error: anything else fails the round

    def start(self, prompt: RenderedPrompt) -> Any:
        """The conversation so far, in the backend's own shape."""
        ...

    def request(self, conversation: Any) -> dict[str, Any]: ...

    def send(self, request: dict[str, Any]) -> Reply: ...

    def parse(self, answer: Any) -> list[ProposedEdits]: ...

    def follow_up(self, conversation: Any, reply: Reply, feedback: str) -> Any:
        """The conversation with the model's answer and our feedback appended."""
        ...

    def describe_failure(self, exc: Exception) -> str: ...


def client_options(settings: LLMSettings, api_key: str) -> dict[str, Any]:
    """Both SDKs take the same names. Their own retries are off: transport.py retries."""
    return {
        "api_key": api_key,
        "base_url": settings.base_url,
        "timeout": settings.timeout_s,
        "max_retries": 0,
    }


def describe_failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class LLMProposer:
    replays_deterministically = False  # sampled answers: resume asks again

    def __init__(self, wire: Wire, settings: LLMSettings, budget: LLMBudget):
        self.wire = wire
        self.settings = settings
        self.budget = budget
        self.failed_in_a_row = 0

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        return self.ask(self.prompt(context, check), context, check)

    def ask(
        self, prompt: RenderedPrompt, context: ProposalContext, check: Check | None
    ) -> list[Proposal]:
        """The round's call (with repairs) for `prompt`, as proposals or a recorded problem."""
        wire = self.wire
        # Repairs go back to the opening: the model sees the prompt, its last answer and what
        # was wrong with it, so a round's conversation does not grow with every attempt.
        opening = conversation = wire.start(prompt)
        transcript: dict[str, Any] = {
            "provider": wire.provider,
            "model": wire.model,
            "prompt": {"system": prompt.system, "user": prompt.user},
            "exchanges": [],
        }
        usage = LLMUsage(provider=wire.provider, model=wire.model)
        attempts: list[dict[str, Any]] = []
        items: list[ProposedEdits] = []
        problems: list[str | None] = []
        answers: list[str] = []  # each attempt's answer, to notice a model repeating itself
        for attempt in range(self.settings.max_repairs + 1):
            exchange: dict[str, Any] = {"retries": []}
            transcript["exchanges"].append(exchange)
            try:
                reply = self._call(conversation, exchange)
            except BudgetExhausted as exc:
                if attempt == 0:
                    raise
                # Mid-repair: record the round as it stands; the next round stops the run.
                transcript["exchanges"].pop()
                problems = [f"{p} (repairs cut short: {exc})" if p else p for p in problems]
                break
            except wire.fatal_errors as exc:
                raise ProposerStopped(self.fatal_message(exc)) from None
            except wire.api_error as exc:
                # A failed call is still a call: it counts towards llm.max_calls.
                self.budget.charge(wire.model, 0, 0)
                usage.calls += 1
                self._count_refusals(usage, exchange)
                exchange["error"] = wire.describe_failure(exc)
                self._count_failure(exchange["error"])
                problem = f"LLM call failed: {exchange['error']}"
                return [self._problem(usage, transcript, problem, "failed")]
            self.failed_in_a_row = 0
            self._count_refusals(usage, exchange)
            self._account(usage, reply, exchange)
            items, problems = self._judge_answer(reply, context.proposals, check)
            exchange["problems"] = problems
            attempts.append({"attempt": attempt, "problems": problems})
            if items and not any(problems):
                break
            answer = json.dumps(reply.answer, sort_keys=True)
            repeated = answers.index(answer) + 1 if answer in answers else None
            answers.append(answer)
            if attempt < self.settings.max_repairs:
                feedback = render_repair(problems, self.settings.templates, repeated)
                conversation = wire.follow_up(opening, reply, feedback)
        return self._proposals(items, problems, usage, transcript, attempts)

    def prompt(self, context: ProposalContext, check: Check | None) -> RenderedPrompt:
        """This round's prompt and its answer schema, typed by the space, offering only the
        single edits the loop's check accepts (or, without a check, those that lead
        somewhere new); with `llm.place: rotate`, those of this round's place alone, named
        in the prompt too. The offered edits are worked out once, for both."""
        keep = self._keep(context, check)
        place = self._place(context, keep)
        schema = typed_answer_schema(
            context.space_schema,
            context.architecture,
            context.proposals,
            keep,
            1 if place else self.settings.edits_per_proposal,
            place,
        )
        return replace(self.render_prompt(context, place), answer_schema=schema)

    def _keep(self, context: ProposalContext, check: Check | None):
        if check is not None:
            return checked(check)
        return novel(context.architecture, context.evaluated_hashes)

    def _place(self, context: ProposalContext, keep) -> str | None:
        """`llm.place: rotate`: the places with an edit on offer, in a fixed order (sorted,
        so a place keeps its turn as the architecture changes), taken in turn by step."""
        if self.settings.resolved_place() != "rotate":
            return None
        variants = offered_variants(context.space_schema, context.architecture, keep)
        places = sorted({place_of(v) for v in variants})
        return places[context.step % len(places)] if places else None

    def render_prompt(self, context: ProposalContext, place: str | None = None) -> RenderedPrompt:
        """The prompt's text; `place`, the one place this round offers (llm.place)."""
        settings = self.settings
        prompt = render(context, settings.templates, settings.prompt_tokens, settings.prompt)
        if place is not None:
            choose = "" if place.startswith("remove ") else " Choose its new value."
            prompt = replace(
                prompt, user=f"{prompt.user}\n\nThis round, edit one place only: {place}.{choose}"
            )
        if settings.instructions == "user":  # for chat formats that drop system messages
            return replace(prompt, system="", user=f"{prompt.system.rstrip()}\n\n{prompt.user}")
        return prompt

    def _call(self, conversation: Any, exchange: dict[str, Any]) -> Reply:
        self.budget.before_call()
        request = self.wire.request(conversation)
        exchange["request"] = request
        timeout = self.settings.timeout_s

        def send() -> Reply:
            return self.wire.send(
                request if timeout == self.settings.timeout_s else {**request, "timeout": timeout}
            )

        def on_retry(event: dict[str, Any]) -> None:
            nonlocal timeout
            exchange["retries"].append(event)
            if event["timed_out"]:
                # A local server keeps generating the abandoned answer and starts the retry
                # only after it: the retry needs the time of both.
                timeout *= 2

        started = time.monotonic()
        try:
            return call_with_retries(
                send,
                self.settings.max_retries,
                self.settings.backoff_s,
                self.settings.max_wait_s,
                on_retry=on_retry,
            )
        finally:
            exchange["seconds"] = round(time.monotonic() - started, 3)  # retries included

    def _account(self, usage: LLMUsage, reply: Reply, exchange: dict[str, Any]) -> None:
        cost = self.budget.charge(self.wire.model, reply.input_tokens, reply.output_tokens)
        usage.calls += 1
        usage.input_tokens += reply.input_tokens
        usage.output_tokens += reply.output_tokens
        usage.cost = None if cost is None or usage.cost is None else usage.cost + cost
        exchange.update(response=reply.raw, answer=reply.answer)
        if reply.mode is not None:
            exchange["structured_output"] = reply.mode
        exchange["usage"] = {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
        }

    def _judge_answer(
        self, reply: Reply, wanted: int, check: Check | None
    ) -> tuple[list[ProposedEdits], list[str | None]]:
        try:
            items = self.wire.parse(reply.answer)[:wanted]
        except MalformedAnswer as exc:
            if reply.truncated:  # say why, or the model is told about a symptom
                return [], [
                    f"your answer was cut off at the length limit ({reply.output_tokens} "
                    "tokens) before it was complete JSON: answer again, shorter (a one-sentence "
                    "rationale, one to three edits)"
                ]
            return [], [str(exc)]
        return items, check(items) if check else [None] * len(items)

    def _proposals(self, items, problems, usage, transcript, attempts) -> list[Proposal]:
        tries = len(attempts)
        if not items:
            problem = f"{problems[0]} (after {tries} attempt{'s' * (tries > 1)})"
            return [self._problem(usage, transcript, problem, "invalid", attempts)]
        proposals = []
        for index, (item, problem) in enumerate(zip(items, problems, strict=True)):
            proposals.append(
                Proposal(
                    rationale=item.rationale,
                    edits=item.edits,
                    # The round's calls are charged to its first proposal only.
                    usage=usage
                    if index == 0
                    else LLMUsage(provider=self.wire.provider, model=self.wire.model),
                    transcript=transcript if index == 0 else None,
                    refused=None
                    if problem is None
                    else Outcome("invalid", f"{problem} (after {tries} attempts)"),
                    attempts=attempts if tries > 1 or problem else None,
                )
            )
        return proposals

    def _problem(self, usage, transcript, problem, status, attempts=None) -> Proposal:
        return Proposal(
            rationale="",
            edits=[],
            usage=usage,
            transcript=transcript,
            refused=Outcome(status, problem),
            attempts=attempts,
        )

    def _count_refusals(self, usage: LLMUsage, exchange: dict[str, Any]) -> None:
        """Requests the server refused for their structured-output mode (the wire fell
        back to another): logged in the exchange, and counted as the calls they were."""
        take = getattr(self.wire, "take_refusals", None)
        refused = take() if take is not None else []
        if refused:
            exchange["refused"] = refused
        for _ in refused:
            self.budget.charge(self.wire.model, 0, 0)
            usage.calls += 1

    @property
    def endpoint(self) -> str:
        return self.settings.base_url or f"the {self.wire.provider} API"

    def _count_failure(self, error: str) -> None:
        """Stop once llm.max_failed_calls calls in a row failed (after their retries)."""
        self.failed_in_a_row += 1
        if self.failed_in_a_row >= self.settings.max_failed_calls:
            raise ProposerStopped(
                f"{self.failed_in_a_row} LLM calls in a row to {self.endpoint} failed, the "
                f"last: {error}; check that it answers, then resume the run"
            )

    def fatal_message(self, exc: Exception) -> str:
        wire, detail = self.wire, getattr(exc, "message", str(exc))
        if isinstance(exc, wire.not_found_errors):
            return (
                f"the {wire.label} endpoint does not know model {wire.model!r} "
                f"(or llm.base_url is wrong): {detail}"
            )
        variable = self.settings.resolved_key_env()
        return f"the {wire.label} endpoint refused the API key ({detail}): check ${variable}"
