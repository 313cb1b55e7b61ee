"""What the search improves (`search.target`), chosen once when a run starts.

    SingleArchitecture  one architecture deployed as M copies: a round compares the
                        candidate's E_M with the baseline's (theory/gate.py)
    Mixture             an ensemble of several architectures: a round asks whether the
                        best mixture of the current one's architectures plus the candidate
                        lowers the predicted M-member error (theory/mixture_gate.py)

Both implement the loop's `Target` (search/strategies.py). Everything that differs
between the two is here: how a gate round is judged, what a
record says of the baseline it was compared with, and what a proposer is shown.
"""

from __future__ import annotations

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, architecture_hash
from edas_agent.proposers.base import MixtureMember, MixtureView
from edas_agent.record import BaselineRef, GateRound
from edas_agent.search.state import Baseline, RunState
from edas_agent.search.strategies import Target
from edas_agent.theory.gate import Gate, decide
from edas_agent.theory.mixture_gate import Part, judge_mixture
from edas_agent.theory.seed_noise import learner_errors, unstable_learners
from edas_agent.training.learners import LearnerStore


def make_target(config: Config, gate: Gate, evaluator: Evaluator, store: LearnerStore) -> Target:
    if config.search.target == "mixture":
        return Mixture(config, gate, evaluator, store)
    return SingleArchitecture(config, gate, evaluator)


class SingleArchitecture:
    def __init__(self, config: Config, gate: Gate, evaluator: Evaluator):
        self.seed = config.seed
        self.gate = gate
        self.evaluator = evaluator

    def judge(
        self, kind, baseline, baseline_pool, step, seed_index, architecture, pool, cost, floor
    ):
        judgement, _ = self.gate.judge(
            baseline_pool.head(baseline.learners).val,
            pool.val,
            self.evaluator.y_val,
            self.evaluator.task,
            seed=[self.seed, step, seed_index],
            floor=floor,
        )
        unstable = bool(unstable_learners(learner_errors(pool.val, self.evaluator.y_val)))
        return GateRound(kind=kind, cost=cost, unstable=unstable, **judgement.model_dump())

    def reference(self, baseline: Baseline) -> BaselineRef:
        return baseline.ref()

    def view(self, state: RunState) -> MixtureView | None:
        return None


class Mixture:
    def __init__(self, config: Config, gate: Gate, evaluator: Evaluator, store: LearnerStore):
        self.config = config
        self.gate = gate
        self.evaluator = evaluator
        self.store = store

    def judge(
        self, kind, baseline, baseline_pool, step, seed_index, architecture, pool, cost, floor
    ):
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
            gate.interval_level, gate.resamples, floor,
            seed=[self.config.seed, step, seed_index],
        )  # fmt: skip
        return GateRound(
            kind=kind, cost=cost, stats=own[0], logloss=own[1], delta_E=alone.delta_E,
            rules=alone.rules, rule=alone.rule, interval=judged.interval,
            confidence=judged.confidence, floor=judged.floor,
            accepted=judged.accepted, reason=judged.reason, mixture=judged,
        )  # fmt: skip

    def reference(self, baseline: Baseline) -> BaselineRef:
        return baseline.ref(with_mixture=True)

    def view(self, state: RunState) -> MixtureView:
        by_step = {r.step: r for r in state.records}
        adopted = by_step[state.baseline.step]
        members = []
        for part in state.baseline.mixture:
            record = by_step[part.step]
            stats, _ = record.carried()
            assert stats is not None and record.architecture is not None
            members.append(
                MixtureMember(step=part.step, members=part.members, E=stats.E, D=stats.D,
                              E_M=stats.E_M, architecture=record.architecture)
            )  # fmt: skip
        return MixtureView(
            E_mix=adopted.predicted_error(),
            members=members,
            max_architectures=self.config.search.max_architectures,
        )
