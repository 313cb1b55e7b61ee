"""`edas-agent calibrate`: how often does a 2-learner gate order architectures the way their
real M-member ensembles do?

Every architecture gets M members (cached in the output folder's learners/, so a run can be
resumed). The truth for a pair (baseline a, candidate b) is the realised M-member ensemble
error on the test split. Each method then decides from a random pair of members (j, l),
the same indices for both architectures as in a search (common random numbers), on the
validation split:

    exact       E_M(b) < E_M(a)
    paper       the seed paper's rule
    confident   exact, and the paired-bootstrap upper bound of delta E_M below zero
    single      E(b) < E(a): single-learner error alone, what search without EDAS would use

Reported per method: agreement with the truth, false accepts (accepted while the realised
ensemble is worse, as a share of all comparisons), and Cohen's kappa, overall and stratified
by the size of the true relative difference.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from edas_agent.analysis.verify import realised_error
from edas_agent.evaluators.base import architecture_hash
from edas_agent.theory.gate import Gate, ensemble_error, statistics
from edas_agent.theory.seed_noise import LEVEL, learner_errors, pool_spreads, predictive_interval
from edas_agent.training.learners import LearnerStore

METHODS = ("exact", "paper", "confident", "single")
# Bins of |realised E_M(b) - E_M(a)| / E_M(a), the difference a decision has to resolve.
STRATA = ((0.0, 0.0025), (0.0025, 0.005), (0.005, 0.01), (0.01, float("inf")))

# Varied size, dropout, feature bagging and interactions around the default architecture.
DEFAULT_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "default": {},
    "small": {"tower": {"widths": [32]}},
    "wide": {"tower": {"widths": [256, 128]}},
    "deep-dropout": {"tower": {"widths": [128, 64, 32], "dropout": 0.3}},
    "dropout-0.4": {"tower": {"dropout": 0.4}},
    "bagging-0.8": {"bagging": {"fraction": 0.8}},
    "bagging-0.6": {"bagging": {"fraction": 0.6}, "tower": {"dropout": 0.1}},
    "cross-2": {"cross": {"layers": 2}, "tower": {"widths": [64]}},
    "log-numeric": {"numeric": {"transform": "log_standard"}, "embeddings": {"dim": 16}},
}


def calibrate(
    architectures: dict[str, Any],
    store: LearnerStore,
    members: int,
    pairs: int,
    seed: int,
    confidence: float = 0.9,
    resamples: int = 500,
    on_learner: Callable[[str, int], None] = lambda name, j: None,
) -> dict[str, Any]:
    evaluator = store.evaluator
    names = {architecture_hash(a): n for n, a in architectures.items()}
    store.prefetch(
        [(a, members) for a in architectures.values()],
        chunk=4,
        on_learner=lambda arch_hash, j: on_learner(names[arch_hash], j),
    )
    pools = {
        name: store.require(architecture, members) for name, architecture in architectures.items()
    }
    y_val, y_test, task = evaluator.y_val, evaluator.y_test, evaluator.task
    rng = np.random.default_rng([seed, 0xCA1])
    truth = {name: realised_error(p.test, y_test, members, rng) for name, p in pools.items()}
    gate = Gate(members, "exact", confidence, resamples=resamples)

    comparisons = []
    for a, b in itertools.permutations(pools, 2):
        true_better = truth[b] < truth[a]
        relative = abs(truth[b] - truth[a]) / truth[a]
        for draw in range(pairs):
            first, second = rng.choice(members, 2, replace=False)
            judgement, (base, _) = gate.judge(
                pools[a].val[[first, second]],
                pools[b].val[[first, second]],
                y_val,
                task,
                seed=[seed, draw],
            )
            decisions = {
                "exact": judgement.rules.exact,
                "paper": judgement.rules.paper,
                "confident": bool(judgement.rules.exact and judgement.rules.confident),
                "single": judgement.stats.E < base.E,
            }
            comparisons.append({"truth": true_better, "relative": relative, **decisions})

    return {
        "members": members,
        "pairs_per_comparison": pairs,
        "confidence": confidence,
        "architectures": list(architectures),
        "realised_test_E_M": truth,
        "agreement": _agreement(comparisons),
        "prediction_error": _prediction_error(pools, y_val, y_test, members, rng),
        "coverage": _coverage(pools, y_val, y_test, members, rng),
    }


def _agreement(comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {"all": _scores(comparisons)}
    for low, high in STRATA:
        subset = [c for c in comparisons if low <= c["relative"] < high]
        label = f"{low:.2%}-{high:.2%}" if high != float("inf") else f">={low:.2%}"
        table[label] = _scores(subset)
    return table


def _scores(comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    scores: dict[str, Any] = {"comparisons": len(comparisons)}
    if not comparisons:
        return scores
    truth = np.array([c["truth"] for c in comparisons])
    for method in METHODS:
        decision = np.array([c[method] for c in comparisons])
        scores[method] = {
            "agreement": float(np.mean(decision == truth)),
            "false_accepts": float(np.mean(decision & ~truth)),
            "kappa": cohens_kappa(decision, truth),
        }
    return scores


def cohens_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Agreement beyond chance between two binary raters; None when chance explains all."""
    observed = float(np.mean(a == b))
    p_a, p_b = float(np.mean(a)), float(np.mean(b))
    expected = p_a * p_b + (1 - p_a) * (1 - p_b)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def _prediction_error(pools, y_val, y_test, members: int, rng) -> dict[str, Any]:
    """Median relative error of E_m predicted from two learners against the realised E_m."""
    sizes = [m for m in (4, 8, 16, 32, 64) if m <= members]
    out: dict[str, Any] = {}
    for split, y in (("val", y_val), ("test", y_test)):
        errors: dict[int, list[float]] = {m: [] for m in sizes}
        for pool in pools.values():
            predictions = pool.val if split == "val" else pool.test
            realised = {m: realised_error(predictions, y, m, rng) for m in sizes}
            for _ in range(10):
                first, second = rng.choice(members, 2, replace=False)
                stats = statistics(predictions[[first, second]], y, members)
                for m in sizes:
                    predicted = ensemble_error(stats.E, stats.D, m)
                    errors[m].append(abs(predicted - realised[m]) / realised[m])
        out[split] = {str(m): float(np.median(errors[m])) for m in sizes}
    return out


def _coverage(pools, y_val, y_test, members: int, rng, draws: int = 10) -> dict[str, Any]:
    """How often the seed-noise interval of E_M from two learners covers the realised
    M-member error, as in a run: the spread pooled over the architectures' first four
    learners (a run's start and confirmations), two random learners per draw."""
    out: dict[str, Any] = {}
    for split, y in (("val", y_val), ("test", y_test)):
        predictions = {name: (p.val if split == "val" else p.test) for name, p in pools.items()}
        noise = pool_spreads(statistics(p[:4], y, members) for p in predictions.values())
        covered = total = above = below = 0
        for values in predictions.values():
            realised = realised_error(values, y, members, rng)
            for _ in range(draws):
                pair = rng.choice(members, 2, replace=False)
                errors = learner_errors(values[pair], y)
                interval = predictive_interval(
                    statistics(values[pair], y, members), members, noise, learner_errors=errors
                )
                if interval is not None:
                    covered += interval.covers(realised)
                    above += realised > interval.upper
                    below += realised < interval.lower
                    total += 1
        out[split] = {"covered": covered, "of": total, "level": LEVEL, "above": above,
                      "below": below}  # fmt: skip
    return out
