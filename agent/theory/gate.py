"""The EDAS estimators and acceptance rules, squared loss (DESIGN.md, "The theory").

k >= 2 learners of one architecture predict p_ji on n validation examples with targets y_i
(a number, or a one-hot vector for classification); residuals r_ji = p_ji - y_i.

    E      = mean_j mean_i |r_ji|^2                     single-learner error
    D      = mean_{j<l} mean_i |p_ji - p_li|^2 / 2      disagreement
    sigma2 = mean_j Var_i(r_j)                          pooled residual variance
    rho    = 1 - D / sigma2                             residual correlation
    E_M    = E - (M-1)/M * D                            predicted M-member ensemble error

E_M is also the mean over examples of t_i = e_i - ((M-1)/M) d_i (per-example error and
disagreement), which is what the paired bootstrap in `agent/theory/uncertainty.py` resamples.

Decisions use only these statistics (and, with `gate.confidence`, a logged interval), so
`edas-agent replay` can re-derive every decision from the log without the predictions.

The `single` rule, E(candidate) < E(baseline), is the gate at M = 1: what an architecture
search for one deployed model uses. It is there to be compared with (bench/search_value.py).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from edas_agent.theory.logloss import LogLossStats, logloss_statistics, logloss_terms
from edas_agent.theory.uncertainty import Interval, paired_bootstrap

Rule = Literal["exact", "paper", "logloss", "single"]


class Stats(BaseModel):
    """The statistics of one architecture; E_M is for the run's M.

    seed_se is the jackknife-over-learners standard error of E_M (seed noise), k >= 3 only.
    """

    model_config = ConfigDict(frozen=True)

    k: int
    E: float
    sigma2: float
    rho: float
    D: float
    E_M: float
    seed_se: float | None = None


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True)

    paper: bool
    exact: bool
    logloss: bool | None = None  # approximate log-loss E_M lower; classification only
    single: bool | None = None  # E lower: single-learner error alone (the gate at M = 1)
    confident: bool | None = None  # interval.upper < 0, when an interval was computed


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    delta_E: float
    rules: Rules
    rule: Rule
    confidence: float | None = None  # set when the interval had to clear zero
    # The gain the deciding loss had to reach, in its units (None: no floor); gate.min_effect
    # times the seed noise. Logged as "min_effect" before the name meant one unit only.
    floor: float | None = Field(None, validation_alias=AliasChoices("floor", "min_effect"))
    interval: Interval | None = None
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
    stats = _statistics(r, members)
    if r.shape[0] >= 3:
        stats = stats.model_copy(update={"seed_se": _jackknife_se(r, members)})
    return stats


def per_example_terms(predictions: np.ndarray, y: np.ndarray, members: int) -> np.ndarray:
    """t_i = e_i - ((M-1)/M) d_i, whose mean over examples is E_M."""
    e, d = per_example_moments(predictions, y)
    return e - (members - 1) / members * d


def per_example_moments(predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e_i, d_i): each example's mean squared residual over the k >= 2 learners and their
    disagreement on it; their means over examples are E and D."""
    r = residuals(predictions, y)
    k = r.shape[0]
    if k < 2:
        raise ValueError("the statistics need k >= 2 learners")
    e = np.mean(np.sum(r**2, axis=-1), axis=0)
    d = np.sum((r - r.mean(axis=0, keepdims=True)) ** 2, axis=(0, 2)) / (k - 1)
    return e, d


def _statistics(r: np.ndarray, members: int) -> Stats:
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


def _jackknife_se(r: np.ndarray, members: int) -> float:
    """Seed noise of E_M: leave one learner out at a time (the bootstrap over examples
    cannot see it, since every resample keeps the same learners)."""
    k = r.shape[0]
    estimates = np.array([_statistics(np.delete(r, j, axis=0), members).E_M for j in range(k)])
    return float(np.sqrt((k - 1) / k * np.sum((estimates - estimates.mean()) ** 2)))


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


def decide(
    baseline: Stats,
    candidate: Stats,
    members: int,
    rule: Rule,
    interval: Interval | None = None,
    confidence: float | None = None,
    logloss: tuple[LogLossStats, LogLossStats] | None = None,
    floor: float | None = None,
) -> Decision:
    """Every rule, always; the configured one decides.

    With `confidence`, the rule must pass and the interval's upper bound of delta E_M must
    be below zero as well; the interval is then required and must be at that level.
    `logloss` is (baseline, candidate) log-loss statistics, for classification. With
    `floor`, the deciding loss must also fall by at least that much (an absolute error).
    """
    if members < 2:
        raise ValueError("members (M) must be at least 2")
    if confidence is not None and (interval is None or interval.confidence != confidence):
        raise ValueError(f"a confidence gate needs an interval at confidence {confidence}")
    if rule == "logloss" and logloss is None:
        raise ValueError("the logloss rule needs log-loss statistics (classification only)")
    rules = Rules(
        paper=paper_rule(baseline, candidate, members),
        exact=exact_rule(baseline, candidate, members),
        logloss=None if logloss is None else logloss[1].E_M < logloss[0].E_M,
        confident=None if interval is None else interval.upper < 0,
        single=candidate.E < baseline.E,
    )
    passed = bool(getattr(rules, rule))
    gain = -deciding_delta(baseline, candidate, rule, logloss)
    large_enough = floor is None or gain >= floor
    accepted = passed and (confidence is None or bool(rules.confident)) and large_enough
    if rule == "logloss":
        assert logloss is not None
        verdict = "<" if passed else ">="
        reason = (
            f"logloss: approximate E_M {logloss[1].E_M:.5f} {verdict} baseline {logloss[0].E_M:.5f}"
        )
    else:
        reason = _reason(baseline, candidate, members, rule, passed)
    reason += evidence(interval, confidence, gain, floor)
    return Decision(
        delta_E=candidate.E - baseline.E,
        rules=rules,
        rule=rule,
        confidence=confidence,
        floor=floor,
        interval=interval,
        accepted=accepted,
        reason=reason,
    )


def evidence(
    interval: Interval | None,
    confidence: float | None,
    gain: float,
    floor: float | None,
    quantity: str = "dE_M",
) -> str:
    """The part of a decision's reason beyond the rule: the interval of the difference
    (`quantity`), and the gain against the floor, each when there is one."""
    text = ""
    if interval is not None:
        bound = "<" if interval.upper < 0 else ">="
        deciding = " (deciding)" if confidence is not None else ""
        text += (
            f"; {interval.confidence:.0%} upper bound of {quantity} {interval.upper:+.6f} "
            f"{bound} 0{deciding}, P(better)={interval.p_improve:.2f}"
        )
    if floor is not None:
        verdict = ">=" if gain >= floor else "<"
        text += f"; gain {gain:.6f} {verdict} floor {floor:.6f}"
    return text


def deciding_delta(
    baseline: Stats,
    candidate: Stats,
    rule: Rule,
    logloss: tuple[LogLossStats, LogLossStats] | None = None,
) -> float:
    """Candidate minus baseline in the loss the rule decides on: E_M (exact, paper), the
    approximate log-loss E_M (logloss) or E (single)."""
    if rule == "logloss":
        assert logloss is not None
        return logloss[1].E_M - logloss[0].E_M
    if rule == "single":
        return candidate.E - baseline.E
    return candidate.E_M - baseline.E_M


def seed_noise_floor(start: Stats, multiple: float) -> float:
    """The gate's floor in the loss's units from gate.min_effect (`multiple`): `multiple`
    times the seed noise of a difference
    between two pools as large as the starting baseline's, sqrt(2) times its jackknife
    standard error (learner seeds; the bootstrap interval sees only example noise)."""
    if start.seed_se is None:
        raise ValueError("the seed noise needs a starting baseline of at least 3 learners")
    return multiple * float(np.sqrt(2.0)) * start.seed_se


def _reason(baseline: Stats, candidate: Stats, members: int, rule: Rule, accepted: bool) -> str:
    e_new = ensemble_error(candidate.E, candidate.D, members)
    e_old = ensemble_error(baseline.E, baseline.D, members)
    mechanisms = (
        f"dE={candidate.E - baseline.E:+.5f}, dD={candidate.D - baseline.D:+.5f}, "
        f"rho {baseline.rho:.4f}->{candidate.rho:.4f}"
    )
    verdict = "<" if accepted else ">="
    if rule == "exact":
        return f"exact: E_M {e_new:.5f} {verdict} baseline {e_old:.5f} ({mechanisms})"
    if rule == "single":
        return f"single: E {candidate.E:.5f} {verdict} baseline {baseline.E:.5f} ({mechanisms})"
    limit = (
        baseline.rho - members / (members - 1) * (candidate.E - baseline.E) / candidate.sigma2
        if candidate.sigma2 > 0
        else float("-inf")
    )
    return f"paper: rho {candidate.rho:.4f} {verdict} frontier {limit:.4f} ({mechanisms})"


class Judgement(Decision):
    """A decision with the candidate statistics it was made on, as logged."""

    stats: Stats
    logloss: LogLossStats | None = None


class Gate:
    """The acceptance gate as configured, applied to two pools of predictions.

    The interval of delta E_M (of the deciding loss) is always computed and logged; it
    decides only when `confidence` is set.
    """

    def __init__(
        self,
        members: int,
        rule: Rule = "exact",
        confidence: float | None = None,
        interval_level: float = 0.9,
        resamples: int = 1000,
    ):
        self.members = members
        self.rule = rule
        self.confidence = confidence
        self.interval_level = confidence if confidence is not None else interval_level
        self.resamples = resamples

    def summarise(
        self, predictions: np.ndarray, y: np.ndarray, task: str
    ) -> tuple[Stats, LogLossStats | None]:
        stats = statistics(predictions, y, self.members)
        ll = None if task == "regression" else logloss_statistics(predictions, y, self.members)
        return stats, ll

    def judge(
        self,
        baseline: np.ndarray,
        candidate: np.ndarray,
        y: np.ndarray,
        task: str,
        seed: list[int],
        floor: float | None = None,
    ) -> tuple[Judgement, tuple[Stats, LogLossStats | None]]:
        """Compare two pools on the same examples; returns the judgement and the
        baseline's summary it was compared with. The gain must reach `floor` (an absolute
        error, None: no floor): the run's, which moves with its baseline, so not the gate's."""
        base = self.summarise(baseline, y, task)
        cand = self.summarise(candidate, y, task)
        terms = logloss_terms if self.rule == "logloss" else per_example_terms
        # The single rule's interval is of delta E: the per-example terms at M = 1.
        members = 1 if self.rule == "single" else self.members
        delta = terms(candidate, y, members) - terms(baseline, y, members)
        interval = paired_bootstrap(delta, self.interval_level, self.resamples, seed)
        pair = None if cand[1] is None or base[1] is None else (base[1], cand[1])
        decision = decide(
            base[0], cand[0], self.members, self.rule, interval, self.confidence, pair,
            floor,
        )  # fmt: skip
        judgement = Judgement(stats=cand[0], logloss=cand[1], **decision.model_dump())
        return judgement, base
