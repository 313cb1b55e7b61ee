"""`edas-agent tune bagging`: measure a few bagging fractions of one architecture and solve
for f*(M) in closed form (bagging.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from edas_agent.continuous.bagging import (
    Optimum,
    fit_bagging,
    kept_fields,
    measured_points,
    optimum,
)
from edas_agent.errors import UserError
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.theory.gate import statistics

NOMINAL = (1.0, 0.75, 0.5, 0.3)  # four fractions: a quadratic and a check of its fit
REPORTED_MEMBERS = (2, 4, 16, 50, 200)
MIN_FRACTION = 0.2  # the tabular space's bound on bagging.fraction


class MeasuredFraction(BaseModel):
    model_config = ConfigDict(frozen=True)

    fraction: float
    fields_kept: int
    E: float
    D: float
    rho: float
    E_M: float  # measured statistics' prediction at the deployed M
    E_fit: float
    D_fit: float


class BaggingReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    architecture: dict[str, Any]
    fields: int
    learners: int
    members: int  # the deployed M
    measured: list[MeasuredFraction]
    E_coef: tuple[float, ...]  # E(x) = sum E_coef[i] x^i, x = 1 - fields kept / fields
    D_coef: tuple[float, ...]
    optima: list[Optimum]  # one per M: the deployed one and REPORTED_MEMBERS
    curve: list[dict[str, float | int]]  # predicted E_M at the deployed M per whole field count
    interval: str = "90 % bootstrap over validation examples; seed noise not included"


def feature_fields(evaluator: Evaluator) -> int:
    """How many fields a bag is drawn from: every feature column the evaluator describes."""
    described = evaluator.describe()
    return len(described.get("categorical_fields", {})) + len(described.get("numeric_fields", []))


def fractions_to_measure(fields: int, asked: list[float] | None) -> list[float]:
    """The asked fractions (default NOMINAL), as whole numbers of fields: one per count."""
    if fields < 2:
        raise UserError("tune bagging needs a table with at least 2 feature columns")
    counts = {kept_fields(f, fields) for f in (asked or NOMINAL)}
    counts = {m for m in counts if m / fields >= MIN_FRACTION - 1e-9}
    if len(counts) < 2:
        raise UserError(
            f"the fractions keep {sorted(counts)} of {fields} fields: at least two different "
            "counts are needed (add fractions, e.g. --fractions 1,0.5)"
        )
    return [m / fields for m in sorted(counts, reverse=True)]


def tune_bagging(
    evaluator: Evaluator,
    architecture: Any,
    members: int,
    learners: int = 2,
    asked: list[float] | None = None,
    on_fraction: Callable[[float], None] = lambda f: None,
) -> BaggingReport:
    if not hasattr(architecture, "bagging"):
        raise UserError("tune bagging needs an evaluator with feature bagging (the tabular one)")
    fields = feature_fields(evaluator)
    predictions = {}
    for fraction in fractions_to_measure(fields, asked):
        on_fraction(fraction)
        bagged = architecture.model_copy(
            update={"bagging": architecture.bagging.model_copy(update={"fraction": fraction})}
        )
        predictions[fraction] = evaluator.evaluate(bagged, learners).val_predictions
    points = measured_points(predictions, evaluator.y_val, fields)
    fit = fit_bagging(points, fields)
    measured = []
    for point in points:
        stats = statistics(predictions[point.fraction], evaluator.y_val, members)
        measured.append(MeasuredFraction(
            fraction=point.fraction, fields_kept=round(point.overlap * fields), E=stats.E,
            D=stats.D, rho=stats.rho, E_M=stats.E_M, E_fit=fit.E(point.overlap),
            D_fit=fit.D(point.overlap),
        ))  # fmt: skip
    lowest = min(p.overlap for p in points)
    counts = [m for m in range(1, fields + 1) if m / fields >= lowest - 1e-9]
    return BaggingReport(
        architecture=document_of(architecture), fields=fields, learners=learners,
        members=members, measured=measured, E_coef=fit.E_coef, D_coef=fit.D_coef,
        optima=[optimum(fit, points, M) for M in sorted({members, *REPORTED_MEMBERS})],
        curve=[{"fraction": m / fields, "fields_kept": m, "E_M": fit.E_M(m / fields, members)}
               for m in counts],
    )  # fmt: skip
