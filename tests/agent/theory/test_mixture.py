import itertools

import numpy as np
import pytest

from edas_agent.theory.gate import residuals, statistics
from edas_agent.theory.mixture import (
    best_mixture,
    example_terms,
    greedy,
    local_search,
    mixture_error,
    moments,
    rounded_simplex,
)


def learners(rng, architectures: int, k: int, n: int = 200, classes: int | None = None):
    """Predictions of `architectures` architectures whose learners share a per-seed
    component (as learners with the same seed index do) and differ in bias and noise."""
    shape = (n,) if classes is None else (n, classes)
    y = rng.integers(0, 2, n) if classes is None else rng.integers(0, classes, n)
    truth = y.astype(float) if classes is None else np.eye(classes)[y]
    per_seed = rng.normal(0, 0.1, (k, *shape))
    preds = []
    for a in range(architectures):
        bias = rng.normal(0, 0.2, shape)
        noise = rng.normal(0, 0.05 + 0.05 * a, (k, *shape))
        preds.append(truth + bias + per_seed + noise)
    return preds, y


def realised(preds: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.sum(residuals(preds.mean(axis=0, keepdims=True), y) ** 2, -1)))


@pytest.mark.parametrize("classes", [None, 3])
def test_one_architecture_is_the_gates_E_M(classes):
    rng = np.random.default_rng(0)
    (p,), y = learners(rng, 1, 5, classes=classes)
    m = moments([p], y)
    for M in (1, 2, 7, 100):
        assert mixture_error(m, np.array([M])) == pytest.approx(statistics(p, y, M).E_M, abs=1e-12)
    assert mixture_error(m, np.array([5])) == pytest.approx(realised(p, y), abs=1e-12)


@pytest.mark.parametrize("classes", [None, 3])
def test_mixture_error_is_the_mean_over_members_with_different_seeds(classes):
    """Brute force: every way to give the members of a (2, 1, 1) mixture different seed
    indices among 5; the mean realised error is the formula's, to rounding."""
    rng = np.random.default_rng(1)
    preds, y = learners(rng, 3, 5, n=50, classes=classes)
    slots = [0, 0, 1, 2]  # the architecture of each member
    errors = [
        realised(np.stack([preds[a][j] for a, j in zip(slots, seeds, strict=True)]), y)
        for seeds in itertools.permutations(range(5), len(slots))
    ]
    assert mixture_error(moments(preds, y), np.array([2, 1, 1])) == pytest.approx(
        np.mean(errors), abs=1e-12
    )


def test_unequal_pools_use_pairs_of_different_seeds():
    rng = np.random.default_rng(2)
    preds, y = learners(rng, 2, 4)
    preds[1] = preds[1][:2]
    m = moments(preds, y)
    r0, r1 = (residuals(p, y)[..., 0] for p in preds)
    pairs = [(j, i) for j in range(4) for i in range(2) if j != i]
    assert m.C[0, 1] == pytest.approx(np.mean([np.mean(r0[j] * r1[i]) for j, i in pairs]))
    assert m.C[1, 0] == pytest.approx(m.C[0, 1])


def compositions(total: int, parts: int):
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        edges = (-1, *cut, total + parts - 1)
        yield np.array([edges[i + 1] - edges[i] - 1 for i in range(parts)])


@pytest.mark.parametrize("seed", range(5))
def test_optimisers_find_the_best_integer_mixture(seed):
    rng = np.random.default_rng(seed)
    preds, y = learners(rng, 4, 6)
    m = moments(preds, y)
    members = 6
    brute = min(mixture_error(m, c) for c in compositions(members, 4))
    found = best_mixture(m, members)
    assert min(mixture_error(m, c) for c in found.values()) == pytest.approx(brute, rel=1e-9)
    for counts in found.values():
        assert counts.sum() == members and (counts >= 0).all()


def test_architecture_limit_is_respected_and_optimal():
    rng = np.random.default_rng(7)
    preds, y = learners(rng, 5, 4)
    m = moments(preds, y)
    brute = min(mixture_error(m, c) for c in compositions(8, 5) if np.count_nonzero(c) <= 2)
    found = best_mixture(m, 8, max_architectures=2)
    for counts in found.values():
        assert np.count_nonzero(counts) <= 2 and counts.sum() == 8
    assert min(mixture_error(m, c) for c in found.values()) == pytest.approx(brute, rel=1e-9)


def test_greedy_path_and_rounding_sizes():
    rng = np.random.default_rng(3)
    preds, y = learners(rng, 3, 3)
    m = moments(preds, y)
    path = greedy(m, 10, 3)
    assert [int(c.sum()) for c in path] == list(range(1, 11))
    assert int(np.argmax(path[0])) == int(np.argmin(m.E))  # one member: the best single
    assert rounded_simplex(m, 10, 3).sum() == 10
    worse = np.array([10.0, 0, 0])
    assert mixture_error(m, local_search(m, worse, 3)) <= mixture_error(m, worse)


@pytest.mark.parametrize("classes", [None, 3])
def test_example_terms_average_to_the_mixture_error(classes):
    """What a mixture decision's bootstrap resamples has the mixture's error as its mean,
    for unequal learner counts and an architecture with no members."""
    rng = np.random.default_rng(4)
    preds, y = learners(rng, 3, 5, classes=classes)
    preds = [preds[0][:2], preds[1], preds[2][:3]]
    counts = np.array([7, 0, 4])
    terms = example_terms(preds, y, counts)
    assert terms.shape == (len(y),)
    assert terms.mean() == pytest.approx(mixture_error(moments(preds, y), counts), abs=1e-12)
