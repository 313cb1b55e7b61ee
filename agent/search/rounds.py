"""The round plan: how many learners each gate round of a candidate uses, and which round
follows which. The search (search/judging.py) follows it and `replay` (analysis/replay.py)
checks a run's logged rounds against it, so the two cannot disagree.

    decision      the first k learners (evaluator.learners; a screening survivor may get
                  screening.survivor_learners)
    sequential    with gate.sequential, two more learners while the interval straddles 0
                  or a learner is unstable (far from its siblings), up to gate.max_learners
    confirmation  with gate.confirm, after an acceptance: gate.confirm_learners fresh
                  learners, and a last judgement on all of them

The last round decides. The starting baseline gets the learners an accepted candidate ends
up with, so comparisons are like for like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edas_agent.config import Config
from edas_agent.record import GateRound

RoundKind = Literal["decision", "sequential", "confirmation"]

# Bootstrap seed offset of the confirmation round, apart from sequential rounds 1, 2, ...
CONFIRMATION_SEED_OFFSET = 1000


@dataclass(frozen=True)
class NextRound:
    kind: RoundKind
    seed_index: int  # the bootstrap's seed index within the step
    learners: int


class RoundPlan:
    def __init__(self, config: Config):
        self.gate = config.gate
        self.learners = config.evaluator.learners
        self.survivor_learners = config.screening.survivor_learners

    def initial_learners(self) -> int:
        """The starting baseline's learners: as many as a confirmed candidate has, and at
        least three when the seed-noise floor is on (its jackknife needs them)."""
        learners = self.learners
        if self.gate.confirm:
            learners += self.gate.confirm_learners
        if self.gate.min_effect is not None:  # the floor needs the jackknife of 3 learners
            learners = max(learners, 3)
        return learners

    def decision_learners(self, survived_screening: bool = False) -> int:
        if survived_screening and self.survivor_learners is not None:
            return self.survivor_learners
        return self.learners

    def next_round(self, rounds: list[GateRound], learners: int) -> NextRound | None:
        """The round after these (the last one on `learners`), or None: the last decided."""
        last = rounds[-1]
        if last.kind == "confirmation":
            return None
        undecided = last.interval is not None and last.interval.straddles_zero()
        if (
            self.gate.sequential
            and (undecided or last.unstable)
            and learners + 2 <= self.gate.max_learners
        ):
            return NextRound("sequential", len(rounds), learners + 2)
        if self.gate.confirm and last.accepted:
            return NextRound(
                "confirmation", CONFIRMATION_SEED_OFFSET, learners + self.gate.confirm_learners
            )
        return None

    def check(self, rounds: list[GateRound]) -> list[str]:
        """How a logged series of rounds departs from this plan (for `replay`)."""
        if not rounds or rounds[0].kind != "decision":
            return [f"rounds {[r.kind for r in rounds]} do not start with a decision"]
        problems = []
        for number, current in enumerate(rounds):
            expected = self.next_round(rounds[: number + 1], current.stats.k)
            following = rounds[number + 1] if number + 1 < len(rounds) else None
            if expected is None and following is not None:
                problems.append(f"a {following.kind} round after round {number}, which decided")
            elif expected is not None and following is None:
                problems.append(f"no {expected.kind} round after round {number}")
            elif expected is not None and following is not None:
                planned = (expected.kind, expected.learners)
                if (following.kind, following.stats.k) != planned:
                    problems.append(
                        f"round {number + 1} is a {following.kind} round on "
                        f"{following.stats.k} learners; the plan says {expected.kind} on "
                        f"{expected.learners}"
                    )
        return problems
