"""The acceptance gate of a mixture search (`search.target: mixture`).

The baseline is a mixture: n_a members of each of a few architectures, sum n_a = M. A
candidate is judged by re-optimising the mixture over the mixture's architectures plus the
candidate (agent/theory/mixture.py, on the validation split) and comparing its predicted error with
the current mixture's, computed from the same learners:

    accepted  <=>  the candidate has members in the best mixture
                   and E_mix(after) < E_mix(before)
                   and the gain reaches the run's floor (gate.min_effect x seed noise), if set
                   and the bootstrap upper bound of the difference is below 0, if gate.confidence

Because "before" is one of the mixtures the optimiser may return, E_mix(after) never exceeds
E_mix(before), and an accepted trajectory is monotonic in predicted error. Everything a
decision used is logged (the parts with their learner counts, both errors, the interval), so
`replay` re-decides from the log and recomputes both errors from the stored learners.

A newcomer is useful through its diversity with the mix, not only its own error: moving a
small weight onto candidate c lowers the error when

    2 (C_c . w - w^T C w) + (D_c - w . D) / M < 0,       w = n / M,

that is, roughly, when its residual cross-moment with the mixture (C_c . w) is below the
mixture's own (w^T C w). Both are logged and shown to the proposer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from edas_agent.theory.gate import evidence
from edas_agent.theory.mixture import Moments, best_mixture, example_terms, mixture_error, moments
from edas_agent.theory.uncertainty import Interval, paired_bootstrap

__all__ = ["MixtureJudgement", "Part", "decide_mixture", "judge_mixture", "summary"]


class Predictions(Protocol):
    """A pool of learners' predictions, float32, (k, n) or (k, n, C) per split (the
    training package's Pool is one): all the algebra needs of it."""

    @property
    def val(self) -> np.ndarray: ...

    @property
    def test(self) -> np.ndarray: ...


class Part(BaseModel):
    """One architecture's share of a mixture."""

    model_config = ConfigDict(frozen=True)

    step: int  # the record that brought it into the mixture (0: the starting baseline)
    arch_hash: str
    members: int
    learners: int  # its first `learners` stored learners give the mixture's moments


class MixtureJudgement(BaseModel):
    """A candidate judged as a newcomer to the mixture, as logged."""

    model_config = ConfigDict(frozen=True)

    before: list[Part]
    after: list[Part]  # the best mixture with the candidate; parts with members only
    E_before: float  # predicted on validation, where the mixture is chosen
    E_after: float
    test_before: float  # predicted on test: reported, never used to decide
    test_after: float
    cross: float  # C_c . w: the candidate's residual cross-moment with the mixture
    mixture_moment: float  # w^T C w: the mixture's own
    correlation: float | None  # cross / sqrt(C_cc w^T C w), when both are positive
    interval: Interval  # of E_mix(after) - E_mix(before), paired over examples
    confidence: float | None = None  # set when the interval had to clear zero
    # the gain it had to reach, an absolute error (logged as "min_effect" before)
    floor: float | None = Field(None, validation_alias=AliasChoices("floor", "min_effect"))
    accepted: bool
    reason: str

    @property
    def delta(self) -> float:
        return self.E_after - self.E_before


class _Described(Protocol):
    step: int
    members: int


def summary(parts: Sequence[_Described]) -> str:
    """'12x30 + 3x20': step x members, largest part first."""
    ordered = sorted(parts, key=lambda part: -part.members)
    return " + ".join(f"{part.step}x{part.members}" for part in ordered)


def judge_mixture(
    before: list[Part],
    candidate: Part,
    pools: dict[str, Predictions],
    y_val: np.ndarray,
    y_test: np.ndarray,
    members: int,
    max_architectures: int | None = None,
    confidence: float | None = None,
    interval_level: float = 0.9,
    resamples: int = 1000,
    floor: float | None = None,
    seed: int | list[int] = 0,
) -> MixtureJudgement:
    """`candidate` (members 0) as a newcomer to the mixture `before`."""
    parts = [*before, candidate]
    val = [pools[p.arch_hash].val[: p.learners] for p in parts]
    test = [pools[p.arch_hash].test[: p.learners] for p in parts]
    on_val, old, new = reoptimise(val, y_val, before, members, max_architectures)
    on_test = moments(test, y_test)
    delta = example_terms(val, y_val, new) - example_terms(val, y_val, old)
    level = confidence if confidence is not None else interval_level
    interval = paired_bootstrap(delta, level, resamples, seed)
    after = composition(parts, new)
    E_before, E_after = mixture_error(on_val, old), mixture_error(on_val, new)
    accepted, reason = decide_mixture(
        candidate.arch_hash, before, after, E_before, E_after, interval, confidence, floor
    )
    cross, own, correlation = _diversity(on_val, old)
    reason += f"; newcomer cross-moment {cross:.5f} vs the mixture's {own:.5f}"
    if correlation is not None:
        reason += f" (corr {correlation:.3f})"
    return MixtureJudgement(
        before=before,
        after=after,
        E_before=E_before,
        E_after=E_after,
        test_before=mixture_error(on_test, old),
        test_after=mixture_error(on_test, new),
        cross=cross,
        mixture_moment=own,
        correlation=correlation,
        interval=interval,
        confidence=confidence,
        floor=floor,
        accepted=accepted,
        reason=reason,
    )


def reoptimise(
    val: list[np.ndarray],
    y_val: np.ndarray,
    before: list[Part],
    members: int,
    max_architectures: int | None,
) -> tuple[Moments, np.ndarray, np.ndarray]:
    """The validation moments of the mixture's architectures plus the candidate (last in
    `val`), the current counts (the candidate's 0) and the best integer mixture over all of
    them. The current mixture wins ties, so a candidate must strictly improve the
    prediction to get members. `replay` calls this too, to re-derive the choice."""
    m = moments(val, y_val)
    old = np.array([p.members for p in before] + [0], dtype=np.float64)
    limit = max_architectures or len(m)
    found = [old, *best_mixture(m, members, limit).values()]
    return m, old, min(found, key=lambda counts: mixture_error(m, counts))


def composition(parts: list[Part], counts: np.ndarray) -> list[Part]:
    """The parts with members under `counts`, those without left out."""
    chosen = zip(parts, counts, strict=True)
    return [part.model_copy(update={"members": int(n)}) for part, n in chosen if n]


def decide_mixture(
    candidate_hash: str,
    before: list[Part],
    after: list[Part],
    E_before: float,
    E_after: float,
    interval: Interval,
    confidence: float | None,
    floor: float | None,
) -> tuple[bool, str]:
    """The decision and its reason, from logged quantities only (replay calls it too)."""
    joins = any(p.arch_hash == candidate_hash for p in after)
    present = next((p for p in before if p.arch_hash == candidate_hash), None)
    gain = E_before - E_after
    large_enough = floor is None or gain >= floor
    sure = confidence is None or interval.upper < 0
    accepted = present is None and joins and gain > 0 and large_enough and sure
    if present is not None:
        return False, f"mixture: already in the mixture since step {present.step}"
    verdict = "<" if gain > 0 else ">="
    reason = f"mixture: E_mix {E_after:.5f} {verdict} current {E_before:.5f}"
    reason += f" with {summary(after)}" if joins else "; the best mixture leaves it out"
    return accepted, reason + evidence(interval, confidence, gain, floor, "dE_mix")


def _diversity(m: Moments, old: np.ndarray) -> tuple[float, float, float | None]:
    """(C_c . w, w^T C w, their correlation) for the candidate, the last architecture."""
    w = old / old.sum()
    cross = float(m.C[-1] @ w)
    own = float(w @ m.C @ w)
    spread = m.C[-1, -1] * own
    return cross, own, float(cross / np.sqrt(spread)) if spread > 0 else None
