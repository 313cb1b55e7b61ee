"""The search loop: propose edits, evaluate learners, gate, log, repeat.

    baseline = evaluate(start)
    while proposals remain in the budget:
        proposals = proposer.propose(context(baseline, history))   # one or more per round
        records   = [assess(p) for p in proposals]   # apply edits, validate, train, gate
        journal.append(records)
        if any accepted: baseline = the accepted one with the lowest predicted E_M

Gating a candidate is a short series of rounds: the decision on k learners; with
`gate.sequential`, two more learners at a time while the interval straddles zero; after an
acceptance with `gate.confirm`, fresh learners and a last judgement on all of them. The last
round decides, so a winner carried by lucky seeds is caught before it becomes the baseline.

Invalid edits, failed training and failed LLM calls are records with a status, never
exceptions that end the run. Only a proposer that can never succeed (bad API key) or a
configured cap on LLM calls or cost stops it, cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.config import Config
from agent.costs import BudgetExhausted
from agent.edits import ProposedEdits, apply_edits
from agent.errors import UserError, describe_validation_error
from agent.executors import Executor
from agent.gate import Gate, Stats, statistics
from agent.journal import (
    BaselineRef,
    Journal,
    Record,
    Round,
    Shrinkage,
    Status,
    TestReport,
    utc_now,
)
from agent.learners import Cost, LearnerStore, Pool
from agent.logloss import LogLossStats
from agent.metrics import task_metrics
from agent.proposers.base import HistoryEntry, Proposal, ProposalContext, Proposer
from evaluators.base import CandidateFailed, Evaluator

_CONFIRMATION_ROUND = 1000  # bootstrap seed offset, apart from sequential rounds 1, 2, ...


class BaselineFailed(Exception):
    """The starting architecture could not be trained: there is nothing to search from."""


@dataclass(frozen=True)
class Baseline:
    step: int
    architecture: BaseModel
    arch_hash: str
    learners: int  # how many of its pool's learners its statistics use
    stats: Stats
    logloss: LogLossStats | None

    def ref(self) -> BaselineRef:
        return BaselineRef(
            step=self.step, arch_hash=self.arch_hash, stats=self.stats, logloss=self.logloss
        )


def make_gate(config: Config) -> Gate:
    g = config.gate
    return Gate(config.members, g.rule, g.confidence, g.interval_level, g.resamples)


class Search:
    def __init__(
        self,
        config: Config,
        evaluator: Evaluator,
        proposer: Proposer,
        executor: Executor | None = None,
    ):
        self.config = config
        self.evaluator = evaluator
        self.proposer = proposer
        self.executor = executor
        self.gate = make_gate(config)
        self.start = initial_architecture(config, evaluator)
        self.first_step: dict[str, int] = {}  # architecture hash -> step that first trained it
        self.failures: dict[str, str] = {}  # architecture hash -> why its training failed
        self.records: list[Record] = []
        self.round_start = 1
        self.stopped: str | None = None
        self.stop_requested = False  # set by a signal handler: stop after the current round
        self.completion: dict[str, int] = {}

    def run(
        self,
        journal: Journal,
        on_record: Callable[[Record], None] = lambda r: None,
        previous: list[Record] | None = None,
    ) -> list[Record]:
        """Search until the budget is spent. `previous` (a killed run's records) resumes.

        A reached LLM cap or a stop request (Ctrl-C) ends it after the current round; the
        reason is in .stopped.
        """
        self.journal, self.on_record = journal, on_record
        self.store = LearnerStore(self.evaluator, journal.folder / "learners", self.executor)
        self.stopped = None
        step = self._restore(previous) if previous else self._begin()
        while step <= self.config.budget:
            if self.stop_requested:
                self.stopped = "stopped on request after the last finished step"
                break
            wanted = min(self.config.llm.proposals_per_round, self.config.budget - step + 1)
            try:
                proposals = self.proposer.propose(self._context(step, wanted), self._check)
            except BudgetExhausted as exc:
                self.stopped = str(exc)
                break
            proposals = proposals[:wanted]
            if proposals[0].transcript is not None:
                journal.save_transcript(step, proposals[0].transcript)
            self.round_start = step
            self.completion = self._train_together(proposals)
            records = _outranked([self._assess(step + i, p) for i, p in enumerate(proposals)])
            for record in records:
                self._log(record)
            self._finish_round(records)
            step += len(records)
        return self.records

    def _train_together(self, proposals: list[Proposal]) -> dict[str, int]:
        """Train the decision learners of a round's candidates at once (in parallel on a
        parallel executor); returns the order they finished in, which is logged but never
        decides anything."""
        wants: dict[str, BaseModel] = {}
        for proposal in proposals:
            if proposal.problem is not None:
                continue
            try:
                architecture = self._apply(proposal.edits)
            except ValueError:
                continue
            arch_hash = architecture.arch_hash()
            if arch_hash != self.baseline.arch_hash and arch_hash not in self.failures:
                wants.setdefault(arch_hash, architecture)
        learners = self.config.evaluator.learners
        finished = self.store.prefetch([(a, learners) for a in wants.values()])
        return {arch_hash: order for order, arch_hash in enumerate(dict.fromkeys(finished))}

    def _begin(self) -> int:
        self.baseline = self._start()
        return 1

    def _finish_round(self, records: list[Record]) -> None:
        winner = next((r for r in records if r.accepted), None)
        if winner is not None:
            self._adopt(winner)

    def _restore(self, previous: list[Record]) -> int:
        """Rebuild the state an uninterrupted run would have after `previous`; returns the
        next step. Learners come from the store, so nothing finished is trained again;
        a stateful proposer (builtin, replay) is run through the recorded rounds and must
        reproduce them. An unfinished last round is dropped and done again."""
        start = previous[0]
        if start.event != "baseline" or not start.accepted or start.stats is None:
            raise UserError("cannot resume: the run has no trained starting baseline")
        self.baseline = self._baseline_of(start)
        self.first_step[self.baseline.arch_hash] = 0
        self.records.append(start)
        self.on_record(start)
        kept, step = [start], 1
        for round_start, records in _group_by_round(previous[1:]):
            wanted = min(self.config.llm.proposals_per_round, self.config.budget - round_start + 1)
            if round_start != step or len(records) < wanted:
                break  # cut short by the kill: do it again
            if getattr(self.proposer, "stateful", False):
                self._fast_forward(round_start, wanted, records)
            self.round_start = round_start
            for record in records:
                self._remember(record)
                self.records.append(record)
                self.on_record(record)
            self._finish_round(records)
            kept.extend(records)
            step = round_start + len(records)
        if len(kept) < len(previous):
            self.journal.truncate_to(kept)
        return step

    def _fast_forward(self, step: int, wanted: int, records: list[Record]) -> None:
        proposals = self.proposer.propose(self._context(step, wanted), self._check)
        produced = [[e.operation() for e in p.edits] for p in proposals[:wanted]]
        if produced != [r.edits for r in records]:
            raise UserError(
                f"cannot resume: the proposer does not reproduce step {step} "
                "(was the config or the code changed since the run started?)"
            )

    def _remember(self, record: Record) -> None:
        if record.arch_hash is None:
            return
        self.first_step.setdefault(record.arch_hash, record.step)
        if record.status == "failed" and record.cached_from is None:
            self.failures[record.arch_hash] = record.reason

    def _start(self) -> Baseline:
        """The starting baseline gets the learners an accepted candidate ends up with."""
        learners = self.config.evaluator.learners
        if self.config.gate.confirm:
            learners += self.config.gate.confirm_learners
        arch_hash = self.start.arch_hash()
        fields: dict[str, Any] = {"architecture": self.start.document(), "arch_hash": arch_hash}
        try:
            pool, cost = self.store.ensure(self.start, learners)
        except CandidateFailed as exc:
            self._log(self._baseline_record("failed", str(exc), **fields))
            raise BaselineFailed(f"the starting architecture failed: {exc}") from None
        self.first_step[arch_hash] = 0
        stats, logloss = self.gate.summarise(pool.val, self.evaluator.y_val, self.evaluator.task)
        record = self._baseline_record(
            "accepted",
            "starting baseline",
            stats=stats,
            logloss=logloss,
            test=self._test_report(pool),
            parameters=pool.parameters,
            flops=pool.flops,
            learners=learners,
            cost=cost,
            notes=list(self.evaluator.notes),
            **fields,
        )
        self._log(record)
        self.journal.save_best(record)
        return Baseline(0, self.start, arch_hash, learners, stats, logloss)

    def _baseline_record(self, status: Status, reason: str, **fields: Any) -> Record:
        return self._new_record("baseline", 0, status, reason, **fields)

    def _context(self, step: int, proposals: int = 1) -> ProposalContext:
        recent = [r for r in self.records if r.event == "proposal"][-self.config.llm.history :]
        return ProposalContext(
            step=step,
            budget=self.config.budget,
            members=self.config.members,
            rule=self.config.gate.rule,
            baseline_step=self.baseline.step,
            architecture=self.baseline.architecture.document(),
            stats=self.baseline.stats,
            history=[_history_entry(r) for r in recent] if self.config.llm.history else [],
            space_schema=self.evaluator.space().model_json_schema(),
            dataset=self.evaluator.describe(),
            proposals=proposals,
            evaluated_hashes=frozenset(self.first_step),
        )

    def _check(self, items: list[ProposedEdits]) -> list[str | None]:
        """What is wrong with each proposed item, in words an LLM can act on."""
        problems: list[str | None] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            try:
                architecture = self._apply(item.edits)
            except ValueError as exc:  # InvalidEdits, or the space's validation message
                problems.append(str(exc))
                continue
            arch_hash = architecture.arch_hash()
            if arch_hash == self.baseline.arch_hash:
                problems.append("no-op: the edits leave the baseline unchanged")
            elif arch_hash in self.first_step:
                problems.append(
                    f"repeat: this architecture was already evaluated at step "
                    f"{self.first_step[arch_hash]}; propose something new"
                )
            elif arch_hash in seen:
                problems.append(f"duplicate of proposal {seen[arch_hash] + 1} in this answer")
            else:
                problems.append(None)
            seen.setdefault(arch_hash, index)
        return problems

    def _apply(self, edits: list) -> BaseModel:
        """The edited baseline, validated; raises InvalidEdits or ValueError with the reason."""
        document = apply_edits(self.baseline.architecture.document(), edits)
        try:
            return self.evaluator.parse(document)
        except ValidationError as exc:
            raise ValueError(f"outside the space: {describe_validation_error(exc)}") from None

    def _assess(self, step: int, proposal: Proposal) -> Record:
        outcome = partial(self._record, step, proposal)
        if proposal.problem is not None:
            return outcome(proposal.problem_status, proposal.problem)
        try:
            architecture = self._apply(proposal.edits)
        except ValueError as exc:  # InvalidEdits is a ValueError too
            return outcome("invalid", str(exc))
        arch_hash = architecture.arch_hash()
        if arch_hash == self.baseline.arch_hash:
            return outcome("invalid", "no-op: the edits leave the baseline unchanged")
        first = self.first_step.setdefault(arch_hash, step)
        if first != step and first >= self.round_start:
            return outcome("invalid", f"duplicate of step {first} in the same round; not trained")

        fields: dict[str, Any] = {
            "architecture": architecture.document(),
            "arch_hash": arch_hash,
            "cached_from": first if first != step else None,
        }
        if arch_hash in self.failures:
            return outcome("failed", f"{self.failures[arch_hash]} [from step {first}]", **fields)
        try:
            rounds, pool = self._rounds(step, architecture)
        except CandidateFailed as exc:
            self.failures[arch_hash] = str(exc)
            return outcome("failed", str(exc), **fields)
        decision, final = rounds[0], rounds[-1]
        reason = final.reason
        if final.kind == "confirmation":
            verdict = "confirmed" if final.accepted else "not confirmed"
            reason = f"{verdict} on {final.stats.k} learners: {reason}"
        shrinkage = None
        if final.kind == "confirmation":
            shrinkage = Shrinkage(
                delta_E_M_at_decision=rounds[-2].stats.E_M - self.baseline.stats.E_M,
                delta_E_M_confirmed=final.stats.E_M - self.baseline.stats.E_M,
            )
        return outcome(
            "accepted" if final.accepted else "rejected",
            reason + (f" [learners reused from step {first}]" if first != step else ""),
            stats=decision.stats,
            logloss=decision.logloss,
            delta_E=decision.delta_E,
            rules=decision.rules,
            interval=decision.interval,
            rounds=rounds,
            shrinkage=shrinkage,
            test=self._test_report(pool),
            parameters=pool.parameters,
            flops=pool.flops,
            learners=final.stats.k,
            completion=self.completion.get(architecture.arch_hash()),
            cost=sum((r.cost for r in rounds), Cost()),
            **fields,
        )

    def _rounds(self, step: int, architecture: BaseModel) -> tuple[list[Round], Pool]:
        """Decision, sequential rounds, confirmation; raises CandidateFailed."""
        gate = self.config.gate
        learners = self.config.evaluator.learners
        rounds = [self._round("decision", step, 0, architecture, learners)]
        while (
            gate.sequential
            and rounds[-1].interval is not None
            and rounds[-1].interval.straddles_zero()
            and learners + 2 <= gate.max_learners
        ):
            learners += 2
            rounds.append(self._round("sequential", step, len(rounds), architecture, learners))
        if gate.confirm and rounds[-1].accepted:
            learners += gate.confirm_learners
            rounds.append(
                self._round("confirmation", step, _CONFIRMATION_ROUND, architecture, learners)
            )
        pool = self.store.get(architecture.arch_hash())
        assert pool is not None
        return rounds, pool.head(learners)

    def _round(
        self, kind: str, step: int, index: int, architecture: BaseModel, learners: int
    ) -> Round:
        pool, cost = self.store.ensure(architecture, learners)
        judgement, _ = self.gate.judge(
            self._baseline_pool().val,
            pool.head(learners).val,
            self.evaluator.y_val,
            self.evaluator.task,
            seed=[self.config.seed, step, index],
        )
        return Round(kind=kind, cost=cost, **judgement.model_dump())

    def _baseline_pool(self) -> Pool:
        pool = self.store.get(self.baseline.arch_hash)
        assert pool is not None
        return pool.head(self.baseline.learners)

    def _test_report(self, pool: Pool) -> TestReport:
        y, task = self.evaluator.y_test, self.evaluator.task
        return TestReport(
            stats=statistics(pool.test, y, self.config.members),
            metrics=task_metrics(task, pool.test, y),
        )

    def _record(
        self, step: int, proposal: Proposal, status: Status, reason: str, **fields: Any
    ) -> Record:
        return self._new_record(
            "proposal",
            step,
            status,
            reason,
            round=self.round_start,
            edits=[e.operation() for e in proposal.edits],
            rationale=proposal.rationale,
            baseline=self.baseline.ref(),
            llm=proposal.usage,
            attempts=proposal.attempts,
            **fields,
        )

    def _new_record(
        self, event: str, step: int, status: Status, reason: str, **fields: Any
    ) -> Record:
        return Record(
            event=event,
            step=step,
            time=utc_now(),
            status=status,
            accepted=status == "accepted",
            reason=reason,
            rule=self.config.gate.rule,
            members=self.config.members,
            **fields,
        )

    def _adopt(self, record: Record) -> None:
        self.baseline = self._baseline_of(record)
        self.journal.save_best(record)

    def _baseline_of(self, record: Record) -> Baseline:
        """An accepted record as the baseline, with the statistics it carries forward."""
        assert record.arch_hash is not None and record.architecture is not None
        assert record.learners is not None
        stats, logloss = record.carried()
        assert stats is not None
        return Baseline(
            step=record.step,
            architecture=self.evaluator.parse(record.architecture),
            arch_hash=record.arch_hash,
            learners=record.learners,
            stats=stats,
            logloss=logloss,
        )

    def _log(self, record: Record) -> None:
        self.records.append(record)
        self.journal.append(record)
        self.on_record(record)


def _group_by_round(records: list[Record]) -> list[tuple[int, list[Record]]]:
    grouped: dict[int, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.round if record.round is not None else record.step, []).append(
            record
        )
    return sorted(grouped.items())


def _outranked(records: list[Record]) -> list[Record]:
    """Of a round's accepted records, keep the one with the lowest predicted E_M; the others
    passed the gate but are rejected, so the trajectory stays monotonic."""
    accepted = [r for r in records if r.accepted]
    if len(accepted) < 2:
        return records
    best = min(accepted, key=lambda r: r.carried()[0].E_M)
    ranked = []
    for record in records:
        if record.accepted and record is not best:
            reason = f"passed the gate, but step {best.step} predicts a lower E_M; {record.reason}"
            record = record.model_copy(
                update={
                    "status": "rejected",
                    "accepted": False,
                    "reason": reason,
                    "outranked_by": best.step,
                }
            )
        ranked.append(record)
    return ranked


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
    stats, _ = record.carried()
    return HistoryEntry(
        step=record.step,
        status=record.status,
        edits=record.edits,
        rationale=record.rationale,
        reason=record.reason,
        delta_E=record.delta_E,
        rho=stats.rho if stats else None,
        E_M=stats.E_M if stats else None,
    )
