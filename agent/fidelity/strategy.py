"""Screening on or off (`screening.enabled`), chosen once when a run starts: the loop
talks to one object either way (the `Screening` interface it owns, search/strategies.py),
and `NoScreening` is the strategy that screens nothing."""

from __future__ import annotations

from collections.abc import Callable

from edas_agent.config import Config
from edas_agent.errors import UserError
from edas_agent.evaluators.base import Evaluator, stages_supported
from edas_agent.fidelity.staging import Stager
from edas_agent.search.strategies import NoScreening, Screening
from edas_agent.training.learners import LearnerStore


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
