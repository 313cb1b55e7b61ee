"""The search loop: propose edits, evaluate two learners, gate, log, repeat.

    baseline = evaluate(start)
    for step in 1..budget:
        proposal = proposer.propose(context(baseline, history))
        record   = assess(proposal)     # apply edits, validate, train k learners, gate
        journal.append(record)
        if record.accepted: baseline = candidate

Invalid edits, failed training and failed LLM calls are records with a status, never
exceptions that end the run. Only a proposer that can never succeed (bad API key) stops it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.config import Config
from agent.edits import InvalidEdits, apply_edits
from agent.errors import UserError, describe_validation_error
from agent.gate import Stats, decide, statistics
from agent.journal import BaselineRef, Cost, Journal, Record, Status, TestReport, utc_now
from agent.metrics import task_metrics
from agent.proposers.base import HistoryEntry, Proposal, ProposalContext, Proposer
from evaluators.base import CandidateFailed, Evaluator


class BaselineFailed(Exception):
    """The starting architecture could not be trained: there is nothing to search from."""


@dataclass(frozen=True)
class Evaluated:
    """What training an architecture's k learners produced; cached by architecture hash."""

    step: int
    stats: Stats | None  # None when training failed
    test: TestReport | None
    parameters: int | None
    failure: str | None
    cost: Cost


@dataclass(frozen=True)
class Baseline:
    step: int
    architecture: BaseModel
    arch_hash: str
    evaluated: Evaluated

    def ref(self) -> BaselineRef:
        return BaselineRef(step=self.step, arch_hash=self.arch_hash, stats=self.evaluated.stats)


class Search:
    def __init__(self, config: Config, evaluator: Evaluator, proposer: Proposer):
        self.config = config
        self.evaluator = evaluator
        self.proposer = proposer
        self.start = initial_architecture(config, evaluator)
        self.cache: dict[str, Evaluated] = {}
        self.records: list[Record] = []

    def run(
        self, journal: Journal, on_record: Callable[[Record], None] = lambda r: None
    ) -> list[Record]:
        self.journal, self.on_record = journal, on_record
        self.baseline = self._start()
        for step in range(1, self.config.budget + 1):
            proposal = self.proposer.propose(self._context(step))
            if proposal.transcript is not None:
                journal.save_transcript(step, proposal.transcript)
            record = self._assess(step, proposal)
            self._log(record)
            if record.accepted:
                self._adopt(record)
        return self.records

    def _start(self) -> Baseline:
        evaluated = self._evaluated(0, self.start)
        record = Record(
            event="baseline",
            step=0,
            time=utc_now(),
            status="accepted" if evaluated.failure is None else "failed",
            accepted=evaluated.failure is None,
            reason=evaluated.failure or "starting baseline",
            rule=self.config.gate.rule,
            members=self.config.members,
            architecture=self.start.document(),
            arch_hash=self.start.arch_hash(),
            stats=evaluated.stats,
            test=evaluated.test,
            parameters=evaluated.parameters,
            cost=evaluated.cost,
        )
        self._log(record)
        if evaluated.failure is not None:
            raise BaselineFailed(f"the starting architecture failed: {evaluated.failure}")
        self.journal.save_best(record)
        return Baseline(0, self.start, record.arch_hash, evaluated)

    def _context(self, step: int) -> ProposalContext:
        recent = [r for r in self.records if r.event == "proposal"][-self.config.llm.history :]
        return ProposalContext(
            step=step,
            budget=self.config.budget,
            members=self.config.members,
            rule=self.config.gate.rule,
            baseline_step=self.baseline.step,
            architecture=self.baseline.architecture.document(),
            stats=self.baseline.evaluated.stats,
            history=[_history_entry(r) for r in recent] if self.config.llm.history else [],
            space_schema=self.evaluator.space().model_json_schema(),
            dataset=self.evaluator.describe(),
            evaluated_hashes=frozenset(self.cache),
        )

    def _assess(self, step: int, proposal: Proposal) -> Record:
        outcome = partial(self._record, step, proposal)
        if proposal.problem is not None:
            return outcome(proposal.problem_status, proposal.problem)
        try:
            document = apply_edits(self.baseline.architecture.document(), proposal.edits)
            architecture = self.evaluator.parse(document)
        except InvalidEdits as exc:
            return outcome("invalid", str(exc))
        except ValidationError as exc:
            return outcome("invalid", f"outside the space: {describe_validation_error(exc)}")
        if architecture.arch_hash() == self.baseline.arch_hash:
            return outcome("invalid", "no-op: the edits leave the baseline unchanged")

        evaluated = self._evaluated(step, architecture)
        reused = evaluated.step != step
        fields = {
            "architecture": architecture.document(),
            "arch_hash": architecture.arch_hash(),
            "test": evaluated.test,
            "parameters": evaluated.parameters,
            "cached_from": evaluated.step if reused else None,
            "cost": Cost() if reused else evaluated.cost,
        }
        if evaluated.failure is not None:
            return outcome("failed", evaluated.failure, **fields)
        decision = decide(
            self.baseline.evaluated.stats,
            evaluated.stats,
            self.config.members,
            self.config.gate.rule,
        )
        reason = decision.reason + (
            f" [evaluation reused from step {evaluated.step}]" if reused else ""
        )
        return outcome(
            "accepted" if decision.accepted else "rejected",
            reason,
            stats=evaluated.stats,
            delta_E=decision.delta_E,
            rules=decision.rules,
            **fields,
        )

    def _record(
        self, step: int, proposal: Proposal, status: Status, reason: str, **fields: Any
    ) -> Record:
        return Record(
            event="proposal",
            step=step,
            time=utc_now(),
            status=status,
            accepted=status == "accepted",
            reason=reason,
            rule=self.config.gate.rule,
            members=self.config.members,
            edits=[e.operation() for e in proposal.edits],
            rationale=proposal.rationale,
            baseline=self.baseline.ref(),
            llm=proposal.usage,
            **fields,
        )

    def _evaluated(self, step: int, architecture: BaseModel) -> Evaluated:
        """Train k learners, or reuse the result for an architecture seen before.

        Reuse is exact, not an approximation: learner j always has seed base+j, so training
        the same architecture again would give the same predictions.
        """
        arch_hash = architecture.arch_hash()
        if arch_hash in self.cache:
            return self.cache[arch_hash]
        learners = self.config.evaluator.learners
        started = time.perf_counter()
        try:
            evaluation = self.evaluator.evaluate(architecture, learners)
        except CandidateFailed as exc:
            cost = Cost(learners_trained=0, train_seconds=time.perf_counter() - started)
            result = Evaluated(step, None, None, None, str(exc), cost)
        else:
            members = self.config.members
            test = TestReport(
                stats=statistics(evaluation.test_predictions, self.evaluator.y_test, members),
                metrics=task_metrics(
                    self.evaluator.task, evaluation.test_predictions, self.evaluator.y_test
                ),
            )
            result = Evaluated(
                step=step,
                stats=statistics(evaluation.val_predictions, self.evaluator.y_val, members),
                test=test,
                parameters=evaluation.parameters,
                failure=None,
                cost=Cost(learners_trained=learners, train_seconds=evaluation.train_seconds),
            )
        self.cache[arch_hash] = result
        return result

    def _adopt(self, record: Record) -> None:
        assert record.arch_hash is not None and record.architecture is not None
        self.baseline = Baseline(
            step=record.step,
            architecture=self.evaluator.parse(record.architecture),
            arch_hash=record.arch_hash,
            evaluated=self.cache[record.arch_hash],
        )
        self.journal.save_best(record)

    def _log(self, record: Record) -> None:
        self.records.append(record)
        self.journal.append(record)
        self.on_record(record)


def initial_architecture(config: Config, evaluator: Evaluator) -> BaseModel:
    if config.baseline is None:
        return evaluator.default_architecture()
    path = Path(config.baseline)
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read baseline architecture {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"baseline architecture {path} is not valid JSON: {exc}") from None
    try:
        return evaluator.parse(document)
    except ValidationError as exc:
        raise UserError(f"baseline architecture {path}: {describe_validation_error(exc)}") from None


def _history_entry(record: Record) -> HistoryEntry:
    return HistoryEntry(
        step=record.step,
        status=record.status,
        edits=record.edits,
        rationale=record.rationale,
        reason=record.reason,
        delta_E=record.delta_E,
        rho=record.stats.rho if record.stats else None,
        E_M=record.stats.E_M if record.stats else None,
    )
