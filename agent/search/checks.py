"""Edit checks: proposed edits applied to the baseline and validated once, before training.
(Not multi-fidelity screening, which trains candidates partly: search/strategies.py.)

A proposal becomes a Candidate (an architecture to train, or whose learners to reuse) or an
Outcome (invalid or failed, with the reason: agent/outcome.py). The same rules, in the
same words, answer an LLM's answer through `check`, so a model is told exactly what the
loop would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from edas_agent.errors import describe_validation_error
from edas_agent.evaluators.base import (
    Evaluator,
    architecture_hash,
    document_of,
    effective_document_of,
    optional,
)
from edas_agent.outcome import Outcome
from edas_agent.proposers.base import Proposal
from edas_agent.proposers.edits import Edit, ProposedEdits, apply_edits
from edas_agent.search.state import Parse, RunState

NO_OP = "no-op: the edits leave the baseline unchanged"
NO_EFFECT = (
    "no-op: {paths} cannot act in this architecture on this table (see their descriptions "
    "in the schema), so the edits leave the trained model unchanged"
)


@dataclass(frozen=True)
class Candidate:
    architecture: BaseModel
    arch_hash: str
    first_step: int  # the step that first trained it: this one, or an earlier batch's


class EditChecks:
    """The run's checks of proposed edits, against the baseline and the architectures the
    run has seen (its state)."""

    def __init__(self, evaluator: Evaluator):
        self.parse: Parse = evaluator.parse
        # What trains the same model: the evaluator's answer (it knows the data), or the space's
        self.effective: Callable[[BaseModel], dict[str, Any]] = (
            optional(evaluator, "effective_document") or effective_document_of
        )
        self.round: tuple[int, dict[str, int]] = (0, {})  # a round's first step, its hashes

    def candidate(
        self, proposal: Proposal, step: int, batch_start: int, state: RunState
    ) -> Candidate | Outcome:
        """The proposal's architecture, claiming `step` as its first if it is new."""
        if proposal.refused is not None:
            return proposal.refused
        try:
            architecture = self.apply(proposal.edits, state)
        except ValueError as exc:  # InvalidEdits is a ValueError too
            return Outcome("invalid", str(exc))
        arch_hash = architecture_hash(architecture)
        no_op = self._no_op(proposal.edits, architecture, arch_hash, state)
        if no_op is not None:
            return Outcome("invalid", no_op)
        first = state.first_step.setdefault(arch_hash, step)
        if self.round[0] != batch_start:
            self.round = (batch_start, {})
        # Twice in one round is a duplicate even of an architecture first seen earlier: the
        # round's outcomes are keyed by architecture (a screened one has no learners yet).
        earlier = self.round[1].setdefault(arch_hash, step)
        if earlier != step:
            return Outcome("invalid", f"duplicate of step {earlier} in the same round; not trained")
        return Candidate(architecture, arch_hash, first)

    def check(self, items: list[ProposedEdits], state: RunState) -> list[str | None]:
        """What is wrong with each proposed item, in words an LLM can act on."""
        problems: list[str | None] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            try:
                architecture = self.apply(item.edits, state)
            except ValueError as exc:  # InvalidEdits, or the space's validation message
                problems.append(str(exc))
                continue
            arch_hash = architecture_hash(architecture)
            if (no_op := self._no_op(item.edits, architecture, arch_hash, state)) is not None:
                problems.append(no_op)
            elif arch_hash in state.first_step:
                problems.append(
                    f"repeat: this architecture was already evaluated at step "
                    f"{state.first_step[arch_hash]}; propose something new"
                )
            elif arch_hash in seen:
                problems.append(f"duplicate of proposal {seen[arch_hash] + 1} in this answer")
            else:
                problems.append(None)
            seen.setdefault(arch_hash, index)
        return problems

    def apply(self, edits: list[Edit], state: RunState) -> BaseModel:
        """The edited baseline, validated; raises ValueError with the reason."""
        document = apply_edits(document_of(state.baseline.architecture), edits)
        try:
            return self.parse(document)
        except ValidationError as exc:
            raise ValueError(f"outside the space: {describe_validation_error(exc)}") from None

    def _no_op(
        self, edits: list[Edit], architecture: BaseModel, arch_hash: str, state: RunState
    ) -> str | None:
        """Why edits of the baseline train nothing new, or None: they change nothing, or
        only settings that cannot act in it (the evaluator's or the space's
        `effective_document`)."""
        if arch_hash == state.baseline.arch_hash:
            return NO_OP
        if self.effective(architecture) == self.effective(state.baseline.architecture):
            return NO_EFFECT.format(paths=", ".join(sorted({edit.path for edit in edits})))
        return None
