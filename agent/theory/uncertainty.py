"""How sure is a decision: the paired bootstrap over validation examples.

Candidate and baseline are scored on the same examples, so the bootstrap resamples the
per-example differences t_i(candidate) - t_i(baseline) (see `gate.per_example_terms`);
their mean is exactly delta E_M. Example-level noise only: seed noise is what the
jackknife over learners in `gate.statistics` (k >= 3) and sequential testing address.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict


class Interval(BaseModel):
    """Paired-bootstrap interval of delta E_M (candidate minus baseline, same examples).

    lower and upper are the (1 - confidence) and confidence quantiles of the bootstrapped
    delta, so `upper < 0` means: an improvement at that one-sided confidence.
    """

    model_config = ConfigDict(frozen=True)

    confidence: float
    lower: float
    upper: float
    p_improve: float  # share of resamples in which the candidate is better
    resamples: int

    def straddles_zero(self) -> bool:
        return self.lower < 0 <= self.upper


# Rows of resampled indices drawn at once: bounds memory at about 16 MB of int64 indices.
_CHUNK_ELEMENTS = 2_000_000


def paired_bootstrap(
    delta: np.ndarray, confidence: float, resamples: int, seed: int | list[int]
) -> Interval:
    """Interval of mean(delta) from `resamples` resamples of the examples, seeded."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    delta = np.asarray(delta, dtype=np.float64)
    n = delta.shape[0]
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        means[start : start + count] = delta[rng.integers(0, n, (count, n))].mean(axis=1)
    lower, upper = np.quantile(means, [1 - confidence, confidence])
    return Interval(
        confidence=confidence,
        lower=float(lower),
        upper=float(upper),
        p_improve=float(np.mean(means < 0)),
        resamples=resamples,
    )


def t_quantile(level: float, dof: int) -> float:
    """Student t quantile: the density integrated numerically (Simpson) and inverted by
    bisection; exact to about 1e-6, and no scipy needed."""
    norm = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi)

    def cdf(x: float) -> float:
        grid = np.linspace(0.0, x, 2001)
        density = norm * (1 + grid**2 / dof) ** (-(dof + 1) / 2)
        h = x / 2000
        return 0.5 + h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum()
                              + 2 * density[2:-1:2].sum())  # fmt: skip

    low, high = 0.0, 100.0  # above the 0.99 quantile at one degree of freedom (31.8)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < level else (low, middle)
    return (low + high) / 2
