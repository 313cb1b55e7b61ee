"""The EDAS estimators and acceptance rules, squared loss (DESIGN.md, "The theory").

k >= 2 learners of one architecture predict p_ji on n validation examples with targets y_i
(a number, or a one-hot vector for classification); residuals r_ji = p_ji - y_i.

    E      = mean_j mean_i |r_ji|^2                     single-learner error
    D      = mean_{j<l} mean_i |p_ji - p_li|^2 / 2      disagreement
    sigma2 = mean_j Var_i(r_j)                          pooled residual variance
    rho    = 1 - D / sigma2                             residual correlation
    E_M    = E - (M-1)/M * D                            predicted M-member ensemble error

Decisions use only these statistics, so `edas-agent replay` can re-derive every decision
from the log without the predictions.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Rule = Literal["exact", "paper"]


class Stats(BaseModel):
    """The statistics of one architecture; E_M is for the run's M."""

    model_config = ConfigDict(frozen=True)

    k: int
    E: float
    sigma2: float
    rho: float
    D: float
    E_M: float


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True)

    paper: bool
    exact: bool


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    delta_E: float
    rules: Rules
    rule: Rule
    accepted: bool
    reason: str


def residuals(predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """r shaped (k, n, C): predictions (k, n) or (k, n, C); y (n,) numbers or class ids."""
    predictions = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(y)
    if predictions.ndim == 2:
        if y.shape != predictions.shape[1:]:
            raise ValueError(f"y has shape {y.shape}, predictions {predictions.shape}")
        return (predictions - y.astype(np.float64))[..., None]
    if predictions.ndim != 3:
        raise ValueError(f"predictions must be (k, n) or (k, n, C), got {predictions.shape}")
    _, n, classes = predictions.shape
    if y.shape != (n,):
        raise ValueError(f"y has shape {y.shape}, expected ({n},) class ids")
    labels = y.astype(np.int64)
    if labels.min() < 0 or labels.max() >= classes or not np.array_equal(labels, y):
        raise ValueError(f"multiclass y must hold class ids in [0, {classes - 1}]")
    return predictions - np.eye(classes)[labels]


def ensemble_error(E: float, D: float, members: int) -> float:
    """Predicted error of an M-member averaged ensemble."""
    return E - (members - 1) / members * D


def statistics(predictions: np.ndarray, y: np.ndarray, members: int) -> Stats:
    r = residuals(predictions, y)
    k = r.shape[0]
    if k < 2:
        raise ValueError("the statistics need k >= 2 learners")
    E = float(np.mean(np.sum(r**2, axis=-1)))
    # Sum over pairs of |p_j - p_l|^2 equals k * sum_j |p_j - mean p|^2, so the mean over the
    # k(k-1)/2 pairs of half of it is sum_j |p_j - mean p|^2 / (k - 1); O(k) instead of O(k^2).
    spread = r - r.mean(axis=0, keepdims=True)  # p_j - mean p, since y cancels
    D = float(np.mean(np.sum(spread**2, axis=(0, 2)))) / (k - 1)
    sigma2 = float(np.mean(np.sum(r.var(axis=1), axis=-1)))
    rho = 1.0 - D / sigma2 if sigma2 > 0 else 1.0
    return Stats(k=k, E=E, sigma2=sigma2, rho=rho, D=D, E_M=ensemble_error(E, D, members))


def paper_rule(baseline: Stats, candidate: Stats, members: int) -> bool:
    """rho(pi) < rho(pi_old) - (M/(M-1)) * delta_E / sigma2(pi): the seed paper's condition."""
    if candidate.sigma2 <= 0:
        return False
    delta_E = candidate.E - baseline.E
    return candidate.rho < baseline.rho - members / (members - 1) * delta_E / candidate.sigma2


def exact_rule(baseline: Stats, candidate: Stats, members: int) -> bool:
    """E_M(pi) < E_M(pi_old), i.e. delta_E < ((M-1)/M) * (D(pi) - D(pi_old))."""
    return ensemble_error(candidate.E, candidate.D, members) < ensemble_error(
        baseline.E, baseline.D, members
    )


def frontier_rho(baseline: Stats, delta_E: float, members: int) -> float:
    """The largest rho a candidate with this delta_E may have and still be accepted.

    Exact when the candidate's sigma2 equals the baseline's (then both rules agree); the
    prompt shows it as a guide, the gate decides on the candidate's own statistics.
    """
    if baseline.sigma2 <= 0:
        return float("-inf")
    return baseline.rho - members / (members - 1) * delta_E / baseline.sigma2


def decide(baseline: Stats, candidate: Stats, members: int, rule: Rule) -> Decision:
    """Both rules, always; the configured one decides."""
    if members < 2:
        raise ValueError("members (M) must be at least 2")
    rules = Rules(
        paper=paper_rule(baseline, candidate, members),
        exact=exact_rule(baseline, candidate, members),
    )
    accepted = getattr(rules, rule)
    return Decision(
        delta_E=candidate.E - baseline.E,
        rules=rules,
        rule=rule,
        accepted=accepted,
        reason=_reason(baseline, candidate, members, rule, accepted),
    )


def _reason(baseline: Stats, candidate: Stats, members: int, rule: Rule, accepted: bool) -> str:
    e_new = ensemble_error(candidate.E, candidate.D, members)
    e_old = ensemble_error(baseline.E, baseline.D, members)
    mechanisms = (
        f"dE={candidate.E - baseline.E:+.5f}, dD={candidate.D - baseline.D:+.5f}, "
        f"rho {baseline.rho:.4f}->{candidate.rho:.4f}"
    )
    if rule == "exact":
        verdict = "<" if accepted else ">="
        return f"exact: E_M {e_new:.5f} {verdict} baseline {e_old:.5f} ({mechanisms})"
    limit = (
        baseline.rho - members / (members - 1) * (candidate.E - baseline.E) / candidate.sigma2
        if candidate.sigma2 > 0
        else float("-inf")
    )
    verdict = "<" if accepted else ">="
    return f"paper: rho {candidate.rho:.4f} {verdict} frontier {limit:.4f} ({mechanisms})"
