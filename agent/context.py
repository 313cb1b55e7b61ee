"""What a proposer is shown for the next batch: the baseline, its statistics, recent
history, the space and the data; in a mixture search, the mixture too."""

from __future__ import annotations

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.journal import Record
from edas_agent.proposers.base import HistoryEntry, MixtureMember, MixtureView, ProposalContext
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
        reach=config.screening.reach if config.screening.enabled else None,
        mixture=_mixture_view(config, state) if config.search.target == "mixture" else None,
    )


def _mixture_view(config: Config, state: RunState) -> MixtureView:
    by_step = {r.step: r for r in state.records}
    adopted = by_step[state.baseline.step]
    members = []
    for part in state.baseline.mixture:
        record = by_step[part.step]
        stats, _ = record.carried()
        assert stats is not None and record.architecture is not None
        members.append(
            MixtureMember(step=part.step, members=part.members, E=stats.E, D=stats.D,
                          E_M=stats.E_M, architecture=record.architecture)
        )  # fmt: skip
    return MixtureView(
        E_mix=adopted.predicted_error(),
        members=members,
        max_architectures=config.search.max_architectures,
    )


def _history_entry(record: Record) -> HistoryEntry:
    stats, _ = record.carried()
    judged = record.mixture()
    joined = None
    if judged is not None:
        joined = next((p.members for p in judged.after if p.arch_hash == record.arch_hash), 0)
    return HistoryEntry(
        step=record.step,
        status=record.status,
        edits=record.edits,
        rationale=record.rationale,
        reason=record.reason,
        delta_E=record.delta_E,
        rho=stats.rho if stats else None,
        E_M=stats.E_M if stats else None,
        E_mix=judged.E_after if judged else None,
        joined_members=joined,
        cross=judged.cross if judged else None,
        mixture_moment=judged.mixture_moment if judged else None,
        correlation=judged.correlation if judged else None,
    )
