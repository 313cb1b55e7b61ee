"""The early-curve model: transfer of the run's full curves, its interval, its t quantile."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edas_agent.fidelity.curves import CurveModel
from edas_agent.record import StagePoint
from edas_agent.theory.uncertainty import t_quantile

FRACTIONS = (1 / 9, 1 / 3, 1.0)


def curve(final: float, drops: tuple[float, float], D: float = 0.01) -> list[StagePoint]:
    """E_M (and E) falling by the factors `drops` from stage to stage, to `final`."""
    values = [final / (drops[0] * drops[1]), final / drops[1], final]
    pairs = zip(FRACTIONS, values, strict=True)
    return [StagePoint(fraction=f, E=v + D, D=D, E_M=v) for f, v in pairs]


def test_curves_of_one_shape_forecast_the_final_value_exactly_and_tightly():
    model = CurveModel(level=0.95)
    for final in (0.10, 0.12, 0.09, 0.11, 0.13):
        model.add(curve(final, (0.8, 0.9)))
    candidate = curve(0.105, (0.8, 0.9))
    forecast = model.predict(candidate[:1])
    assert forecast.E_M == pytest.approx(0.105, rel=1e-9) and forecast.curves == 5
    assert 0.105 * 0.7 < forecast.lower < 0.105  # optimistic, within the prior's spread
    assert model.predict(candidate[:2]).E_M == pytest.approx(0.105, rel=1e-9)


def test_a_candidate_that_still_falls_fast_is_forecast_to_fall_further():
    """With four or more curves the candidate's own slope between its stages is used."""
    model = CurveModel(level=0.95)
    for drop in (0.95, 0.9, 0.85, 0.8, 0.75):  # the steeper the second drop, the steeper the last
        model.add(curve(0.1, (drop, drop)))
    steep, flat = curve(0.1, (0.75, 0.75)), curve(0.1, (0.95, 0.95))
    assert model.predict(steep[:2]).E_M == pytest.approx(0.1, rel=1e-6)
    assert model.predict(flat[:2]).E_M == pytest.approx(0.1, rel=1e-6)
    assert model.predict(steep[:1]).E_M != pytest.approx(0.1, rel=1e-3)  # mean shape only


def test_few_or_scattered_curves_give_wide_intervals_and_none_gives_no_bound():
    assert CurveModel(0.95).predict(curve(0.1, (0.8, 0.9))[:1]).lower == 0.0
    rng = np.random.default_rng(0)
    one, many = CurveModel(0.95), CurveModel(0.95)
    one.add(curve(0.1, (0.8, 0.9)))
    for _ in range(30):
        many.add(curve(0.1, (0.8 * math.exp(rng.normal(0, 0.02)), 0.9)))
    probe = curve(0.1, (0.8, 0.9))[:1]
    assert one.predict(probe).lower < many.predict(probe).lower < 0.1


@pytest.mark.parametrize(
    ("level", "dof", "exact"), [(0.95, 1, 6.3138), (0.95, 2, 2.9200), (0.975, 10, 2.2281)]
)
def test_t_quantile_matches_tables(level, dof, exact):
    assert t_quantile(level, dof) == pytest.approx(exact, abs=2e-4)
