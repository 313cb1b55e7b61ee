"""Re-derive every gate decision of a run from its log: no training, no LLM call.

For each evaluated proposal, every round (decision, sequential rounds, confirmation) is
re-decided from the logged statistics of the candidate and of the baseline it was
compared with, and checked against what was logged. The walk also checks that each
proposal was compared with the baseline current at the time (as confirmed), that rounds
follow the gate's protocol, and that E_M agrees with E and D for the run's M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from edas_agent.gate import Stats, decide, ensemble_error
from edas_agent.journal import GateRound, Record, read_records

_TOLERANCE = 1e-12


@dataclass
class ReplayReport:
    records: list[Record]
    mismatches: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def replay(folder: Path) -> ReplayReport:
    records = read_records(folder)
    report = ReplayReport(records)
    baseline = next((r for r in records if r.event == "baseline" and r.accepted), None)
    if baseline is None:
        report.mismatches.append("no accepted baseline record")
        return report
    _check_stats(baseline.step, baseline.stats, baseline.members, report)
    proposals = [r for r in records if r.event == "proposal"]
    by_step = {r.step: r for r in proposals}
    winner: Record | None = None  # adopted when its round is over: siblings share a baseline
    current_round = None
    for record in proposals:
        if record.round != current_round:
            baseline, winner, current_round = winner or baseline, None, record.round
        if not record.rounds:  # invalid or failed: nothing to re-derive, must not be accepted
            if record.accepted:
                report.mismatches.append(f"step {record.step}: accepted without a judgement")
            continue
        _check_record(record, baseline, report)
        _check_outranking(record, by_step, report)
        report.checked += 1
        if record.accepted:
            if winner is not None:
                report.mismatches.append(f"step {record.step}: a second acceptance in one round")
            winner = record
    return report


def _check_outranking(record: Record, by_step: dict[int, Record], report: ReplayReport) -> None:
    if record.outranked_by is None:
        return
    best = by_step.get(record.outranked_by)
    own, theirs = record.carried()[0], best.carried()[0] if best else None
    if best is None or not best.accepted or best.round != record.round or theirs is None:
        report.mismatches.append(f"step {record.step}: outranked by a step that was not accepted")
    elif own is None or not theirs.E_M < own.E_M:
        report.mismatches.append(
            f"step {record.step}: outranked by step {best.step} with no lower E_M"
        )


def _check_record(record: Record, baseline: Record, report: ReplayReport) -> None:
    step = record.step
    ref = record.baseline
    if ref is None or ref.step != baseline.step or ref.arch_hash != baseline.arch_hash:
        report.mismatches.append(
            f"step {step}: compared with baseline {ref.step if ref else None}, "
            f"but the current baseline was step {baseline.step}"
        )
        return
    base_stats, base_logloss = baseline.carried()
    if ref.stats != base_stats or ref.logloss != base_logloss:
        report.mismatches.append(
            f"step {step}: logged baseline statistics differ from step {baseline.step}'s"
        )
    first = record.rounds[0]
    _check_stats(step, record.stats, record.members, report)
    if (record.stats, record.rules, record.delta_E) != (first.stats, first.rules, first.delta_E):
        report.mismatches.append(
            f"step {step}: top-level statistics differ from the decision round"
        )
    _check_protocol(record, report)
    for number, round_ in enumerate(record.rounds):
        _check_round(record, number, round_, ref.stats, ref.logloss, report)
    if record.accepted != (record.rounds[-1].accepted and record.outranked_by is None):
        report.mismatches.append(
            f"step {step}: logged {record.status}, its last round says otherwise"
        )
    if record.status != ("accepted" if record.accepted else "rejected"):
        report.mismatches.append(
            f"step {step}: status {record.status} with accepted={record.accepted}"
        )


def _check_protocol(record: Record, report: ReplayReport) -> None:
    kinds = [r.kind for r in record.rounds]
    step = record.step
    if kinds[0] != "decision" or kinds.count("decision") != 1:
        report.mismatches.append(f"step {step}: rounds {kinds} do not start with one decision")
    for previous, current in zip(record.rounds, record.rounds[1:], strict=False):
        if current.kind == "sequential" and not (
            previous.interval is not None and previous.interval.straddles_zero()
        ):
            report.mismatches.append(f"step {step}: a sequential round without an open interval")
        if current.kind == "confirmation" and not previous.accepted:
            report.mismatches.append(f"step {step}: a confirmation after a rejection")
        if current.stats.k <= previous.stats.k:
            report.mismatches.append(f"step {step}: a {current.kind} round without new learners")


def _check_round(
    record: Record, number: int, round_: GateRound, base, base_logloss, report
) -> None:
    where = f"step {record.step} round {number} ({round_.kind})"
    _check_stats(record.step, round_.stats, record.members, report)
    pair = None
    if base_logloss is not None and round_.logloss is not None:
        pair = (base_logloss, round_.logloss)
    try:
        decision = decide(
            base,
            round_.stats,
            record.members,
            record.rule,
            round_.interval,
            round_.confidence,
            pair,
            round_.min_effect,
        )
    except ValueError as exc:
        report.mismatches.append(f"{where}: cannot be re-decided: {exc}")
        return
    if decision.rules != round_.rules:
        report.mismatches.append(
            f"{where}: rules {round_.rules} logged, {decision.rules} re-derived"
        )
    if decision.accepted != round_.accepted:
        verdict = "accepted" if decision.accepted else "rejected"
        report.mismatches.append(
            f"{where}: logged accepted={round_.accepted}, re-derived {verdict}"
        )
    if not math.isclose(decision.delta_E, round_.delta_E, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
        report.mismatches.append(
            f"{where}: delta_E {round_.delta_E!r} logged, {decision.delta_E!r} re-derived"
        )


def _check_stats(step: int, s: Stats | None, members: int, report: ReplayReport) -> None:
    if s is None:
        report.mismatches.append(f"step {step}: no statistics")
        return
    expected = ensemble_error(s.E, s.D, members)
    if not math.isclose(s.E_M, expected, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
        report.mismatches.append(f"step {step}: E_M {s.E_M!r} != E - (M-1)/M D = {expected!r}")
