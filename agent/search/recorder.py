"""Outcomes as trajectory records: the one place that knows which fields each kind of
outcome fills (the starting baseline, a refused proposal, a failed or judged one)."""

from __future__ import annotations

from typing import Any

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, document_of
from edas_agent.proposers.base import Proposal
from edas_agent.record import Cost, Record, Shrinkage, Status, TestReport, utc_now
from edas_agent.search.checks import Candidate
from edas_agent.search.judging import Judged
from edas_agent.search.state import Baseline
from edas_agent.search.target import Target
from edas_agent.theory.gate import statistics
from edas_agent.theory.metrics import task_metrics
from edas_agent.theory.seed_noise import (
    Pooled,
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
    ) -> dict[str, Any]:
        """Status, reason and statistics of a judged candidate, for `proposal`; `noise`
        is the run's seed-noise model so far."""
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
            "shrinkage": _shrinkage(judged, baseline),
            "test": self.test_report(judged.pool),
            "parameters": judged.pool.parameters,
            "flops": judged.pool.flops,
            "learners": final.stats.k,
            "completion": completion,
            "cost": sum((r.cost for r in judged.rounds), Cost()),
            **self.seed_noise_fields(final.stats, judged.pool, noise),
        }

    def seed_noise_fields(self, stats, pool: Pool, noise: Pooled | None) -> dict[str, Any]:
        """The predictive interval of E_M and the unstable learners (theory/seed_noise.py)
        from the learners behind the final judgement (`stats` are theirs, on validation)."""
        errors = learner_errors(pool.val[: stats.k], self.evaluator.y_val)
        predicted = predictive_interval(stats, self.config.members, noise, learner_errors=errors)
        return {"predicted": predicted, "unstable": unstable_learners(errors)}

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


def _shrinkage(judged: Judged, baseline: Baseline) -> Shrinkage | None:
    """Predicted gain at decision and after confirmation: the winner's curse, measured."""
    if judged.rounds[-1].kind != "confirmation":
        return None
    decided, confirmed = judged.rounds[-2].mixture, judged.rounds[-1].mixture
    if decided is not None and confirmed is not None:  # a mixture search: of E_mix
        return Shrinkage(delta_E_M_at_decision=decided.delta, delta_E_M_confirmed=confirmed.delta)
    return Shrinkage(
        delta_E_M_at_decision=judged.rounds[-2].stats.E_M - baseline.stats.E_M,
        delta_E_M_confirmed=judged.rounds[-1].stats.E_M - baseline.stats.E_M,
    )
