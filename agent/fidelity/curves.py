"""Early-curve model: a candidate's full-training E, D and E_M forecast from its first
stages, with an honest interval, learned from the run's own full learning curves.

Every architecture this run trained fully while screening was on logged its curve: the
statistics at each screening fraction of the schedule and at the end. Learning curves of
nearby architectures share their shape far more than their level, so the model transfers
shape: for a quantity q (E, D or E_M) observed at fraction f, the final value is forecast
as q(f) * exp(r), where r is the log-ratio log q(1) / q(f) of the earlier full curves.
With two observed stages and four or more curves, r is regressed on the candidate's own
log-slope between its last two stages (a curve still falling fast keeps falling), so each
candidate gets its own power-law-like continuation rather than the average one.

The interval is a Student-t prediction interval on r, whose scale is pooled with a prior
(one pseudo-observation of `PRIOR_SD`): with few curves it is wide and nothing is pruned
on a guess. The model is a pure function of the logged points, so `replay` re-derives it.
"""

from __future__ import annotations

import math

import numpy as np

from edas_agent.record import CurvePrediction, StagePoint
from edas_agent.theory.uncertainty import t_quantile

PRIOR_SD = 0.15  # of the log-ratio: a 15 % spread in how much further a curve falls
_PRIOR_WEIGHT = 1.0  # pseudo-observations behind PRIOR_SD
_MIN_FOR_SLOPE = 4  # curves before the candidate's own slope is used
_EPS = 1e-12
QUANTITIES = ("E", "D", "E_M")


class CurveModel:
    def __init__(self, level: float):
        self.level = level
        self.curves: list[dict[float, StagePoint]] = []

    def add(self, curve: list[StagePoint]) -> None:
        """A full learning curve (it must end at fraction 1)."""
        if curve and curve[-1].fraction == 1.0:
            self.curves.append({_key(p.fraction): p for p in curve})

    def predict(self, observed: list[StagePoint]) -> CurvePrediction:
        """Forecast of the full-training statistics from a candidate's stages so far."""
        forecast = {q: self._forecast(q, observed) for q in QUANTITIES}
        mean, sd, dof = forecast["E_M"]
        lower = mean * math.exp(-t_quantile(self.level, dof) * sd) if dof else 0.0
        return CurvePrediction(
            E=forecast["E"][0],
            D=forecast["D"][0],
            E_M=mean,
            lower=lower,
            curves=len(self._usable(observed)),
        )

    def _usable(self, observed: list[StagePoint]) -> list[dict[float, StagePoint]]:
        wanted = [_key(p.fraction) for p in observed[-2:]]
        return [c for c in self.curves if all(f in c for f in wanted) and 1.0 in c]

    def _forecast(self, quantity: str, observed: list[StagePoint]) -> tuple[float, float, int]:
        """(forecast, sd of its log, degrees of freedom); no curves: the last value, dof 0."""
        last = observed[-1]
        now = _log(getattr(last, quantity))
        curves = self._usable(observed)
        if not curves:
            return math.exp(now), math.inf, 0
        ratios = np.array(
            [_log(getattr(c[1.0], quantity)) - _log(getattr(c[_key(last.fraction)], quantity))
             for c in curves]
        )  # fmt: skip
        if len(observed) >= 2 and len(curves) >= _MIN_FOR_SLOPE:
            before = observed[-2]
            slopes = np.array(
                [_log(getattr(c[_key(last.fraction)], quantity))
                 - _log(getattr(c[_key(before.fraction)], quantity)) for c in curves]
            )  # fmt: skip
            own = now - _log(getattr(before, quantity))
            ratio, residuals, used = _line(slopes, ratios, own)
        else:
            ratio, residuals, used = float(ratios.mean()), ratios - ratios.mean(), 1
        dof = len(curves) - used
        spread = (float(residuals @ residuals) + _PRIOR_WEIGHT * PRIOR_SD**2) / (
            dof + _PRIOR_WEIGHT
        )
        sd = math.sqrt(spread * (1 + 1 / len(curves)))
        return math.exp(now + ratio), sd, dof + int(_PRIOR_WEIGHT)


def _line(x: np.ndarray, y: np.ndarray, at: float) -> tuple[float, np.ndarray, int]:
    """Least-squares y = a + b x evaluated at `at`, residuals, parameters used (a flat x
    falls back to the mean)."""
    if float(np.ptp(x)) < 1e-9:
        return float(y.mean()), y - y.mean(), 1
    b, a = np.polyfit(x, y, 1)
    return float(a + b * at), y - (a + b * x), 2


def _log(value: float) -> float:
    return math.log(max(value, _EPS))


def _key(fraction: float) -> float:
    """Fractions are compared after rounding: they come from arithmetic and from JSON."""
    return round(fraction, 9)
