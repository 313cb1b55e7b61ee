"""Re-derive every gate decision of a run from its log: no training, no LLM call.

For each evaluated proposal, every round (decision, sequential rounds, confirmation) is
re-decided from the logged statistics of the candidate and of the baseline it was
compared with, and checked against what was logged. The walk also checks that each
proposal was compared with the baseline current at the time (as confirmed), that rounds
follow the round plan (search/rounds.py), and that E_M agrees with E and D for the run's M.

A mixture search (`search.target: mixture`) is checked the same way, with each round
re-decided by agent/theory/mixture_gate.py from its logged errors and interval, and its mixture
checked against the one the run had at the time. Then, since a mixture's errors are not
functions of logged statistics, they are recomputed from the stored learners (which needs
the run's data for the targets): both errors of every round, and the optimiser's choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from edas_agent.errors import UserError
from edas_agent.record import CONFIG, GateRound, Record, read_records
from edas_agent.search.rounds import RoundPlan
from edas_agent.search.state import mixture_of
from edas_agent.theory.gate import Stats, decide, ensemble_error
from edas_agent.theory.mixture import mixture_error
from edas_agent.theory.mixture_gate import Part, composition, decide_mixture, reoptimise

_TOLERANCE = 1e-12


@dataclass
class ReplayReport:
    records: list[Record]
    mismatches: list[str] = field(default_factory=list)
    checked: int = 0
    recomputed: int = 0  # mixture rounds whose errors were recomputed from the learners
    screened: int = 0  # candidates whose screening was re-derived from their logged stages
    continuous: int = 0  # continuous steps whose optimum was solved again from their log
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why

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
    plan = _round_plan(folder, report)
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
        _check_record(record, baseline, plan, report)
        _check_outranking(record, by_step, report)
        report.checked += 1
        if record.accepted:
            if winner is not None:
                report.mismatches.append(f"step {record.step}: a second acceptance in one round")
            winner = record
    _recompute_mixtures(folder, proposals, report)
    _check_screening(folder, records, report)
    _check_continuous_steps(folder, records, report)
    return report


def _round_plan(folder: Path, report: ReplayReport) -> RoundPlan | None:
    """The plan the run's gate rounds followed, from its config; None (and a note) when
    the folder has no readable config."""
    from edas_agent.config import load_config

    try:
        return RoundPlan(load_config(folder / CONFIG, {}))
    except UserError as exc:
        report.notes.append(f"the order of gate rounds not checked: {exc}")
        return None


def _check_screening(folder: Path, records: list[Record], report: ReplayReport) -> None:
    """Multi-fidelity screening's decisions, re-derived from the logged stages."""
    if not any(r.screening is not None for r in records):
        return
    from edas_agent.config import load_config
    from edas_agent.fidelity.audit import rederive_screening
    from edas_agent.search.judging import noise_floor

    config = load_config(folder / CONFIG, {})

    def floor(seen: list[Record], baseline: Record) -> float:
        stats = baseline.carried()[0]
        assert stats is not None
        return noise_floor(config, seen, stats) or 0.0

    report.mismatches += rederive_screening(records, config.screening, floor)
    report.screened = sum(r.screening is not None and bool(r.screening.stages) for r in records)


def _check_continuous_steps(folder: Path, records: list[Record], report: ReplayReport) -> None:
    """search.continuous's optima, solved again from their logged observations."""
    from edas_agent.continuous.steps import rederive_steps

    report.continuous, mismatches = rederive_steps(folder, records)
    report.mismatches += mismatches


def _check_outranking(record: Record, by_step: dict[int, Record], report: ReplayReport) -> None:
    if record.outranked_by is None:
        return
    best = by_step.get(record.outranked_by)
    own, theirs = record.predicted_error(), best.predicted_error() if best else None
    if best is None or not best.accepted or best.round != record.round or theirs is None:
        report.mismatches.append(f"step {record.step}: outranked by a step that was not accepted")
    elif own is None or not theirs < own:
        report.mismatches.append(
            f"step {record.step}: outranked by step {best.step} with no lower predicted error"
        )


def _check_record(
    record: Record, baseline: Record, plan: RoundPlan | None, report: ReplayReport
) -> None:
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
    if record.mixture() is not None and ref.mixture != mixture_of(baseline):
        report.mismatches.append(
            f"step {step}: judged against mixture {ref.mixture}, but the run's mixture after "
            f"step {baseline.step} was {mixture_of(baseline)}"
        )
    first = record.rounds[0]
    _check_stats(step, record.stats, record.members, report)
    if (record.stats, record.rules, record.delta_E) != (first.stats, first.rules, first.delta_E):
        report.mismatches.append(
            f"step {step}: top-level statistics differ from the decision round"
        )
    for problem in plan.check(record.rounds) if plan is not None else ():
        report.mismatches.append(f"step {step}: {problem}")
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


def _check_round(
    record: Record, number: int, round_: GateRound, base, base_logloss, report
) -> None:
    where = f"step {record.step} round {number} ({round_.kind})"
    _check_stats(record.step, round_.stats, record.members, report)
    pair = None
    if base_logloss is not None and round_.logloss is not None:
        pair = (base_logloss, round_.logloss)
    if round_.mixture is not None:
        _check_mixture_round(record, where, round_, base, pair, report)
        return
    try:
        decision = decide(
            base,
            round_.stats,
            record.members,
            record.rule,
            round_.interval,
            round_.confidence,
            pair,
            round_.floor,
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


def _check_mixture_round(
    record: Record, where: str, round_: GateRound, base: Stats, pair, report: ReplayReport
) -> None:
    """Re-decide a mixture round from its logged errors and interval; its statistics beside
    the baseline architecture are re-derived too (they decide nothing)."""
    judged = round_.mixture
    assert judged is not None and record.arch_hash is not None and record.baseline is not None
    if judged.before != record.baseline.mixture:
        report.mismatches.append(f"{where}: judged against another mixture than the record's")
    accepted, _ = decide_mixture(
        record.arch_hash, judged.before, judged.after, judged.E_before, judged.E_after,
        judged.interval, judged.confidence, judged.floor,
    )  # fmt: skip
    logged = (round_.accepted, round_.interval, round_.confidence, round_.floor)
    if logged != (judged.accepted, judged.interval, judged.confidence, judged.floor):
        report.mismatches.append(f"{where}: the round and its mixture judgement differ")
    if accepted != judged.accepted:
        verdict = "accepted" if accepted else "rejected"
        report.mismatches.append(
            f"{where}: logged accepted={judged.accepted}, re-derived {verdict}"
        )
    if sum(p.members for p in judged.after) != record.members:
        report.mismatches.append(f"{where}: the mixture does not have M = {record.members} members")
    alone = decide(base, round_.stats, record.members, record.rule, logloss=pair)
    if (alone.rules, alone.delta_E) != (round_.rules, round_.delta_E):
        report.mismatches.append(f"{where}: statistics beside the baseline re-derive otherwise")


def _recompute_mixtures(folder: Path, proposals: list[Record], report: ReplayReport) -> None:
    """Both errors of every mixture round, and the optimiser's choice, from the learners."""
    rounds = [(r, round_) for r in proposals for round_ in r.rounds if round_.mixture]
    if not rounds:
        return
    from edas_agent.config import load_config
    from edas_agent.training.door import build_evaluator
    from edas_agent.training.learners import LearnerStore

    try:
        config = load_config(folder / CONFIG, {})
        evaluator = build_evaluator(config)
    except UserError as exc:
        report.notes.append(f"mixture errors not recomputed: the run's data: {exc}")
        return
    store = LearnerStore(evaluator, folder / "learners")
    missing = [
        record.step
        for record, round_ in rounds
        if not _recompute_round(record, round_, store, config.search.max_architectures, report)
    ]
    if missing:
        report.notes.append(
            f"mixture errors not recomputed at steps {sorted(set(missing))}: learners missing "
            f"from {folder / 'learners'}"
        )


def _recompute_round(record, round_: GateRound, store, max_architectures, report) -> bool:
    """False when the round's learners are not all stored."""
    judged = round_.mixture
    assert judged is not None and record.arch_hash is not None
    newcomer = Part(
        step=record.step, arch_hash=record.arch_hash, members=0, learners=round_.stats.k
    )
    parts = [*judged.before, newcomer]
    pools = [store.get(p.arch_hash) for p in parts]
    if any(pool is None or len(pool) < p.learners for pool, p in zip(pools, parts, strict=True)):
        return False
    val = [pool.val[: p.learners] for pool, p in zip(pools, parts, strict=True)]
    m, old, new = reoptimise(val, store.evaluator.y_val, judged.before, record.members,
                             max_architectures)  # fmt: skip
    where = f"step {record.step} ({round_.kind})"
    if composition(parts, new) != judged.after:
        report.mismatches.append(f"{where}: the optimiser now chooses another mixture")
    for name, logged, counts in (("before", judged.E_before, old), ("after", judged.E_after, new)):
        again = mixture_error(m, counts)
        if not math.isclose(logged, again, rel_tol=1e-9, abs_tol=1e-12):
            report.mismatches.append(
                f"{where}: E_mix {name} {logged!r} logged, {again!r} from the learners"
            )
    report.recomputed += 1
    return True


def _check_stats(step: int, s: Stats | None, members: int, report: ReplayReport) -> None:
    if s is None:
        report.mismatches.append(f"step {step}: no statistics")
        return
    expected = ensemble_error(s.E, s.D, members)
    if not math.isclose(s.E_M, expected, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE):
        report.mismatches.append(f"step {step}: E_M {s.E_M!r} != E - (M-1)/M D = {expected!r}")
