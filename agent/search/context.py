"""What a proposer is shown for the next batch: the baseline, its statistics, recent
history, the space and the data; in a mixture search, the mixture too (search/target.py).

A long run (hundreds of proposals) outgrows the recent history an LLM is shown, and with it
what the run learned: so the context also carries the older near misses (a lower E_M than
their baseline on the first learners, then stopped by a guard: worth combining or trying
again) and the places already edited on the current baseline, with the values tried."""

from __future__ import annotations

import json

import jsonpatch

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.proposers.base import (
    HistoryEntry,
    MixtureView,
    NearMiss,
    ProposalContext,
    TriedPlace,
)
from edas_agent.record import Record
from edas_agent.search.state import RunState

_VALUES_SHOWN = 8  # the last distinct values tried at one place (a learning rate has many)


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
    earlier = state.proposals()
    shown = min(config.llm.history, len(earlier))
    recent, older = earlier[len(earlier) - shown :], earlier[: len(earlier) - shown]
    documents = {r.arch_hash: r.architecture for r in state.records if r.architecture}
    # Only a language model reads them; the scan grows with the run, so others skip it
    most = config.llm.near_misses if config.llm.prompts_a_model else 0
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
        near_misses=_near_misses(older, documents, most) if most else [],
        tried=_tried_on(state.baseline.arch_hash, older, documents) if most else [],
    )


def _near_misses(older: list[Record], documents: dict[str, dict], most: int) -> list[NearMiss]:
    """The `most` older proposals a guard stopped after their first learners predicted a
    lower E_M than their baseline's, the largest predicted gains first."""
    stopped = [(r, why) for r in older if (why := _why_rejected(r)) is not None]
    stopped.sort(key=lambda pair: pair[0].rounds[0].stats.E_M - pair[0].baseline.stats.E_M)
    return [
        NearMiss(
            step=record.step,
            baseline_step=record.baseline.step,
            edits=_edits_shown(record, documents),
            first_E_M=record.rounds[0].stats.E_M,
            baseline_E_M=record.baseline.stats.E_M,
            why=why,
        )
        for record, why in stopped[:most]
    ]


def _tried_on(baseline: str, older: list[Record], documents: dict[str, dict]) -> list[TriedPlace]:
    """The places the older proposals against this baseline edited, with each distinct
    value tried (none was accepted, or this would not be the baseline)."""
    values: dict[str, list[str]] = {}
    times: dict[str, int] = {}
    for record in older:
        if record.baseline is None or record.baseline.arch_hash != baseline:
            continue
        for edit in _edits_shown(record, documents):
            path = edit.get("path", "")
            value = "remove" if edit.get("op") == "remove" else json.dumps(edit.get("value"))
            times[path] = times.get(path, 0) + 1
            if value not in values.setdefault(path, []):
                values[path].append(value)
    shown = {path: tried[-_VALUES_SHOWN:] for path, tried in values.items()}
    return [TriedPlace(path=p, times=times[p], values_tried=shown[p]) for p in sorted(times)]


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
