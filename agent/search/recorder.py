"""Outcomes as trajectory records: the one place that knows which fields each kind of
outcome fills (the starting baseline, a refused proposal, a failed or judged one)."""

from __future__ import annotations

from typing import Any

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.proposers.base import Proposal
from edas_agent.record import (
    Cost,
    FreshCheck,
    Record,
    Shrinkage,
    Status,
    TestReport,
    selected_learners,
    split_learners,
    utc_now,
)
from edas_agent.search.checks import Candidate
from edas_agent.search.judging import Judged
from edas_agent.search.state import Baseline
from edas_agent.search.target import Target
from edas_agent.theory.gate import statistics
from edas_agent.theory.metrics import task_metrics
from edas_agent.theory.seed_noise import (
    Pooled,
    Selection,
    learner_errors,
    predictive_interval,
    unstable_learners,
)
from edas_agent.training.learners import Pool


class Recorder:
    def __init__(self, config: Config, evaluator: Evaluator, target: Target):
        self.config = config
        self.evaluator = evaluator
        self.target = target

    def baseline(self, status: Status, reason: str, **fields: Any) -> Record:
        return self._record("baseline", 0, status, reason, **fields)

    def proposal(
        self,
        step: int,
        batch_start: int,
        proposal: Proposal,
        baseline: Baseline,
        status: Status,
        reason: str,
        **fields: Any,
    ) -> Record:
        return self._record(
            "proposal",
            step,
            status,
            reason,
            round=batch_start,
            edits=[e.operation() for e in proposal.edits],
            rationale=proposal.rationale,
            baseline=self.target.reference(baseline),
            llm=proposal.usage,
            attempts=proposal.attempts,
            **fields,
        )

    def judged_fields(
        self,
        candidate: Candidate,
        step: int,
        judged: Judged,
        baseline: Baseline,
        completion: int | None,
        noise: Pooled | None,
        selection: Selection | None = None,
    ) -> dict[str, Any]:
        """Status, reason and statistics of a judged candidate, for `proposal`; `noise`
        and `selection` are the run's seed-noise model and winner's curse so far."""
        decision, final = judged.rounds[0], judged.rounds[-1]
        reason = final.reason
        if final.kind == "confirmation":
            verdict = "confirmed" if final.accepted else "not confirmed"
            reason = f"{verdict} on {final.stats.k} learners: {reason}"
        if candidate.first_step != step:
            reason += f" [learners reused from step {candidate.first_step}]"
        return {
            "status": "accepted" if final.accepted else "rejected",
            "reason": reason,
            "stats": decision.stats,
            "logloss": decision.logloss,
            "delta_E": decision.delta_E,
            "rules": decision.rules,
            "interval": decision.interval,
            "rounds": judged.rounds,
            "shrinkage": self.shrinkage(judged, baseline),
            "test": self.test_report(judged.pool),
            "parameters": judged.pool.parameters,
            "flops": judged.pool.flops,
            "learners": final.stats.k,
            "completion": completion,
            "cost": sum((r.cost for r in judged.rounds), Cost()),
            **self.seed_noise_fields(
                final.stats, judged.pool, noise, selection, selected_learners(judged.rounds)
            ),
        }

    def seed_noise_fields(
        self,
        stats,
        pool: Pool,
        noise: Pooled | None,
        selection: Selection | None = None,
        selected: int = 0,
    ) -> dict[str, Any]:
        """The predictive interval of E_M and the unstable learners (theory/seed_noise.py)
        from the learners behind the final judgement (`stats` are theirs, on validation),
        `selected` of them chosen by the gate."""
        errors = learner_errors(pool.val[: stats.k], self.evaluator.y_val)
        predicted = predictive_interval(
            stats, self.config.members, noise, learner_errors=errors,
            selection=selection, selected=selected,
        )  # fmt: skip
        return {"predicted": predicted, "unstable": unstable_learners(errors)}

    def shrinkage(self, judged: Judged, baseline: Baseline) -> Shrinkage | None:
        """Predicted gain at decision and after confirmation: the winner's curse, measured;
        and, of a homogeneous candidate, its decision learners beside its fresh ones."""
        if judged.rounds[-1].kind != "confirmation":
            return None
        decided, confirmed = judged.rounds[-2], judged.rounds[-1]
        if decided.mixture is not None and confirmed.mixture is not None:  # of E_mix
            return Shrinkage(
                delta_E_M_at_decision=decided.mixture.delta,
                delta_E_M_confirmed=confirmed.mixture.delta,
            )
        return Shrinkage(
            delta_E_M_at_decision=decided.stats.E_M - baseline.stats.E_M,
            delta_E_M_confirmed=confirmed.stats.E_M - baseline.stats.E_M,
            fresh=self.fresh_check(judged.pool, decided.stats.k, confirmed.stats.k),
        )

    def seed_split(self, pool: Pool, decision: int) -> FreshCheck | None:
        """The start's learners split as a confirmed candidate's are (its first `decision`
        against the next as many as a confirmation trains): the gap common random numbers
        alone put between those seeds, with nothing selected (theory/seed_noise.py)."""
        total = min(len(pool), decision + self.config.gate.confirm_learners)
        return self.fresh_check(pool, decision, total)

    def fresh_check(self, pool: Pool, decision: int, total: int) -> FreshCheck | None:
        evaluator = self.evaluator
        return split_learners(
            {"val": pool.val, "test": pool.test},
            {"val": evaluator.y_val, "test": evaluator.y_test},
            self.config.members,
            decision,
            total,
        )

    def test_report(self, pool: Pool) -> TestReport:
        y, task = self.evaluator.y_test, self.evaluator.task
        return TestReport(
            stats=statistics(pool.test, y, self.config.members),
            metrics=task_metrics(task, pool.test, y),
        )

    def _record(self, event: str, step: int, status: Status, reason: str, **fields) -> Record:
        return Record(
            event=event,
            step=step,
            time=utc_now(),
            status=status,
            reason=reason,
            rule=self.config.gate.rule,
            members=self.config.members,
            **fields,
        )


def candidate_fields(candidate: Candidate, step: int) -> dict[str, Any]:
    reused = candidate.first_step != step
    return {
        "architecture": document_of(candidate.architecture),
        "arch_hash": candidate.arch_hash,
        "cached_from": candidate.first_step if reused else None,
    }
