"""Feature bagging in closed form: the share f of fields each learner sees that minimises
the predicted M-member ensemble error, f*(M).

Each learner keeps m = round(f F) of the F fields, drawn from its seed. Two learners'
subsets then share m^2 / F fields on average, a share phi = m / F of each one's: the
learners see less of the same information as phi falls, so they disagree more (D rises,
rho falls) while each one errs more (E rises). With x = 1 - phi, both are modelled as
quadratics fitted by least squares to a few measured fractions,

    E(x) = e0 + e1 x + e2 x^2,    D(x) = d0 + d1 x + d2 x^2,

so the predicted error E_M(x) = E(x) - c D(x), c = (M - 1) / M, is a quadratic too, with
its minimum at the vertex

    x* = -(e1 - c d1) / (2 (e2 - c d2))    when e2 - c d2 > 0,

clipped to the measured range (the models are not extrapolated), or at an end of it
otherwise. As M grows, c weighs the disagreement more, so f*(M) = 1 - x* moves down; at
M = 1 (c = 0) it is where E alone is lowest, which is f = 1 unless dropping fields helps
one learner. The derivation, its assumptions and where they break: docs/pages/theory.md.

The interval of f* and of E_M(f*) comes from a bootstrap over validation examples, paired
across the fractions (every fraction is scored on the same examples): each resample
refits both quadratics from its per-example terms and solves again. It covers example
noise, not seed noise (two learners per fraction cannot show that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from edas_agent.theory.gate import per_example_moments


@dataclass(frozen=True)
class Point:
    """Learners of one bagging fraction: its overlap phi = m / F and per-example terms."""

    fraction: float  # as asked (the bagging.fraction set)
    overlap: float  # m / F, the share of a subset that another seed's subset shares
    e: np.ndarray  # (n,) mean squared residual over learners, per example
    d: np.ndarray  # (n,) disagreement between learners, per example

    @property
    def E(self) -> float:
        return float(self.e.mean())

    @property
    def D(self) -> float:
        return float(self.d.mean())


def measured_points(
    fraction_predictions: dict[float, np.ndarray], y: np.ndarray, fields: int
) -> list[Point]:
    """Points from each fraction's validation predictions, (k, n) or (k, n, C), k >= 2."""
    points = []
    for fraction, predictions in sorted(fraction_predictions.items()):
        e, d = per_example_moments(predictions, y)
        points.append(Point(fraction, kept_fields(fraction, fields) / fields, e, d))
    return points


def kept_fields(fraction: float, fields: int) -> int:
    """As the tabular evaluator draws a bag: round(f F), at least one."""
    return max(1, round(fraction * fields))


class Optimum(BaseModel):
    """f*(M) and what it is predicted to give, with bootstrap intervals."""

    model_config = ConfigDict(frozen=True)

    members: int
    overlap: float  # phi* = 1 - x*, the continuous optimum
    fraction: float  # the bagging.fraction to set: phi* rounded to a whole number of fields
    fields_kept: int
    E_M: float  # predicted at `fraction`
    E_M_full: float  # predicted at f = 1 (no bagging)
    overlap_interval: tuple[float, float]
    E_M_interval: tuple[float, float]


class BaggingFit(BaseModel):
    """The fitted quadratics (coefficients in x = 1 - phi) and the measured range."""

    model_config = ConfigDict(frozen=True)

    fields: int
    E_coef: tuple[float, ...]
    D_coef: tuple[float, ...]
    lowest_overlap: float  # the smallest measured phi: x is not extrapolated beyond it

    def E(self, overlap: float) -> float:
        return float(np.polyval(self.E_coef[::-1], 1 - overlap))

    def D(self, overlap: float) -> float:
        return float(np.polyval(self.D_coef[::-1], 1 - overlap))

    def E_M(self, overlap: float, members: int) -> float:
        return self.E(overlap) - (members - 1) / members * self.D(overlap)

    def best_overlap(self, members: int) -> float:
        return 1 - _vertex(np.array(self.E_coef), np.array(self.D_coef), members,
                           1 - self.lowest_overlap)  # fmt: skip

    def feasible(self, overlap: float, members: int) -> int:
        """The whole number of fields nearest the optimum that predicts the lower E_M."""
        low = max(1, int(np.floor(overlap * self.fields)))
        options = {m for m in (low, low + 1) if m <= self.fields}
        return min(options, key=lambda m: (self.E_M(m / self.fields, members), -m))


def fit_bagging(points: list[Point], fields: int) -> BaggingFit:
    """Least-squares quadratics of E and D in x = 1 - phi (lines with two distinct
    overlaps); raises ValueError with fewer than two."""
    return fit_measured([(p.overlap, p.E, p.D) for p in points], fields)


def fit_measured(measured: list[tuple[float, float, float]], fields: int) -> BaggingFit:
    """fit_bagging from (overlap phi, E, D) per measured fraction: what a search's records
    give (agent/continuous/bagging_steps.py), without per-example terms."""
    overlaps = sorted({overlap for overlap, _, _ in measured})
    if len(overlaps) < 2:
        raise ValueError("the fractions measured keep fewer than two different field counts")
    x, E, D = (np.array(column) for column in zip(*measured, strict=True))
    x = 1 - x
    design = _design(x, degree=2 if len(overlaps) >= 3 else 1)
    return BaggingFit(
        fields=fields, E_coef=tuple(_lstsq(design, E)), D_coef=tuple(_lstsq(design, D)),
        lowest_overlap=overlaps[0],
    )  # fmt: skip


def optimum(
    fit: BaggingFit, points: list[Point], members: int, resamples: int = 1000,
    level: float = 0.9, seed: int = 0,
) -> Optimum:  # fmt: skip
    phi = fit.best_overlap(members)
    m = fit.feasible(phi, members)
    phis, errors = _bootstrap(points, fit, members, resamples, seed)
    tail = (1 - level) / 2 * 100
    return Optimum(
        members=members, overlap=phi, fraction=round(m / fit.fields, 4), fields_kept=m,
        E_M=fit.E_M(m / fit.fields, members), E_M_full=fit.E_M(1.0, members),
        overlap_interval=tuple(np.percentile(phis, [tail, 100 - tail])),
        E_M_interval=tuple(np.percentile(errors, [tail, 100 - tail])),
    )  # fmt: skip


def _bootstrap(points: list[Point], fit: BaggingFit, members: int, resamples: int, seed: int):
    """phi* and E_M(phi*) refitted on resampled examples, paired across the points."""
    rng = np.random.default_rng(seed)
    n = len(points[0].e)
    x = np.array([1 - p.overlap for p in points])
    design = _design(x, degree=len(fit.E_coef) - 1)
    pinv = np.linalg.pinv(design)  # the same design every resample: solve once
    e = np.stack([p.e for p in points])
    d = np.stack([p.d for p in points])
    phis, errors = np.empty(resamples), np.empty(resamples)
    for b in range(resamples):
        rows = rng.integers(n, size=n)
        E_coef, D_coef = pinv @ e[:, rows].mean(axis=1), pinv @ d[:, rows].mean(axis=1)
        best_x = _vertex(E_coef, D_coef, members, 1 - fit.lowest_overlap)
        c = (members - 1) / members
        phis[b] = 1 - best_x
        errors[b] = np.polyval((E_coef - c * D_coef)[::-1], best_x)
    return phis, errors


def _vertex(E_coef: np.ndarray, D_coef: np.ndarray, members: int, x_max: float) -> float:
    """argmin over x in [0, x_max] of the quadratic (or line) E(x) - c D(x)."""
    c = (members - 1) / members
    coef = np.asarray(E_coef) - c * np.asarray(D_coef)
    candidates = [0.0, x_max]
    if len(coef) == 3 and coef[2] > 0:
        candidates.append(float(np.clip(-coef[1] / (2 * coef[2]), 0.0, x_max)))
    return min(candidates, key=lambda x: np.polyval(coef[::-1], x))


def _design(x: np.ndarray, degree: int) -> np.ndarray:
    return np.vander(x, degree + 1, increasing=True)


def _lstsq(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(design, values, rcond=None)[0]
