"""Judging a candidate: the gate rounds of the round plan (search/rounds.py), each decided
by the run's target (search/target.py), then ranking a batch's winners.

The last round decides, so a winner carried by lucky seeds is caught before it becomes the
baseline. Training that fails is returned as an Outcome (agent/outcome.py), never raised.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, architecture_hash
from edas_agent.outcome import Outcome
from edas_agent.record import GateRound, Record, measured_selection, pooled_seed_noise
from edas_agent.search.rounds import RoundPlan
from edas_agent.search.state import Baseline
from edas_agent.search.target import Target, make_target
from edas_agent.theory.gate import Gate, Stats, seed_noise_floor
from edas_agent.theory.seed_noise import pooled_noise_floor
from edas_agent.training.learners import LearnerStore, Pool


def make_gate(config: Config) -> Gate:
    g = config.gate
    return Gate(config.members, g.rule, g.confidence, g.interval_level, g.resamples)


def noise_floor(config: Config, seen: list[Record], baseline: Stats) -> float | None:
    """The gate's floor for the next decision, an absolute error (None: no floor):
    gate.min_effect, a multiple of the seed noise, times the starting baseline's seed noise
    (seen[0]), or with `gate.floor_from: pooled` the run's seed-noise model pooled over the
    records seen so far, at the baseline's E_M.
    Derived from logged records, so a resumed run and `replay` agree."""
    multiple = config.gate.min_effect
    if multiple is None:
        return None
    start = seen[0].stats
    assert start is not None, "the run has no trained starting baseline"
    if config.gate.floor_from == "pooled" and (pooled := pooled_seed_noise(seen)) is not None:
        return pooled_noise_floor(pooled, baseline, start.k, multiple)
    return seed_noise_floor(start, multiple)


def decision_floor(
    config: Config, seen: list[Record], baseline: Stats, baseline_step: int, floor: float | None
) -> float | None:
    """The floor of the rounds before confirmation: with gate.selection_aware, `floor` less
    the baseline's optimism, the share of its learners a gate chose times the run's
    measured winner's curse (never below 0: the rule itself must still pass). A
    confirmation keeps `floor`: its candidate was chosen as its baseline was, and the two
    corrections cancel."""
    if not config.gate.selection_aware or floor is None:
        return floor
    record = next((r for r in seen if r.step == baseline_step and r.predicted), None)
    selection = measured_selection(seen, pooled_seed_noise(seen))
    if record is None or selection is None or not record.predicted.selected:
        return floor
    share = record.predicted.selected / record.predicted.k
    return max(0.0, floor - share * selection.shift * baseline.E_M)


@dataclass(frozen=True)
class Judged:
    rounds: list[GateRound]  # every judgement in order; the last one decided
    pool: Pool  # the learners behind the last round


class Judge:
    def __init__(self, plan: RoundPlan, target: Target, store: LearnerStore):
        self.plan = plan
        self.target = target
        self.store = store

    @classmethod
    def for_run(
        cls, config: Config, gate: Gate, evaluator: Evaluator, store: LearnerStore
    ) -> Judge:
        """The run's judge: its round plan, and its target chosen once from the config."""
        return cls(RoundPlan(config), make_target(config, gate, evaluator, store), store)

    def rounds(
        self,
        baseline: Baseline,
        step: int,
        architecture: BaseModel,
        learners: int,
        floor: float | None,
        before_confirmation: float | None = None,
    ) -> Judged | Outcome:
        """The decision round on `learners`, then the rounds the plan adds; each gain must
        reach `floor` (noise_floor's, None: no floor), or `before_confirmation` where given
        (decision_floor's) in the rounds before a confirmation."""
        kind, index = "decision", 0
        rounds: list[GateRound] = []
        early = floor if before_confirmation is None else before_confirmation
        while True:
            bar = floor if kind == "confirmation" else early
            judged = self._round(kind, baseline, step, index, architecture, learners, bar)
            if isinstance(judged, Outcome):
                return judged
            rounds.append(judged)
            following = self.plan.next_round(rounds, learners)
            if following is None:
                break
            kind, index, learners = following.kind, following.seed_index, following.learners
        pool = self.store.get(architecture_hash(architecture))
        assert pool is not None
        return Judged(rounds, pool.head(learners))

    def _round(
        self,
        kind: str,
        baseline: Baseline,
        step: int,
        index: int,
        architecture: BaseModel,
        learners: int,
        floor: float | None,
    ) -> GateRound | Outcome:
        trained = self.store.ensure(architecture, learners)
        if isinstance(trained, Outcome):
            return trained
        pool, cost = trained
        baseline_pool = self.store.get(baseline.arch_hash)
        assert baseline_pool is not None
        return self.target.judge(
            kind,
            baseline,
            baseline_pool,
            step,
            index,
            architecture,
            pool.head(learners),
            cost,
            floor,
        )


def outrank(records: list[Record]) -> list[Record]:
    """Of a batch's accepted records, keep the one with the lowest predicted error (E_M, or
    E_mix in a mixture search); the others
    passed the gate but are rejected, so the trajectory stays monotonic."""
    accepted = [r for r in records if r.accepted]
    if len(accepted) < 2:
        return records
    best = min(accepted, key=lambda r: r.predicted_error())
    ranked = []
    for record in records:
        if record.accepted and record is not best:
            reason = (
                f"passed the gate, but step {best.step} predicts a lower error; {record.reason}"
            )
            record = record.model_copy(
                update={"status": "rejected", "reason": reason, "outranked_by": best.step}
            )
        ranked.append(record)
    return ranked
