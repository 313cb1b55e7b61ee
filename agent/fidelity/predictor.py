"""A fused predictor of a candidate's full-training E_M from cheap signals, learned during
the run (the dynamic ensemble of low-fidelity experts of Zhao et al. 2023).

One small expert per kind of cheap signal, each fitted on the run's full evaluations:
a straight line from the log of the parameters, from the log of the FLOPs, from the
zero-cost proxy at initialisation, from the lowest-fidelity E_M and from its D; and a
nearest-neighbour expert (the realised E_M of the closest architecture already evaluated).
A small gating model weights them per architecture: for each expert, the log of its
squared leave-one-out error is regressed on the distance to the nearest evaluated
architecture, and an expert's weight is the inverse of the error it is predicted to make
on this one (so the neighbour is trusted near known architectures, the fidelity experts
far from them). Everything is refitted from the examples on each call: a few dozen
closed-form least squares, deterministic, so `replay` re-derives every prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LINEAR = ("log_parameters", "log_flops", "zero_cost", "first_E_M", "first_D")
NEAREST = "nearest_E_M"  # the realised E_M of the closest evaluated architecture
DISTANCE = "distance"  # edits between the candidate and that architecture
_MIN_EXAMPLES = 3  # of a signal, before its expert is fitted
_EPS = 1e-12


@dataclass(frozen=True)
class Example:
    signals: dict[str, float]
    E_M: float  # realised at full fidelity


class FusedPredictor:
    def __init__(self, warm: int):
        self.warm_after = warm
        self.examples: list[Example] = []

    @property
    def warm(self) -> bool:
        return len(self.examples) >= self.warm_after

    def add(self, signals: dict[str, float], E_M: float) -> None:
        self.examples.append(Example(dict(signals), E_M))

    def predict(self, signals: dict[str, float]) -> float | None:
        """The fused forecast of full-training E_M; None before `warm` examples."""
        if not self.warm:
            return None
        forecasts, weights = [], []
        for name in (*LINEAR, NEAREST):
            expert = self._expert(name)
            if expert is None or name not in signals:
                continue
            predict, errors, distances = expert
            forecasts.append(predict(signals[name]))
            weights.append(1.0 / _predicted_error(errors, distances, signals.get(DISTANCE)))
        if not forecasts:
            return None
        weights_ = np.array(weights) / sum(weights)
        return float(np.dot(weights_, forecasts))

    def _expert(self, name: str):
        """(forecast function, leave-one-out squared errors, their distances) or None."""
        used = [e for e in self.examples if name in e.signals]
        if len(used) < _MIN_EXAMPLES:
            return None
        x = np.array([e.signals[name] for e in used])
        y = np.array([e.E_M for e in used])
        distances = np.array([e.signals.get(DISTANCE, math.nan) for e in used])
        if name == NEAREST:
            return (lambda value: value), (y - x) ** 2, distances
        a, b, loo = _line_with_loo(x, y)
        return (lambda value: a + b * value), loo**2, distances


def _line_with_loo(x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """y = a + b x by least squares (the mean when x is flat), and the leave-one-out
    residuals from the hat matrix (no refits)."""
    n = len(x)
    if float(np.ptp(x)) < 1e-12:
        mean = float(y.mean())
        return mean, 0.0, (y - mean) * n / (n - 1)
    design = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    hat = np.einsum("ij,ij->i", design @ np.linalg.pinv(design.T @ design), design)
    residuals = y - design @ coef
    return float(coef[0]), float(coef[1]), residuals / np.maximum(1 - hat, 1e-6)


def _predicted_error(errors: np.ndarray, distances: np.ndarray, distance: float | None) -> float:
    """The gating model: the expert's squared error expected at this distance (log-linear
    in distance where distances are known and vary), else its mean squared error."""
    logs = np.log(errors + _EPS)
    known = ~np.isnan(distances)
    if distance is None or known.sum() < _MIN_EXAMPLES or np.ptp(distances[known]) < 1e-12:
        return float(np.exp(logs.mean())) + _EPS
    b, a = np.polyfit(distances[known], logs[known], 1)
    return float(np.exp(a + b * distance)) + _EPS
