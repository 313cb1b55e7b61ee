"""Judging a candidate: a short series of gate rounds, then ranking a batch's winners.

The decision round uses the first k learners; with `gate.sequential`, two more learners at
a time while the interval straddles zero; after an acceptance with `gate.confirm`, fresh
learners and a last judgement on all of them. The last round decides, so a winner carried
by lucky seeds is caught before it becomes the baseline. Training that fails is returned
as a value (learners.Failed), never raised. In a mixture search (`search.target:
mixture`) each round is decided by agent/mixture_gate.py instead of the E_M comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, architecture_hash
from edas_agent.gate import Gate, decide
from edas_agent.journal import GateRound, Record
from edas_agent.learners import Cost, Failed, LearnerStore, Pool
from edas_agent.mixture_gate import Part, judge_mixture
from edas_agent.state import Baseline

# Bootstrap seed offset of the confirmation round, apart from sequential rounds 1, 2, ...
_CONFIRMATION_SEED_OFFSET = 1000


def make_gate(config: Config) -> Gate:
    g = config.gate
    return Gate(config.members, g.rule, g.confidence, g.interval_level, g.resamples)


@dataclass(frozen=True)
class Judged:
    rounds: list[GateRound]  # every judgement in order; the last one decided
    pool: Pool  # the learners behind the last round


class Judge:
    def __init__(self, config: Config, gate: Gate, store: LearnerStore, evaluator: Evaluator):
        self.config = config
        self.gate = gate
        self.store = store
        self.evaluator = evaluator

    def rounds(
        self, baseline: Baseline, step: int, architecture: BaseModel, learners: int | None = None
    ) -> Judged | Failed:
        """Decision (on `learners`, default evaluator.learners), sequential rounds,
        confirmation."""
        kind, index = "decision", 0
        learners = learners or self.config.evaluator.learners
        rounds: list[GateRound] = []
        while True:
            judged = self._round(kind, baseline, step, index, architecture, learners)
            if isinstance(judged, Failed):
                return judged
            rounds.append(judged)
            following = self._next_round(rounds, learners)
            if following is None:
                break
            kind, index, learners = following
        pool = self.store.get(architecture_hash(architecture))
        assert pool is not None
        return Judged(rounds, pool.head(learners))

    def _next_round(self, rounds: list[GateRound], learners: int) -> tuple[str, int, int] | None:
        """(kind, bootstrap seed index, learners) of the round after these, if any."""
        gate, last = self.config.gate, rounds[-1]
        if last.kind == "confirmation":
            return None
        if (
            gate.sequential
            and last.interval is not None
            and last.interval.straddles_zero()
            and learners + 2 <= gate.max_learners
        ):
            return "sequential", len(rounds), learners + 2
        if gate.confirm and last.accepted:
            return "confirmation", _CONFIRMATION_SEED_OFFSET, learners + gate.confirm_learners
        return None

    def _round(
        self,
        kind: str,
        baseline: Baseline,
        step: int,
        index: int,
        architecture: BaseModel,
        learners: int,
    ) -> GateRound | Failed:
        trained = self.store.ensure(architecture, learners)
        if isinstance(trained, Failed):
            return trained
        pool, cost = trained
        baseline_pool = self.store.get(baseline.arch_hash)
        assert baseline_pool is not None
        if self.config.search.target == "mixture":
            return self._mixture_round(
                kind, baseline, baseline_pool, step, index, architecture, pool.head(learners),
                cost,
            )  # fmt: skip
        judgement, _ = self.gate.judge(
            baseline_pool.head(baseline.learners).val,
            pool.head(learners).val,
            self.evaluator.y_val,
            self.evaluator.task,
            seed=[self.config.seed, step, index],
        )
        return GateRound(kind=kind, cost=cost, **judgement.model_dump())

    def _mixture_round(
        self,
        kind: str,
        baseline: Baseline,
        baseline_pool: Pool,
        step: int,
        index: int,
        architecture: BaseModel,
        pool: Pool,
        cost: Cost,
    ) -> GateRound:
        """The candidate as a newcomer to the baseline's mixture; its statistics beside the
        baseline architecture are logged too (no interval: they do not decide)."""
        ev, gate = self.evaluator, self.config.gate
        base = self.gate.summarise(baseline_pool.head(baseline.learners).val, ev.y_val, ev.task)
        own = self.gate.summarise(pool.val, ev.y_val, ev.task)
        pair = None if base[1] is None or own[1] is None else (base[1], own[1])
        alone = decide(base[0], own[0], self.gate.members, self.gate.rule, logloss=pair)
        pools = {p.arch_hash: self.store.get(p.arch_hash) for p in baseline.mixture}
        newcomer = Part(step=step, arch_hash=architecture_hash(architecture), members=0,
                        learners=len(pool))  # fmt: skip
        judged = judge_mixture(
            baseline.mixture, newcomer, {**pools, newcomer.arch_hash: pool}, ev.y_val, ev.y_test,
            self.gate.members, self.config.search.max_architectures, gate.confidence,
            gate.interval_level, gate.resamples, self.gate.min_effect,
            seed=[self.config.seed, step, index],
        )  # fmt: skip
        return GateRound(
            kind=kind, cost=cost, stats=own[0], logloss=own[1], delta_E=alone.delta_E,
            rules=alone.rules, rule=alone.rule, interval=judged.interval,
            confidence=judged.confidence, min_effect=judged.min_effect,
            accepted=judged.accepted, reason=judged.reason, mixture=judged,
        )  # fmt: skip


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
