"""The seed-noise interval of E_M: it does not under-cover realised ensembles of
simulated learners (it is conservative there: the jackknife overstates the spread at small
k; real tables are in docs/benchmarks/calibration.md), k = 2 borrows a pooled spread,
an architecture whose two learners differ widens it, and a candidate chosen by a gate is
corrected by the run's measured winner's curse."""

from __future__ import annotations

import numpy as np
import pytest

from edas_agent.theory.gate import ensemble_error, statistics
from edas_agent.theory.mixture import mixture_error, moments
from edas_agent.theory.seed_noise import (
    PRIOR_DF,
    learner_errors,
    measure_selection,
    mixture_interval,
    pool_spreads,
    predictive_interval,
    unstable_learners,
)

N, M = 400, 16


def _learners(rng: np.random.Generator, y: np.ndarray, count: int) -> np.ndarray:
    """Learners of one architecture: a shared bias per example plus seed noise, and a
    per-seed offset that makes their errors differ (what seeds do to real learners)."""
    shared = 0.3 * np.sin(np.arange(N))  # the architecture's own errors
    return y + shared + rng.normal(0, 0.4, (count, N)) + rng.normal(0, 0.05, (count, 1))


def _realised(predictions: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((predictions.mean(axis=0) - y) ** 2))


def test_the_learners_own_interval_covers_fresh_ensembles_at_about_its_level():
    rng = np.random.default_rng(0)
    y = rng.normal(size=N)
    covered = []
    for _ in range(400):
        stats = statistics(_learners(rng, y, 4), y, M)
        interval = predictive_interval(stats, M, pooled=None)
        assert interval is not None and interval.source == "learners" and interval.k == 4
        covered.append(interval.covers(_realised(_learners(rng, y, M), y)))
    assert 0.87 <= np.mean(covered) <= 0.995


def test_two_learners_borrow_the_pooled_spread_and_cover_too():
    rng = np.random.default_rng(1)
    y = rng.normal(size=N)
    measured = pool_spreads(statistics(_learners(rng, y, 4), y, M) for _ in range(8))
    assert measured is not None and measured.architectures == 8
    covered = []
    for _ in range(400):
        stats = statistics(_learners(rng, y, 2), y, M)
        interval = predictive_interval(stats, M, measured)
        assert interval.source == "pooled" and interval.pooled_over == 8
        covered.append(interval.covers(_realised(_learners(rng, y, M), y)))
    assert 0.87 <= np.mean(covered) <= 0.995
    # Without anything pooled, two learners give no interval rather than a made-up one
    assert predictive_interval(stats, M, None) is None
    assert pool_spreads([stats]) is None  # two learners measure no spread


def test_the_interval_is_centred_on_the_prediction_and_narrows_with_learners():
    rng = np.random.default_rng(2)
    y = rng.normal(size=N)
    few, many = statistics(_learners(rng, y, 3), y, M), statistics(_learners(rng, y, 12), y, M)
    a, b = predictive_interval(few, M, None), predictive_interval(many, M, None)
    assert a.E_M == pytest.approx(ensemble_error(few.E, few.D, M))
    assert a.lower < a.E_M < a.upper and (a.upper - a.E_M) == pytest.approx(a.E_M - a.lower)
    assert (b.upper - b.lower) < (a.upper - a.lower)


def test_a_learner_far_from_its_siblings_is_flagged_and_widens_a_pooled_interval():
    rng = np.random.default_rng(3)
    y = rng.normal(size=N)
    measured = pool_spreads(statistics(_learners(rng, y, 4), y, M) for _ in range(5))
    steady = _learners(rng, y, 2)
    diverged = steady.copy()
    diverged[1] = y + rng.normal(0, 1.5, N)  # one seed trained badly
    assert unstable_learners(learner_errors(steady, y)) == []
    errors = learner_errors(diverged, y)
    assert unstable_learners(errors) == [1]
    assert unstable_learners(np.array([0.44, 0.43, 0.78, 0.45])) == [2]
    stats = statistics(diverged, y, M)
    plain = predictive_interval(stats, M, measured)
    wide = predictive_interval(stats, M, measured, learner_errors=errors)
    assert wide.source == "pooled" and (wide.upper - wide.lower) > 2 * (plain.upper - plain.lower)
    # two steady learners widen it far less (their own spread weighs 1 against PRIOR_DF)
    calm = statistics(steady, y, M)
    own = predictive_interval(calm, M, measured, learner_errors=learner_errors(steady, y))
    pooled_only = predictive_interval(calm, M, measured)
    ratio = (own.upper - own.lower) / (pooled_only.upper - pooled_only.lower)
    assert 1 < ratio < (wide.upper - wide.lower) / (plain.upper - plain.lower) and PRIOR_DF >= 1


def test_the_winners_curse_posterior_shrinks_to_no_shift_without_pairs():
    measured = pool_spreads([statistics(np.array([[0.1, 0.2], [0.3, 0.1], [0.2, 0.3]]),
                                        np.array([0.0, 0.1]), M)])  # fmt: skip
    s2 = measured.relative_spread**2
    none = measure_selection([], measured)
    assert none.shift == 0 and none.variance == pytest.approx(s2 / 2) and none.pairs == 0
    few = measure_selection([0.05], measured)
    many = measure_selection([0.05] * 400, measured)
    assert 0 < few.shift < many.shift < 0.05 and many.shift == pytest.approx(0.05, rel=0.02)
    assert many.variance < few.variance < none.variance
    # a gap the start's own seeds show too is theirs, not selection's; and the start's one
    # measurement keeps the posterior from narrowing however many pairs there are
    seeds_only = measure_selection([0.05] * 400, measured, reference=0.05)
    assert seeds_only.shift == pytest.approx(0.0, abs=1e-12)
    referenced = measure_selection([0.05] * 400, measured, reference=0.0)
    assert referenced.shift < many.shift and referenced.variance > 10 * many.variance


def test_a_selected_winner_is_covered_once_the_runs_winners_curse_corrects_it():
    """Simulated search where the truth is known: every candidate is the baseline's
    architecture again, so any winner won on seed luck alone. Winners' decision estimates
    are optimistic; the interval corrected by the winner's curse measured on earlier
    winners' fresh learners covers their fresh ensembles at about its level, the
    uncorrected one misses, and always on the same side."""
    rng = np.random.default_rng(6)
    y = rng.normal(size=N)
    measured = pool_spreads(statistics(_learners(rng, y, 4), y, M) for _ in range(8))
    truth = float(np.mean([statistics(_learners(rng, y, 16), y, M).E_M for _ in range(20)]))
    optimism, plain, corrected, above = [], [], [], 0
    while len(plain) < 300:
        learners = _learners(rng, y, 4)
        decision = statistics(learners[:2], y, M)
        if decision.E_M >= 0.9 * truth:  # the gate: only an apparent gain of 10 % passes
            continue
        selection = measure_selection(optimism, measured)
        realised = _realised(np.concatenate([learners[:2], _learners(rng, y, M - 2)]), y)
        if len(optimism) >= 20:  # enough pairs for the posterior to have moved
            before = predictive_interval(decision, M, measured)
            after = predictive_interval(decision, M, measured, selection=selection, selected=2)
            assert after.shift > 0 and after.centre > before.centre and after.selected == 2
            plain.append(before.covers(realised))
            corrected.append(after.covers(realised))
            above += realised > before.upper
        fresh = statistics(learners[2:], y, M)  # the confirmation's fresh learners
        optimism.append((fresh.E_M - decision.E_M) / decision.E_M)
    assert np.mean(plain) < 0.8 and above == len(plain) - sum(plain)
    assert 0.85 <= np.mean(corrected) <= 0.97


def test_a_mixture_of_one_architecture_has_the_homogeneous_interval():
    rng = np.random.default_rng(4)
    y = rng.normal(size=N)
    measured = pool_spreads(statistics(_learners(rng, y, 4), y, M) for _ in range(5))
    for k in (2, 5):
        stats = statistics(_learners(rng, y, k), y, M)
        alone = predictive_interval(stats, M, measured)
        mixed = mixture_interval(stats.E_M, [(M, stats)], measured)
        assert (mixed.lower, mixed.upper, mixed.source) == pytest.approx(
            (alone.lower, alone.upper, alone.source)
        )
    assert mixture_interval(stats.E_M, [(M, statistics(_learners(rng, y, 2), y, M))], None) is None


def test_the_mixture_interval_covers_fresh_mixtures_at_about_its_level():
    rng = np.random.default_rng(5)
    y = rng.normal(size=N)
    other = 0.3 * np.cos(np.arange(N))  # a second architecture with errors of its own

    def learners(a: int, count: int) -> np.ndarray:
        shift = 0 if a == 0 else other - 0.3 * np.sin(np.arange(N))
        return _learners(rng, y, count) + shift

    counts = np.array([10, 6])
    covered = []
    for _ in range(300):
        pools = [learners(0, 4), learners(1, 3)]
        E_mix = mixture_error(moments(pools, y), counts)
        parts = [
            (int(n), statistics(p, y, int(counts.sum())))
            for n, p in zip(counts, pools, strict=True)
        ]
        interval = mixture_interval(E_mix, parts, None)
        assert interval.source == "learners" and interval.k == 3 and interval.members == 16
        fresh = np.concatenate([learners(0, 10), learners(1, 6)])
        covered.append(interval.covers(_realised(fresh, y)))
    assert 0.85 <= np.mean(covered) <= 0.995
