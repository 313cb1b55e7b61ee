"""Feature bagging in closed form: the quadratics, their vertex f*(M), the bootstrap and the
fractions measured."""

from __future__ import annotations

import numpy as np
import pytest

from edas_agent.continuous.bagging import Point, fit_bagging, optimum
from edas_agent.continuous.tuning import fractions_to_measure
from edas_agent.errors import UserError

FIELDS = 10


def E_true(x):
    return 0.10 + 0.02 * x + 0.30 * x**2


def D_true(x):
    return 0.01 + 0.15 * x + 0.05 * x**2


def points(noise: float = 0.0, n: int = 2000) -> list[Point]:
    rng = np.random.default_rng(0)
    made = []
    for kept in (10, 8, 6, 4, 3):
        x = 1 - kept / FIELDS
        e = E_true(x) + noise * rng.normal(size=n)
        d = D_true(x) + noise * rng.normal(size=n)
        made.append(Point(kept / FIELDS, kept / FIELDS, e - e.mean() + E_true(x),
                          d - d.mean() + D_true(x)))  # fmt: skip
    return made


def test_the_fit_recovers_the_quadratics_and_the_vertex_is_the_minimum():
    fit = fit_bagging(points(), FIELDS)
    assert np.allclose(fit.E_coef, (0.10, 0.02, 0.30))
    assert np.allclose(fit.D_coef, (0.01, 0.15, 0.05))
    grid = np.linspace(0.3, 1.0, 7001)
    for M in (1, 2, 16, 200):
        brute = grid[np.argmin([fit.E_M(phi, M) for phi in grid])]
        assert fit.best_overlap(M) == pytest.approx(brute, abs=2e-4)
    assert fit.best_overlap(1) == 1.0  # one learner: fewer fields only hurt here
    optima = [fit.best_overlap(M) for M in (2, 4, 16, 50, 200)]
    assert optima == sorted(optima, reverse=True) and optima[-1] < 0.9  # f* falls with M


def test_the_optimum_is_not_extrapolated_beyond_the_measured_fractions():
    fit = fit_bagging([p for p in points() if p.overlap >= 0.6], FIELDS)
    assert fit.best_overlap(10_000) >= 0.6


def test_the_set_fraction_is_a_whole_number_of_fields_and_the_interval_holds_the_estimate():
    measured = points(noise=0.05)
    fit = fit_bagging(measured, FIELDS)
    best = optimum(fit, measured, 200, resamples=300)
    assert best.fields_kept in (int(best.overlap * FIELDS), int(best.overlap * FIELDS) + 1)
    assert best.fraction == best.fields_kept / FIELDS
    low, high = best.overlap_interval
    assert low <= best.overlap <= high and high - low > 0  # noisy terms: a real spread
    assert best.E_M <= best.E_M_full


def test_two_fractions_fit_lines_and_one_is_refused():
    line = fit_bagging(points()[:2], FIELDS)
    assert len(line.E_coef) == 2
    with pytest.raises(ValueError, match="fewer than two"):
        fit_bagging(points()[:1], FIELDS)


def test_the_fractions_measured_are_distinct_field_counts_within_the_space():
    assert fractions_to_measure(14, None) == [1.0, 10 / 14, 7 / 14, 4 / 14]
    assert fractions_to_measure(3, [1.0, 0.9, 0.5]) == [1.0, 2 / 3]
    with pytest.raises(UserError, match="at least 2 feature"):
        fractions_to_measure(1, None)
    with pytest.raises(UserError, match="two different"):
        fractions_to_measure(4, [1.0, 0.95])
