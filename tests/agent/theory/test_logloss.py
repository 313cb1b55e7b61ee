from __future__ import annotations

import numpy as np
import pytest

from edas_agent.theory.logloss import logloss_statistics, logloss_terms


def logit_average_logloss(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Log-loss of the normalised geometric mean, computed the direct way."""
    if probabilities.ndim == 2:
        probabilities = np.stack([1 - probabilities, probabilities], axis=-1)
    combined = np.exp(np.log(probabilities).mean(axis=0))
    combined /= combined.sum(axis=-1, keepdims=True)
    return float(-np.mean(np.log(combined[np.arange(len(y)), y])))


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("classes", [2, 4])
def test_k_member_logit_average_is_exact(k, classes):
    rng = np.random.default_rng(k * 10 + classes)
    n = 400
    y = rng.integers(0, classes, n)
    if classes == 2:
        predictions = rng.uniform(0.02, 0.98, (k, n))
    else:
        predictions = rng.dirichlet(np.ones(classes), (k, n))
    s = logloss_statistics(predictions, y, members=k)
    direct = logit_average_logloss(predictions, y)
    assert abs(s.E_k - direct) < 1e-12
    assert abs(s.E_M - direct) < 1e-12  # at M = k the extrapolation is exact too
    assert logloss_terms(predictions, y, k).mean() == pytest.approx(direct, abs=1e-12)
    assert s.diversity >= 0 and s.E_M_is == "approximate"


def test_diversity_is_the_mean_kl_from_the_combined_prediction():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), (2, 50))
    q = np.exp(np.log(p).mean(axis=0))
    q /= q.sum(axis=-1, keepdims=True)
    kl = np.mean([np.sum(q * (np.log(q) - np.log(p[j])), axis=-1) for j in range(2)], axis=0)
    y = rng.integers(0, 3, 50)
    assert logloss_statistics(p, y, 10).diversity == pytest.approx(kl.mean(), abs=1e-12)


def test_extrapolation_grows_the_diversity_gain_with_M():
    rng = np.random.default_rng(4)
    p, y = rng.uniform(0.05, 0.95, (2, 300)), rng.integers(0, 2, 300)
    assert logloss_statistics(p, y, 50).E_M < logloss_statistics(p, y, 2).E_M
