"""The interfaces the loop's strategies plug in through, owned here by the loop.

    Target      what the search improves: one architecture, or a mixture (search/target.py)
    Screening   multi-fidelity screening of a round's candidates before full training
                (agent/fidelity/, `screening.enabled`); NoScreening screens nothing
    StepSource  continuous steps proposed between discrete ones (agent/continuous/,
                `search.continuous`); NoSteps proposes none

Implementations live in their own packages, above the loop, and import these; the loop
imports none of them. A run's are chosen once, from its config, by the layer that wires a
run together (edas_agent.session.build_search): the loop has no feature flags, and "off" is
a strategy too, not an `if`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator
from edas_agent.outcome import Outcome
from edas_agent.proposers.base import MixtureView, Proposal
from edas_agent.record import BaselineRef, Cost, GateRound, Record, ScreeningTrace
from edas_agent.search.checks import Candidate
from edas_agent.search.state import Baseline, RunState
from edas_agent.training.learners import LearnerStore, Pool

Progress = Callable[[str], None]  # work inside a round, as a line for the display


class Target(Protocol):
    def judge(
        self, kind: str, baseline: Baseline, baseline_pool: Pool, step: int, seed_index: int,
        architecture: BaseModel, pool: Pool, cost: Cost, floor: float | None,
    ) -> GateRound:  # fmt: skip
        """One gate round: the candidate's learners in `pool` against the baseline's; the
        gain must reach `floor` (an absolute error; None: no floor)."""
        ...

    def reference(self, baseline: Baseline) -> BaselineRef:
        """The baseline as a record logs it."""
        ...

    def view(self, state: RunState) -> MixtureView | None:
        """What a proposer is shown beyond the baseline architecture."""
        ...


@dataclass
class ScreeningResult:
    """A candidate's multi-fidelity screening this round: its trace, and the outcome that
    stops it here (pruned, or failed in a stage's training; None: train it fully).
    NOT_SCREENED stands for a candidate that was not (screening off, or learners reused
    from an earlier step)."""

    trace: ScreeningTrace | None
    stopped: Outcome | None = None

    @property
    def was_screened(self) -> bool:
        return self.trace is not None


NOT_SCREENED = ScreeningResult(trace=None)


class Screening(Protocol):
    proposals_per_round: int  # how many proposals a round asks for
    reach: int | None  # most mutations per builtin proposal (None: the proposer's own)

    @property
    def full_fractions(self) -> tuple[float, ...] | None:
        """Where a full training's learning curve is looked at (None: nowhere)."""
        ...

    def screen(self, candidates: list[Candidate], bar: float) -> dict[str, ScreeningResult]:
        """The round's new candidates' screening, by architecture hash; `bar` is the E_M a
        candidate must reach to pass the gate."""
        ...

    def observe(self, record: Record) -> None:
        """Learn from a logged full evaluation."""
        ...

    def trace_of_full(
        self, architecture: BaseModel, arch_hash: str, trace: ScreeningTrace | None
    ) -> ScreeningTrace | None:
        """The trace a fully trained architecture's record carries."""
        ...


class NoScreening:
    """Screening off: every candidate goes to full training."""

    reach = None
    full_fractions = None

    def __init__(self, proposals_per_round: int):
        self.proposals_per_round = proposals_per_round

    def screen(self, candidates: list[Candidate], bar: float) -> dict[str, ScreeningResult]:
        return {}

    def observe(self, record: Record) -> None:
        pass

    def trace_of_full(self, architecture, arch_hash, trace) -> ScreeningTrace | None:
        return None


class StepSource(Protocol):
    def propose(self, state: RunState, floor: float | None) -> Proposal | None:
        """The continuous step due now (the round's one proposal), or None: ask the
        proposer. Decided from the run's records alone, so a resumed run takes the same."""
        ...


class NoSteps:
    """Continuous steps off: every round is the proposer's."""

    def propose(self, state: RunState, floor: float | None) -> Proposal | None:
        return None


@dataclass(frozen=True)
class Strategies:
    """How a run's strategies are made once its parts exist (the store is the run's)."""

    screening: Callable[[Config, Evaluator, LearnerStore, Progress], Screening]
    steps: Callable[[Config, Evaluator], StepSource]
