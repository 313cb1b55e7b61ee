from __future__ import annotations

import numpy as np
import pytest

from edas_agent.theory.gate import per_example_terms, statistics
from edas_agent.theory.uncertainty import paired_bootstrap


def test_same_seed_same_interval_other_seed_other_interval():
    delta = np.random.default_rng(0).normal(-0.001, 0.01, 2000)
    a = paired_bootstrap(delta, 0.9, 500, seed=[1, 2])
    assert a == paired_bootstrap(delta, 0.9, 500, seed=[1, 2])
    assert a != paired_bootstrap(delta, 0.9, 500, seed=[1, 3])
    assert a.lower <= delta.mean() <= a.upper


def test_the_mean_of_paired_differences_is_delta_E_M():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    base = rng.dirichlet(np.ones(3), (3, 300))
    cand = rng.dirichlet(np.ones(3), (2, 300))
    delta = per_example_terms(cand, y, 50) - per_example_terms(base, y, 50)
    expected = statistics(cand, y, 50).E_M - statistics(base, y, 50).E_M
    assert delta.mean() == pytest.approx(expected, abs=1e-12)


def test_identical_predictions_give_a_zero_interval():
    interval = paired_bootstrap(np.zeros(100), 0.9, 200, seed=0)
    assert (interval.lower, interval.upper, interval.p_improve) == (0.0, 0.0, 0.0)
    assert not interval.straddles_zero()


def test_a_clear_improvement_clears_zero():
    interval = paired_bootstrap(np.full(100, -0.01) + np.linspace(-1e-3, 1e-3, 100), 0.95, 300, 0)
    assert interval.upper < 0 and interval.p_improve == 1.0


def test_one_sided_upper_bound_covers_the_truth_about_as_often_as_promised():
    rng = np.random.default_rng(5)
    covered = [
        paired_bootstrap(rng.normal(0.0, 1.0, 400), 0.9, 400, seed=trial).upper >= 0.0
        for trial in range(300)
    ]
    assert 0.85 <= np.mean(covered) <= 0.95


def test_a_bad_confidence_is_refused():
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(np.zeros(10), 1.0, 100, 0)
