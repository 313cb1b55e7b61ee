"""Screening on or off (`screening.enabled`), chosen once when a run starts: the loop
talks to one object either way, and `NoScreening` is the strategy that screens nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel

from edas_agent.config import Config
from edas_agent.errors import UserError
from edas_agent.evaluators.base import Evaluator, stages_supported
from edas_agent.fidelity.staging import Screened, Stager
from edas_agent.search.journal import Record, ScreeningTrace
from edas_agent.search.screening import Candidate
from edas_agent.training.learners import LearnerStore


class Screening(Protocol):
    proposals_per_round: int  # how many proposals a round asks for
    reach: int | None  # most mutations per builtin proposal (None: the proposer's own)

    @property
    def full_fractions(self) -> tuple[float, ...] | None:
        """Where a full training's learning curve is looked at (None: nowhere)."""
        ...

    def screen(self, candidates: list[Candidate], bar: float) -> dict[str, Screened]:
        """The round's new candidates' screening, by architecture hash."""
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
    reach = None
    full_fractions = None

    def __init__(self, proposals_per_round: int):
        self.proposals_per_round = proposals_per_round

    def screen(self, candidates: list[Candidate], bar: float) -> dict[str, Screened]:
        return {}

    def observe(self, record: Record) -> None:
        pass

    def trace_of_full(self, architecture, arch_hash, trace) -> ScreeningTrace | None:
        return None


def make_screening(
    config: Config,
    evaluator: Evaluator,
    store: LearnerStore,
    on_progress: Callable[[str], None],
) -> Screening:
    if not config.screening.enabled:
        return NoScreening(config.llm.proposals_per_round)
    if not stages_supported(evaluator):
        raise UserError(
            "screening.enabled needs an evaluator that can stop training early "
            "(evaluate_staged, as the built-in tabular evaluator has); this one cannot: "
            "set screening.enabled false"
        )
    return Stager(config, evaluator, store, on_progress)
