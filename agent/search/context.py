"""What a proposer is shown for the next batch: the baseline, its statistics, recent
history, the space and the data; in a mixture search, the mixture too (search/target.py)."""

from __future__ import annotations

import jsonpatch

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.proposers.base import HistoryEntry, MixtureView, ProposalContext
from edas_agent.record import Record
from edas_agent.search.state import RunState


def proposal_context(
    config: Config,
    evaluator: Evaluator,
    state: RunState,
    step: int,
    proposals: int,
    reach: int | None = None,
    mixture: MixtureView | None = None,
) -> ProposalContext:
    """`reach`: the screening strategy's; `mixture`: the target's view (search/target.py)."""
    recent = state.proposals()[-config.llm.history :] if config.llm.history else []
    documents = {r.arch_hash: r.architecture for r in state.records if r.architecture}
    return ProposalContext(
        step=step,
        budget=config.budget,
        members=config.members,
        rule=config.gate.rule,
        baseline_step=state.baseline.step,
        architecture=document_of(state.baseline.architecture),
        stats=state.baseline.stats,
        baseline_flops=state.baseline.flops,
        history=[_history_entry(r, documents) for r in recent],
        space_schema=evaluator.space().model_json_schema(),
        dataset=evaluator.describe(),
        proposals=proposals,
        evaluated_hashes=frozenset(state.first_step),
        reach=reach,
        mixture=mixture,
    )


def _why_rejected(record: Record) -> str | None:
    """For a rejected candidate whose decision round predicted a lower E_M than its
    baseline's, the guard that stopped it (a small model reads this as 'try that again')."""
    if record.status != "rejected" or not record.rounds or record.baseline is None:
        return None
    if record.rounds[0].stats.E_M >= record.baseline.stats.E_M:
        return None
    last = record.rounds[-1]
    if last.kind == "confirmation":
        return "not confirmed on fresh learners"
    if last.floor is not None and not last.accepted:
        return "the gain was below the seed-noise floor"
    if last.confidence is not None:
        return "the interval's upper bound was not below zero"
    return "the deciding rule said no"


def _edits_shown(record: Record, documents: dict[str, dict]) -> list[dict]:
    """The record's edits; a whole architecture (a global draw, an Optuna trial) as its
    difference from the baseline it was judged against, which is what a prompt can use."""
    whole = len(record.edits) == 1 and record.edits[0].get("path") == ""
    baseline = documents.get(record.baseline.arch_hash) if record.baseline else None
    if not whole or baseline is None:
        return record.edits
    return jsonpatch.make_patch(baseline, record.edits[0]["value"]).patch


def _history_entry(record: Record, documents: dict[str, dict] | None = None) -> HistoryEntry:
    stats, _ = record.carried()
    judged = record.mixture()
    joined = None
    if judged is not None:
        joined = next((p.members for p in judged.after if p.arch_hash == record.arch_hash), 0)
    return HistoryEntry(
        step=record.step,
        status=record.status,
        edits=_edits_shown(record, documents or {}),
        rationale=record.rationale,
        reason=record.reason,
        delta_E=record.delta_E,
        rho=stats.rho if stats else None,
        E_M=stats.E_M if stats else None,
        flops=record.flops,
        why=_why_rejected(record),
        E_mix=judged.E_after if judged else None,
        joined_members=joined,
        cross=judged.cross if judged else None,
        mixture_moment=judged.mixture_moment if judged else None,
        correlation=judged.correlation if judged else None,
    )
