"""The estimators against hand-computed cases, the M = k identity, and the rules' properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edas_agent.theory.gate import (
    Stats,
    decide,
    ensemble_error,
    exact_rule,
    frontier_rho,
    paper_rule,
    statistics,
)


def test_binary_two_learners_by_hand():
    preds = np.array([[0.2, 0.8, 0.6], [0.4, 0.6, 0.9]])
    y = np.array([0, 1, 1])
    s = statistics(preds, y, members=50)
    # r1 = (0.2, -0.2, -0.4), r2 = (0.4, -0.4, -0.1)
    assert s.k == 2
    assert s.E == pytest.approx(0.57 / 6, abs=1e-15)
    assert s.D == pytest.approx(0.17 / 6, abs=1e-15)  # (0.2^2 + 0.2^2 + 0.3^2) / 3 / 2
    assert s.sigma2 == pytest.approx(77 / 900, abs=1e-15)  # (14/225 + 49/450) / 2
    assert s.rho == pytest.approx(1 - (17 / 600) / (77 / 900), abs=1e-14)
    assert s.E_M == pytest.approx(0.095 - 49 / 50 * 17 / 600, abs=1e-15)


def test_three_learners_by_hand():
    preds = np.array([[0.1, 0.9], [0.3, 0.7], [0.2, 1.0]])
    y = np.array([0, 1])
    s = statistics(preds, y, members=3)
    # Pairs (1,2), (1,3), (2,3): mean_i diff^2 / 2 = 0.02, 0.005, 0.025.
    assert s.D == pytest.approx(0.05 / 3, abs=1e-15)
    # E = mean of 0.01, 0.01, 0.09, 0.09, 0.04, 0.0
    assert s.E == pytest.approx(0.24 / 6, abs=1e-15)
    # The 3-member ensemble (0.2, 0.8666..) has error ((0.2)^2 + (0.1333..)^2) / 2.
    realised = np.mean((preds.mean(axis=0) - y) ** 2)
    assert s.E_M == pytest.approx(realised, abs=1e-12)


def test_multiclass_by_hand():
    preds = np.array(
        [
            [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]],
            [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]],
        ]
    )
    y = np.array([0, 2])
    s = statistics(preds, y, members=2)
    assert s.E == pytest.approx(1.02 / 4, abs=1e-15)
    assert s.D == pytest.approx(0.02, abs=1e-15)
    assert s.sigma2 == pytest.approx(0.16, abs=1e-15)
    assert s.rho == pytest.approx(0.875, abs=1e-14)
    assert s.E_M == pytest.approx(0.245, abs=1e-15)


def test_disagreement_matches_the_pairwise_definition():
    rng = np.random.default_rng(3)
    preds = rng.random((5, 40))
    y = rng.integers(0, 2, 40)
    pairs = [
        np.mean((preds[a] - preds[b]) ** 2) / 2 for a, b in itertools.combinations(range(5), 2)
    ]
    assert statistics(preds, y, 10).D == pytest.approx(np.mean(pairs), rel=1e-12)


@pytest.mark.parametrize("task", ["binary", "regression", "multiclass"])
def test_members_equal_learners_is_exact_to_1e12(task):
    rng = np.random.default_rng(7)
    n = 500
    if task == "multiclass":
        logits = rng.normal(size=(2, n, 4))
        preds = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        y = rng.integers(0, 4, n)
        realised = np.mean(np.sum((preds.mean(axis=0) - np.eye(4)[y]) ** 2, axis=-1))
    else:
        preds = rng.random((2, n)) if task == "binary" else rng.normal(size=(2, n)) * 5
        y = rng.integers(0, 2, n) if task == "binary" else rng.normal(size=n) * 5
        realised = np.mean((preds.mean(axis=0) - y) ** 2)
    assert abs(statistics(preds, y, members=2).E_M - realised) < 1e-12


def test_rho_is_the_pooled_residual_correlation_up_to_mean_residuals():
    rng = np.random.default_rng(11)
    y = rng.normal(size=20_000)
    shared = rng.normal(size=20_000)
    preds = np.stack([y + shared + 0.5 * rng.normal(size=20_000) for _ in range(2)])
    s = statistics(preds, y, 2)
    r = preds - y
    assert s.rho == pytest.approx(np.corrcoef(r[0], r[1])[0, 1], abs=5e-3)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        statistics(np.zeros((2, 3)), np.zeros(4), 5)
    with pytest.raises(ValueError, match="k >= 2"):
        statistics(np.zeros((1, 3)), np.zeros(3), 5)
    with pytest.raises(ValueError, match="class ids"):
        statistics(np.zeros((2, 3, 2)), np.array([0, 1, 2]), 5)


def _stats(E: float, sigma2: float, rho: float, members: int = 50) -> Stats:
    D = sigma2 * (1 - rho)
    return Stats(k=2, E=E, sigma2=sigma2, rho=rho, D=D, E_M=ensemble_error(E, D, members))


errors = st.floats(0.01, 1.0)
variances = st.floats(0.001, 0.5)
correlations = st.floats(0.0, 0.999)
sizes = st.integers(2, 500)


@given(errors, errors, variances, correlations, correlations, sizes)
def test_paper_equals_exact_when_sigma2_is_equal(E_old, E_new, sigma2, rho_old, rho_new, M):
    old, new = _stats(E_old, sigma2, rho_old, M), _stats(E_new, sigma2, rho_new, M)
    # Away from the boundary, where rounding could tip either comparison.
    assume(abs(ensemble_error(new.E, new.D, M) - ensemble_error(old.E, old.D, M)) > 1e-9)
    assert paper_rule(old, new, M) == exact_rule(old, new, M)


@given(errors, errors, variances, variances, correlations, correlations, sizes)
def test_exact_rule_is_the_delta_form(E_old, E_new, s_old, s_new, rho_old, rho_new, M):
    old, new = _stats(E_old, s_old, rho_old, M), _stats(E_new, s_new, rho_new, M)
    delta_E = new.E - old.E
    bound = (M - 1) / M * (new.D - old.D)
    assume(abs(delta_E - bound) > 1e-9)
    assert exact_rule(old, new, M) == (delta_E < bound)


@given(errors, variances, correlations, st.integers(1, 1000))
def test_ensemble_error_decreases_in_members_when_learners_disagree(E, sigma2, rho, M):
    D = sigma2 * (1 - rho)
    assume(D > 1e-9)
    assert ensemble_error(E, D, M + 1) < ensemble_error(E, D, M)


def test_paper_and_exact_can_disagree_when_sigma2_differs():
    old = _stats(0.10, 0.05, 0.90)
    # Worse alone, much more diverse, but with a larger residual variance.
    new = _stats(0.1005, 0.08, 0.92)
    assert exact_rule(old, new, 50) != paper_rule(old, new, 50)


def test_decide_logs_both_rules_and_the_configured_one_decides():
    old = _stats(0.10, 0.05, 0.90)
    new = _stats(0.1005, 0.08, 0.92)
    exact = decide(old, new, 50, "exact")
    paper = decide(old, new, 50, "paper")
    assert exact.rules == paper.rules
    assert exact.accepted == exact.rules.exact
    assert paper.accepted == paper.rules.paper
    assert exact.delta_E == pytest.approx(0.0005)
    assert exact.reason.startswith("exact:") and paper.reason.startswith("paper:")


def test_frontier_separates_accepted_from_rejected():
    old = _stats(0.10, 0.05, 0.95)
    delta_E = 0.0002
    limit = frontier_rho(old, delta_E, 50)
    assert limit < old.rho  # a worse learner must be more diverse
    assert decide(old, _stats(0.1002, 0.05, limit - 1e-4), 50, "exact").accepted
    assert not decide(old, _stats(0.1002, 0.05, limit + 1e-4), 50, "exact").accepted


def test_jackknife_seed_noise_needs_three_learners():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 200)
    preds = np.clip(y + rng.normal(0, 0.4, (3, 200)), 0, 1)
    assert statistics(preds[:2], y, 10).seed_se is None
    s = statistics(preds, y, 10)
    leave_one_out = [statistics(np.delete(preds, j, axis=0), y, 10).E_M for j in range(3)]
    expected = np.sqrt(2 / 3 * np.sum((np.array(leave_one_out) - np.mean(leave_one_out)) ** 2))
    assert s.seed_se == pytest.approx(expected, rel=1e-12) and s.seed_se > 0


def test_per_example_terms_average_to_E_M():
    from edas_agent.theory.gate import per_example_terms

    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, 100)
    preds = rng.dirichlet(np.ones(3), (3, 100))
    assert per_example_terms(preds, y, 7).mean() == pytest.approx(
        statistics(preds, y, 7).E_M, abs=1e-14
    )


def test_the_confidence_gate_needs_the_interval_to_clear_zero():
    from edas_agent.theory.uncertainty import Interval

    old, new = _stats(0.10, 0.05, 0.90), _stats(0.099, 0.05, 0.90)  # better by the point estimate
    unsure = Interval(confidence=0.9, lower=-0.002, upper=0.0005, p_improve=0.7, resamples=100)
    sure = Interval(confidence=0.9, lower=-0.002, upper=-0.0001, p_improve=0.97, resamples=100)
    assert decide(old, new, 50, "exact", unsure).accepted  # logged, not deciding
    assert not decide(old, new, 50, "exact", unsure, confidence=0.9).accepted
    assert decide(old, new, 50, "exact", sure, confidence=0.9).accepted
    with pytest.raises(ValueError, match="interval at confidence"):
        decide(old, new, 50, "exact", None, confidence=0.9)
    with pytest.raises(ValueError, match="classification only"):
        decide(old, new, 50, "logloss")


def test_the_single_rule_is_single_learner_error_and_its_interval_is_of_delta_E():
    from edas_agent.theory.gate import Gate

    old = _stats(0.10, 0.05, 0.90)
    diverse = _stats(0.1005, 0.08, 0.80)  # worse alone, better as an ensemble
    assert decide(old, diverse, 50, "exact").accepted
    single = decide(old, diverse, 50, "single")
    assert not single.accepted and single.reason.startswith("single: E 0.10050 >=")
    assert single.rules.single is False and decide(old, diverse, 50, "exact").rules == single.rules

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    base = np.clip(y + rng.normal(0, 0.3, (2, 300)), 0, 1)
    cand = np.clip(y + rng.normal(0, 0.45, (2, 300)), 0, 1)
    judgement, _ = Gate(50, "single", resamples=200).judge(base, cand, y, "binary", [0])
    dE = statistics(cand, y, 50).E - statistics(base, y, 50).E
    assert judgement.interval.lower < dE < judgement.interval.upper
    assert judgement.accepted == (dE < 0)


def test_a_floor_rejects_gains_smaller_than_it_in_the_deciding_loss():
    old = _stats(0.10, 0.05, 0.90)
    new = _stats(0.0995, 0.05, 0.90)  # E_M lower by 0.0005
    gain = old.E_M - new.E_M
    assert decide(old, new, 50, "exact", floor=gain * 0.9).accepted
    small = decide(old, new, 50, "exact", floor=gain * 1.1)
    assert not small.accepted and small.rules.exact  # the rule passed; the effect did not
    assert "< floor" in small.reason and small.floor == pytest.approx(gain * 1.1)


def test_the_seed_noise_floor_is_root_two_jackknife_errors_of_the_start():
    from edas_agent.theory.gate import seed_noise_floor

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    start = statistics(np.clip(y + rng.normal(0, 0.4, (4, 300)), 0, 1), y, 50)
    assert seed_noise_floor(start, 0.5) == pytest.approx(0.5 * np.sqrt(2) * start.seed_se)
    with pytest.raises(ValueError, match="at least 3 learners"):
        seed_noise_floor(statistics(np.clip(y + rng.normal(0, 0.4, (2, 300)), 0, 1), y, 50), 1)
