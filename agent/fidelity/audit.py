"""Screening checked after the run, from its log alone: every decision re-derived (for
`replay`) and the fused predictor's track (for `report`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edas_agent.config import ScreeningSettings
from edas_agent.fidelity.staging import FIRST_SIGNALS, Models, Stop, or_inf, stage_decisions
from edas_agent.record import Record
from edas_agent.search.state import batches


def rederive_screening(
    records: list[Record],
    settings: ScreeningSettings,
    floor: Callable[[list[Record], Record], float],
) -> list[str]:
    """Re-derive every screening decision of a run from its log (for `replay`): each
    forecast from the curves logged before its round, each predictor score from the logged
    signals, and who stopped at each stage, why; `floor(seen, baseline)` is the gate's floor
    (an absolute error) as the run had it before a round. Returns the disagreements."""
    models, problems = Models(settings), []
    proposals = [r for r in records if r.event == "proposal"]
    baseline = records[0]
    seen = [baseline]
    models.observe(baseline)
    for _, siblings in batches(proposals):
        screened = [r for r in siblings if r.screening is not None and r.screening.bar is not None]
        problems += _rederive_round(screened, models, settings, baseline, floor(seen, baseline))
        for record in siblings:
            models.observe(record)
        seen += siblings
        baseline = next((r for r in siblings if r.accepted), baseline)
    return problems


def _rederive_round(
    screened: list[Record], models: Models, settings: ScreeningSettings, baseline: Record,
    floor: float,
) -> list[str]:  # fmt: skip
    problems: list[str] = []
    carried = baseline.carried()[0]
    assert carried is not None
    bar = carried.E_M - floor
    for record in screened:
        trace = record.screening
        assert trace is not None
        before = {k: v for k, v in trace.signals.items() if k not in FIRST_SIGNALS}
        if trace.bar is None or not _close(trace.bar, bar):
            problems.append(f"step {record.step}: screening bar {trace.bar} is not {bar:.6g}")
        if not _close(trace.predicted, models.predict(before)):
            problems.append(f"step {record.step}: the predictor's score differs from the log")
    ordered = sorted(screened, key=lambda r: or_inf(r.screening.predicted))  # type: ignore[union-attr]
    alive = [r for r in ordered if r.screening.pruned_at != -1]  # type: ignore[union-attr]
    for stage in range(len(settings.fractions())):
        alive = [r for r in alive if len(r.screening.stages) > stage]  # type: ignore[union-attr]
        if not alive:
            break
        for record in alive:
            problems += _check_stage(record, stage, models)
        entries = [(r.step, r.screening.stages[stage]) for r in alive]  # type: ignore[union-attr]
        decisions = stage_decisions(entries, len(alive), bar, stage, settings)
        for record in alive:
            problems += _check_decision(record, stage, decisions[record.step])
        alive = [r for r in alive if decisions[r.step] is None]
    return problems


def _check_stage(record: Record, stage: int, models: Models) -> list[str]:
    trace = record.screening
    assert trace is not None
    logged = trace.stages[stage]
    forecast = models.curves.predict([s.point for s in trace.stages[: stage + 1]])
    problems = []
    if any(not _close(getattr(forecast, q), getattr(logged.prediction, q))
           for q in ("E", "D", "E_M", "lower")):  # fmt: skip
        problems.append(f"step {record.step}: stage {stage + 1} forecast differs from the log")
    if stage == 0 and not _close(trace.predicted_first, models.predict(trace.signals)):
        problems.append(f"step {record.step}: the predictor's stage-1 score differs from the log")
    return problems


def _check_decision(record: Record, stage: int, stop: Stop | None) -> list[str]:
    trace = record.screening
    assert trace is not None
    if stop is None:
        went_on = len(trace.stages) > stage + 1 or record.status in ("accepted", "rejected")
        if not went_on or (trace.pruned_at is not None and trace.pruned_at <= stage):
            return [f"step {record.step}: stopped, but stage {stage + 1} kept it"]
        return []
    logged = (record.status, trace.pruned_at, trace.pruned_by, record.reason)
    if logged != ("pruned", stage, stop.rule, stop.reason):
        return [f"step {record.step}: stage {stage + 1} stops it ({stop.reason}); logged: "
                f"{record.status}, {record.reason}"]  # fmt: skip
    return []


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def predictor_track(records: list[Record]) -> list[tuple[int, int, float | None]]:
    """The fused predictor's cold-start curve: after each full evaluation that it had
    scored before training, (step, evaluations so far, Spearman rank correlation of its
    scores with the realised full-training E_M so far; None below three)."""
    pairs: list[tuple[float, float]] = []
    track: list[tuple[int, int, float | None]] = []
    for record in records:
        trace = record.screening
        if trace is None or trace.predicted is None or not trace.curve:
            continue
        pairs.append((trace.predicted, trace.curve[-1].E_M))
        track.append((record.step, len(pairs), spearman(pairs) if len(pairs) >= 3 else None))
    return track


def spearman(pairs: list[tuple[float, float]]) -> float:
    x, y = (np.argsort(np.argsort(np.array(column))) for column in zip(*pairs, strict=True))
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])
