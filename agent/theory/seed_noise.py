"""Seed noise in a predicted E_M: the error a user's M-member ensemble will realise.

E_M is predicted from the k learners a candidate was judged on. Trained again with other
seeds, the same architecture gives other learners: the estimate moves (how much: the
jackknife over learners, `gate.statistics`' seed_se, k >= 3), and so does the realised
ensemble of M fresh members. With s the spread of one learner's contribution (seed_se x
sqrt(k)), the estimate's variance is about s^2 / k and the realised ensemble's about s^2 / M,
so the predictive interval is E_M +- q s sqrt(1/k + 1/M), q a Student t quantile on k - 1
degrees of freedom.

With k = 2 the jackknife has nothing to leave out (one learner alone has no diversity), so
s comes from a model pooled over the run's architectures that have >= 3 learners (its
start, confirmations, sequential rounds): the root mean square of their relative spreads
s / E_M. That prior is shrunk towards the architecture's own spread of learner errors (one
degree of freedom from two learners) as a scaled inverse chi-square posterior would:
s^2 = (PRIOR_DF s_pooled^2 + (k - 1) s_own^2) / (PRIOR_DF + k - 1), with a Student t
quantile on PRIOR_DF + k - 1 degrees of freedom. An architecture whose seeds differ far
more than the pooled ones did (feature bagging that drops a vital field for some seeds, a
learning rate that makes some seeds diverge) widens its own interval.

Selection (the winner's curse): a candidate that passed the gate on its decision learners
was chosen because those learners looked good, so their E_M is optimistic. Its fresh
confirmation learners were not chosen, so over the run's confirmed candidates the
relative gap u = (E_M fresh - E_M decision) / E_M decision measures that optimism on this
table, space and gate, less the gap the same seed indices give the start, where nothing
was selected (common random numbers: every candidate's decision learners are seeds 0 and
1, its fresh ones 2 and 3). Model: u - u_start = beta + noise, prior beta ~ N(0, s^2 / k)
(selection moves two learners' estimate by about its own seed spread at most); the
posterior mean and variance of beta (`Selection`) shift and widen the interval of every
selected estimate, scaled by the share of its learners that were selected (half of them
after a confirmation of two). With no pairs, the posterior is the prior: no shift, a wider
interval. Which spread an interval used is in its `source`.
Examples are not resampled: the interval is about seeds on the same examples (the gate's
`Interval` is about examples, for a difference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from edas_agent.theory.gate import Stats, residuals
from edas_agent.theory.uncertainty import t_quantile

LEVEL = 0.9
# How many learners' worth of evidence the pooled spread counts for against an
# architecture's own (module docstring). Chosen on four tables' coverage (calibration page,
# section 5: 4 over-covered Adult, the pooled spread alone left feature-bagged candidates
# outside) and checked on two others
PRIOR_DF = 8
# Two learners whose errors differ by more than this ratio: one of them trained unlike
# the other (seed-to-seed spreads measured on the tables here stay within a few percent)
UNSTABLE_RATIO = 1.25


class PredictedError(BaseModel):
    """E_M of a fresh M-member ensemble: the point prediction and its seed-noise interval."""

    model_config = ConfigDict(frozen=True)

    members: int
    E_M: float
    lower: float
    upper: float
    level: float
    source: Literal["learners", "pooled", "spread"]  # see the module docstring; "spread":
    # (runs before 2026-12-07) an unstable architecture's own spread, wider than the pooled
    k: int
    pooled_over: int | None = None  # architectures the pooled spread came from
    # the winner's-curse correction (module docstring): relative shift of the centre, and
    # how many of the k learners were chosen by a gate (0: not selected, no shift)
    shift: float = 0.0
    selected: int = 0

    @property
    def centre(self) -> float:
        """The selection-corrected point: E_M (1 + shift)."""
        return (self.lower + self.upper) / 2

    def covers(self, realised: float) -> bool:
        return self.lower <= realised <= self.upper

    @property
    def half_width(self) -> float:
        return (self.upper - self.lower) / 2


class Pooled(BaseModel):
    """The run's seed-noise model: relative spread of one learner, over architectures."""

    model_config = ConfigDict(frozen=True)

    relative_spread: float
    architectures: int


class Selection(BaseModel):
    """The run's winner's curse (module docstring): posterior of the relative optimism of a
    selected decision estimate, from `pairs` confirmed candidates."""

    model_config = ConfigDict(frozen=True)

    shift: float
    variance: float
    pairs: int


def measure_selection(
    optimism: list[float],
    pooled: Pooled,
    decision_learners: int = 2,
    fresh_learners: int = 2,
    reference: float | None = None,
) -> Selection:
    """Posterior of beta from the relative gaps u (fresh minus decision E_M over decision
    E_M) of the run's confirmed candidates: normal prior N(0, s^2 / k), normal noise.
    `reference`: the same gap between the start's learners, where nothing was selected.
    Under common random numbers every candidate's decision and fresh learners share seed
    indices, so part of each gap is those seeds' own, common to all candidates; the start
    measures it once, and its noise stays in the posterior however many pairs there are."""
    s2 = pooled.relative_spread**2
    prior_precision = decision_learners / s2
    if not optimism:
        return Selection(shift=0.0, variance=1 / prior_precision, pairs=0)
    noise = s2 * (1 / decision_learners + 1 / fresh_learners)
    gap = float(np.mean(optimism)) - (reference or 0.0)
    observed = noise / len(optimism) + (noise if reference is not None else 0.0)
    precision = prior_precision + 1 / observed
    return Selection(shift=gap / observed / precision, variance=1 / precision,
                     pairs=len(optimism))  # fmt: skip


def relative_spread(stats: Stats) -> float | None:
    """s / E_M of one architecture (module docstring), k >= 3 only."""
    if stats.seed_se is None or stats.k < 3 or stats.E_M <= 0:
        return None
    return stats.seed_se * math.sqrt(stats.k) / stats.E_M


def pool_spreads(measured: Iterable[Stats]) -> Pooled | None:
    """The pooled model from the statistics that measured a spread (one per architecture:
    the one on the most learners)."""
    spreads = [s for s in (relative_spread(stats) for stats in measured) if s is not None]
    if not spreads:
        return None
    return Pooled(
        relative_spread=float(np.sqrt(np.mean(np.square(spreads)))), architectures=len(spreads)
    )


def predictive_interval(
    stats: Stats,
    members: int,
    pooled: Pooled | None,
    level: float = LEVEL,
    learner_errors: np.ndarray | None = None,
    selection: Selection | None = None,
    selected: int = 0,
) -> PredictedError | None:
    """The interval of the realised M-member error; None when k = 2 and nothing is pooled.
    `learner_errors` (each learner's own error) shrink a pooled spread towards this
    architecture's own; `selected` of the k learners were chosen by a gate, and `selection`
    (the run's measured winner's curse) shifts and widens the interval for them."""
    k = stats.k
    own = relative_spread(stats)
    if own is not None:
        spread, source, quantile = own, "learners", t_quantile((1 + level) / 2, k - 1)
    elif pooled is not None:
        spread, source = pooled.relative_spread, "pooled"
        quantile = NormalDist().inv_cdf((1 + level) / 2)
        if learner_errors is not None and len(learner_errors) >= 2 and stats.E_M > 0:
            own_variance = float(np.var(learner_errors, ddof=1)) / stats.E_M**2
            spread = math.sqrt((PRIOR_DF * spread**2 + (k - 1) * own_variance) / (PRIOR_DF + k - 1))
            quantile = t_quantile((1 + level) / 2, PRIOR_DF + k - 1)
    else:
        return None
    variance = spread**2 * (1 / k + 1 / members)
    shift = 0.0
    if selection is not None and selected:
        share = selected / k
        shift = share * selection.shift
        variance += share**2 * selection.variance
    centre, half = stats.E_M * (1 + shift), quantile * stats.E_M * math.sqrt(variance)
    return PredictedError(
        members=members, E_M=stats.E_M, lower=centre - half, upper=centre + half,
        level=level, source=source, k=k,
        pooled_over=pooled.architectures if source != "learners" and pooled else None,
        shift=shift, selected=selected if selection is not None else 0,
    )  # fmt: skip


def mixture_interval(
    E_mix: float, parts: list[tuple[int, Stats]], pooled: Pooled | None, level: float = LEVEL
) -> PredictedError | None:
    """The interval of a mixture's realised error: n_a fresh members of each architecture
    a, its statistics from k_a learners (at M = sum n_a). Architecture a's spread s_a
    enters twice, as in the homogeneous case it reduces to: its estimate, weighted by its
    share n_a / M, varies as (n_a / M)^2 s_a^2 / k_a, and its n_a fresh members as
    n_a s_a^2 / M^2. Each term is scaled by its own quantile (Student t on k_a - 1 degrees
    of freedom for a measured spread, normal for the pooled one), which keeps a mixture
    mostly of one architecture close to that architecture's own interval. None when an
    architecture has k = 2 and nothing is pooled."""
    members = sum(n for n, _ in parts)
    normal = NormalDist().inv_cdf((1 + level) / 2)
    squared_half, own_only = 0.0, True
    for n, stats in parts:
        relative = relative_spread(stats)
        quantile = t_quantile((1 + level) / 2, stats.k - 1) if relative is not None else normal
        if relative is None:
            if pooled is None:
                return None
            relative, own_only = pooled.relative_spread, False
        spread = relative * stats.E_M
        variance = (n / members) ** 2 * spread**2 / stats.k + n * spread**2 / members**2
        squared_half += quantile**2 * variance
    half = math.sqrt(squared_half)
    k = min(stats.k for _, stats in parts)
    return PredictedError(
        members=members, E_M=E_mix, lower=E_mix - half, upper=E_mix + half, level=level,
        source="learners" if own_only else "pooled", k=k,
        pooled_over=None if own_only or pooled is None else pooled.architectures,
    )  # fmt: skip


def pooled_noise_floor(pooled: Pooled, baseline: Stats, start_learners: int, multiple: float):
    """The gate's floor from the pooled model (gate.floor_from: pooled): theory/gate.py's
    seed_noise_floor with the start's own jackknife standard error replaced by the pooled
    spread at the current baseline's E_M over as many learners as the start had,
    multiple x sqrt(2) x relative spread x E_M / sqrt(k_start)."""
    return (
        multiple
        * math.sqrt(2.0)
        * pooled.relative_spread
        * baseline.E_M
        / math.sqrt(start_learners)
    )


def learner_errors(predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each learner's own squared error (k,), as E averages it."""
    return np.mean(np.sum(residuals(predictions, y) ** 2, axis=-1), axis=1)


def unstable_learners(errors: np.ndarray) -> list[int]:
    """Learners whose error is far from their siblings': above UNSTABLE_RATIO times the
    median of the others (with two learners, the worse one when they differ that much).
    A diverged learner (NaN) fails its candidate before this."""
    errors = np.asarray(errors, dtype=np.float64)
    flagged = []
    for j, error in enumerate(errors):
        others = np.delete(errors, j)
        if len(others) and error > UNSTABLE_RATIO * float(np.median(others)):
            flagged.append(j)
    return flagged
