"""Re-derive every gate decision of a run from its log: no training, no LLM call.

For each evaluated proposal the rules are recomputed from the logged statistics of the
candidate and of the baseline it was compared with, and checked against what was logged.
The walk also checks that each proposal was compared with the baseline that was current at
the time, and that E_M agrees with E and D for the run's M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from agent.gate import decide, ensemble_error
from agent.journal import Record, read_records

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
    _check_stats(baseline, report)
    for record in records:
        if record.event != "proposal":
            continue
        if record.stats is None:  # invalid or failed: nothing to re-derive, must not be accepted
            if record.accepted:
                report.mismatches.append(f"step {record.step}: accepted without statistics")
            continue
        _check_stats(record, report)
        _check_decision(record, baseline, report)
        report.checked += 1
        if record.accepted:
            baseline = record
    return report


def _check_stats(record: Record, report: ReplayReport) -> None:
    s = record.stats
    assert s is not None
    expected = ensemble_error(s.E, s.D, record.members)
    if not math.isclose(s.E_M, expected, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
        report.mismatches.append(
            f"step {record.step}: E_M {s.E_M!r} != E - (M-1)/M D = {expected!r}"
        )


def _check_decision(record: Record, baseline: Record, report: ReplayReport) -> None:
    step = record.step
    ref = record.baseline
    if ref is None or ref.step != baseline.step or ref.arch_hash != baseline.arch_hash:
        report.mismatches.append(
            f"step {step}: compared with baseline {ref.step if ref else None}, "
            f"but the current baseline was step {baseline.step}"
        )
        return
    if ref.stats != baseline.stats:
        report.mismatches.append(
            f"step {step}: logged baseline statistics differ from step {baseline.step}'s"
        )
    assert record.stats is not None and baseline.stats is not None
    decision = decide(baseline.stats, record.stats, record.members, record.rule)
    if decision.rules != record.rules:
        report.mismatches.append(
            f"step {step}: rules {record.rules} logged, {decision.rules} re-derived"
        )
    if decision.accepted != record.accepted or record.status != (
        "accepted" if decision.accepted else "rejected"
    ):
        report.mismatches.append(
            f"step {step}: logged {record.status}, the {record.rule} rule gives "
            f"{'accepted' if decision.accepted else 'rejected'}"
        )
    if record.delta_E is None or not math.isclose(
        decision.delta_E, record.delta_E, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE
    ):
        report.mismatches.append(
            f"step {step}: delta_E {record.delta_E!r} logged, {decision.delta_E!r} re-derived"
        )
