"""What a proposer is shown for the next batch: the baseline, its statistics, recent
history, the space and the data."""

from __future__ import annotations

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.journal import Record
from edas_agent.proposers.base import HistoryEntry, ProposalContext
from edas_agent.state import RunState


def proposal_context(
    config: Config, evaluator: Evaluator, state: RunState, step: int, proposals: int
) -> ProposalContext:
    recent = state.proposals()[-config.llm.history :] if config.llm.history else []
    return ProposalContext(
        step=step,
        budget=config.budget,
        members=config.members,
        rule=config.gate.rule,
        baseline_step=state.baseline.step,
        architecture=document_of(state.baseline.architecture),
        stats=state.baseline.stats,
        history=[_history_entry(r) for r in recent],
        space_schema=evaluator.space().model_json_schema(),
        dataset=evaluator.describe(),
        proposals=proposals,
        evaluated_hashes=frozenset(state.first_step),
    )


def _history_entry(record: Record) -> HistoryEntry:
    stats, _ = record.carried()
    return HistoryEntry(
        step=record.step,
        status=record.status,
        edits=record.edits,
        rationale=record.rationale,
        reason=record.reason,
        delta_E=record.delta_E,
        rho=stats.rho if stats else None,
        E_M=stats.E_M if stats else None,
    )
