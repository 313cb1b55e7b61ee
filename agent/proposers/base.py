"""The proposer interface: given the baseline and what happened so far, propose edits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from edas_agent.outcome import Outcome
from edas_agent.proposers.edits import Edit, ProposedEdits
from edas_agent.record import LLMUsage
from edas_agent.theory.gate import Rule, Stats


class HistoryEntry(BaseModel):
    """One earlier proposal as the next prompt sees it."""

    model_config = ConfigDict(frozen=True)

    step: int
    status: str
    edits: list[dict[str, Any]]
    rationale: str
    reason: str
    delta_E: float | None = None
    rho: float | None = None
    E_M: float | None = None
    flops: int | None = None  # forward FLOPs per example of one learner, where reported
    # a rejection despite a lower E_M than its baseline: which guard stopped it, in words
    why: str | None = None
    # a mixture search: the mixture's predicted error had it joined, the members it would
    # get, and its residual cross-moment and correlation with the mixture it was judged by
    E_mix: float | None = None
    joined_members: int | None = None
    cross: float | None = None
    mixture_moment: float | None = None
    correlation: float | None = None


class NearMiss(BaseModel):
    """An older proposal whose first learners predicted a lower E_M than its baseline's,
    stopped by a guard: a long run's prompt keeps these after its history has moved on."""

    model_config = ConfigDict(frozen=True)

    step: int
    baseline_step: int
    edits: list[dict[str, Any]]
    first_E_M: float  # the decision round's predicted E_M
    baseline_E_M: float
    why: str


class TriedPlace(BaseModel):
    """One place of the architecture edited on the current baseline before the shown
    history, with the values tried there: none of them was accepted."""

    model_config = ConfigDict(frozen=True)

    path: str
    times: int
    values_tried: list[str]  # JSON of each distinct value, in the order tried ("remove": removed)


class MixtureMember(BaseModel):
    """One architecture of the current mixture, as the prompt shows it."""

    model_config = ConfigDict(frozen=True)

    step: int
    members: int
    E: float
    D: float
    E_M: float
    architecture: dict[str, Any]


class MixtureView(BaseModel):
    """The current mixture of a mixture search (`search.target: mixture`)."""

    model_config = ConfigDict(frozen=True)

    E_mix: float  # predicted validation error of the M-member mixture
    members: list[MixtureMember]
    max_architectures: int | None = None


class ProposalContext(BaseModel):
    """Everything a proposer may look at. Plain data, so prompts can render it."""

    model_config = ConfigDict(frozen=True)

    step: int
    budget: int
    members: int
    rule: Rule
    baseline_step: int
    architecture: dict[str, Any]
    stats: Stats
    history: list[HistoryEntry]
    baseline_flops: int | None = None  # forward FLOPs per example, where reported
    space_schema: dict[str, Any]
    dataset: dict[str, Any]
    proposals: int = 1  # distinct proposals wanted this round
    evaluated_hashes: frozenset[str] = frozenset()
    reach: int | None = None  # the builtin proposer's most mutations in one proposal
    mixture: MixtureView | None = None  # a mixture search; the baseline is its newest member
    # What a long run learned before the shown history (search/context.py)
    near_misses: list[NearMiss] = []
    tried: list[TriedPlace] = []


@dataclass
class Proposal:
    """A proposer's answer. `refused` is set when there is nothing to evaluate: an
    Outcome "invalid" for an answer that is not a usable proposal (malformed JSON, missing
    fields), "failed" for a call that did not complete."""

    rationale: str
    edits: list[Edit]
    usage: LLMUsage
    transcript: dict[str, Any] | None = None
    refused: Outcome | None = None
    attempts: list[dict[str, Any]] | None = None  # each answer's problems, when repaired


# Given the proposals of one answer, what is wrong with each (None: nothing). The loop
# supplies it, so an LLM can be told the exact validation error and try again.
Check = Callable[[list[ProposedEdits]], list[str | None]]


class ProposerStopped(Exception):
    """An error no later call can fix (bad API key, unknown model): the run stops cleanly."""


class Proposer(Protocol):
    # True when the same sequence of contexts always yields the same proposals (seeded
    # builtin mutations, recorded answers): resuming a run then re-runs the recorded
    # batches through it and checks each one. LLMs are sampled, so they say False.
    replays_deterministically: bool

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        """context.proposals proposals, or fewer; each becomes one step."""
        ...
