"""search.continuous's bagging steps: the closed form (bagging.py) inside the search.

The closed form needs E and D of one architecture at a few bagging fractions. In a search
those measurements are proposals like any other: from a new baseline, the loop proposes
the baseline with the next fraction of tuning.py's ladder (1, 0.75, 0.5, 0.3, as whole
numbers of fields) that no judged architecture has measured, each judged by the gate (a
measurement can be accepted: it is a candidate), until three fraction counts of the
baseline's architecture are measured. Then the quadratics are fitted to every measured
point of that architecture (the same document but for /bagging/fraction), and f*(M) is
proposed when it keeps another number of fields than the baseline and its predicted gain,
E_M(baseline's fraction) - E_M(f*), reaches the gate's floor. What a step used (its
points, the fit, the fraction) is logged; `replay` re-derives it from the records before
it, and a resumed run takes the same steps, since they depend only on the records.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import jsonpointer
from pydantic import BaseModel, ConfigDict

from edas_agent.continuous.bagging import BaggingFit, fit_measured, kept_fields
from edas_agent.continuous.tuning import fractions_to_measure
from edas_agent.evaluators.base import canonical_hash
from edas_agent.record import Record

PLACE = "/bagging/fraction"
# the llm.model of its records (provider: continuous), by purpose
MEASURE, OPTIMUM = "bagging closed form: measure", "bagging closed form: optimum"
POINTS_FOR_A_QUADRATIC = 3


class MeasuredPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    fraction: float
    fields_kept: int
    E: float
    D: float


class BaggingStep(BaseModel):
    """What a bagging step logged: enough to re-derive it (replay does)."""

    model_config = ConfigDict(frozen=True)

    members: int
    fields: int
    floor: float
    baseline_fraction: float
    points: list[MeasuredPoint]  # the baseline's architecture at each measured fraction
    purpose: Literal["measure", "optimum"]
    fraction: float  # proposed (or, when not proposed, what would have been)
    fit: BaggingFit | None = None
    predicted_gain: float | None = None  # E_M at the baseline's fraction minus at f*
    proposed: bool
    why_not: str | None = None


def plan(
    records: list[Record], baseline: dict[str, Any], fields: int, members: int, floor: float
) -> BaggingStep:
    """The bagging step from `baseline` given the run's records so far."""
    points = measured(records, baseline, fields)
    own = float(jsonpointer.resolve_pointer(baseline, PLACE))
    step: dict[str, Any] = {"members": members, "fields": fields, "floor": floor,
                            "baseline_fraction": own, "points": points}  # fmt: skip
    counts = {p.fields_kept for p in points}
    ladder = [f for f in fractions_to_measure(fields, None) if kept_fields(f, fields) not in counts]
    if len(counts) < POINTS_FOR_A_QUADRATIC and ladder:
        return BaggingStep(**step, purpose="measure", fraction=round(ladder[0], 4), proposed=True)
    if len(counts) < 2:
        return BaggingStep(**step, purpose="optimum", fraction=own, proposed=False,
                           why_not="fewer than two fractions measured")  # fmt: skip
    fit = fit_measured([(p.fields_kept / fields, p.E, p.D) for p in points], fields)
    kept = fit.feasible(fit.best_overlap(members), members)
    fraction = round(kept / fields, 4)
    gain = fit.E_M(kept_fields(own, fields) / fields, members) - fit.E_M(kept / fields, members)
    why_not = None
    if kept == kept_fields(own, fields):
        why_not = "f* keeps as many fields as the baseline"
    elif gain < floor:
        why_not = f"predicted gain {gain:.6f} below the gate's floor {floor:.6f}"
    return BaggingStep(**step, purpose="optimum", fraction=fraction, fit=fit,
                       predicted_gain=gain, proposed=why_not is None, why_not=why_not)  # fmt: skip


def measured(records: list[Record], baseline: dict[str, Any], fields: int) -> list[MeasuredPoint]:
    """Each judged architecture that is the baseline but for its bagging fraction, with
    the statistics it was last judged on, one per number of fields kept (the latest)."""
    home = _without_fraction(baseline)
    by_count: dict[int, MeasuredPoint] = {}
    for record in records:
        stats, _ = record.carried()
        if record.architecture is None or stats is None or record.status == "failed":
            continue
        if _without_fraction(record.architecture) != home:
            continue
        fraction = float(jsonpointer.resolve_pointer(record.architecture, PLACE))
        count = kept_fields(fraction, fields)
        by_count[count] = MeasuredPoint(fraction=fraction, fields_kept=count, E=stats.E,
                                        D=stats.D)  # fmt: skip
    return [by_count[c] for c in sorted(by_count, reverse=True)]


def _without_fraction(document: dict[str, Any]) -> str:
    blank = copy.deepcopy(document)
    jsonpointer.set_pointer(blank, PLACE, None)
    return canonical_hash(blank)
