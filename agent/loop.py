"""The search loop: propose, screen, train, judge, rank, record, adopt; repeat.

    state = the starting baseline (or a stopped run's records)
    while proposals remain in the budget:
        batch      = proposer.propose(context(state))    # one or more proposals
        screened   = [screen(p) for p in batch]           # a candidate, or why not
        train the batch's candidates together             # in parallel on Ray
        records    = rank([judge(c) for c in screened])   # gate rounds; one winner at most
        record them; adopt the winner as the baseline

Screening (screening.py), gate rounds and ranking (judging.py) and the run's state
(state.py) live beside this file. Invalid edits, failed training and failed LLM calls are
records with a status, never exceptions that end the run. Only a proposer that can never
succeed (bad API key), a configured cap on LLM calls or cost, or a stop request ends it,
cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edas_agent.config import Config
from edas_agent.context import proposal_context
from edas_agent.costs import BudgetExhausted
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.evaluators.base import (
    Evaluator,
    architecture_hash,
    document_of,
    stages_supported,
)
from edas_agent.executors import Executor
from edas_agent.gate import seed_noise_floor
from edas_agent.journal import Journal, Record, ScreeningTrace
from edas_agent.judging import Judge, make_gate, outrank
from edas_agent.learners import Failed, LearnerStore
from edas_agent.outcomes import Recorder, candidate_fields
from edas_agent.proposers.base import Proposal, ProposalContext, Proposer
from edas_agent.screening import Candidate, Refusal, Screen
from edas_agent.staging import Screened, Stager
from edas_agent.state import Baseline, RunState, batches, training_failures

__all__ = ["BaselineFailed", "Search", "initial_architecture", "make_gate"]


class BaselineFailed(Exception):
    """The starting architecture could not be trained: there is nothing to search from."""


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
        self.initial = initial_architecture(config, evaluator)
        self.records: list[Record] = []  # the run's, in order, as in trajectory.jsonl
        self.stopped: str | None = None  # why the run ended before its budget, if it did
        self.stop_requested = False  # set by a signal handler: stop after the current batch
        self.on_progress: Callable[[str], None] = lambda text: None  # work inside a round

    def run(
        self,
        journal: Journal,
        on_record: Callable[[Record], None] = lambda r: None,
        previous: list[Record] | None = None,
    ) -> list[Record]:
        """Search until the budget is spent; `previous` (a stopped run's records) resumes.
        Why it stopped early, if it did, is in .stopped."""
        self._open(journal, on_record, previous)
        step = len(self.state.proposals()) + 1
        while step <= self.config.budget and not self._should_stop():
            wanted = self._round_size(step)
            try:
                batch = self.proposer.propose(self._context(step, wanted), self.screen.check)
            except BudgetExhausted as exc:
                self.stopped = str(exc)
                break
            batch = batch[:wanted]
            if batch[0].transcript is not None:
                journal.save_transcript(step, batch[0].transcript)
            screened = [self.screen.candidate(p, step + i, step) for i, p in enumerate(batch)]
            staged = self._stage(screened)
            completion = self._train_together(screened, staged)
            records = outrank(
                [
                    self._outcome(step, i, proposal, outcome, completion, staged)
                    for i, (proposal, outcome) in enumerate(zip(batch, screened, strict=True))
                ]
            )
            for record in records:
                self._log(record)
            self._adopt_winner(records)
            step += len(records)
        return self.records

    @property
    def baseline(self) -> Baseline:
        return self.state.baseline

    def _round_size(self, step: int) -> int:
        per_round = (
            self.config.screening.proposals
            if self.config.screening.enabled
            else self.config.llm.proposals_per_round
        )
        return min(per_round, self.config.budget - step + 1)

    def _should_stop(self) -> bool:
        if self.stop_requested:
            self.stopped = "stopped on request after the last finished step"
        return self.stop_requested

    def _open(self, journal: Journal, on_record, previous: list[Record] | None) -> None:
        self.journal, self.on_record = journal, on_record
        self.store = LearnerStore(self.evaluator, journal.folder / "learners", self.executor)
        self.judge = Judge(self.config, self.gate, self.store, self.evaluator)
        self.recorder = Recorder(self.config, self.evaluator)
        self.stager = (
            Stager(self.config, self.evaluator, self.store, self.on_progress)
            if self._screens()
            else None
        )
        start = self._train_initial() if not previous else previous[0]
        if start.event != "baseline" or not start.accepted or start.stats is None:
            raise UserError("cannot resume: the run has no trained starting baseline")
        if self.config.gate.min_effect is not None:  # from the log, so a resume agrees
            self.gate.min_effect = seed_noise_floor(start.stats, self.config.gate.min_effect)
        self.state = RunState.starting_from(start, self.evaluator.parse, self.records)
        self.screen = Screen(self.state, self.evaluator.parse)
        self._learn_from(start)
        self.on_record(start)
        if previous:
            self._resume(previous)

    def _resume(self, previous: list[Record]) -> None:
        """The state an uninterrupted run would have after `previous`. Learners come from
        the store, so nothing finished is trained again; a proposer that replays
        deterministically (builtin, replay) is run through the recorded batches and must
        reproduce them. An unfinished last batch is dropped and done again."""
        for batch_start, records in batches(previous[1:]):
            wanted = self._round_size(batch_start)
            if batch_start != len(self.state.proposals()) + 1 or len(records) < wanted:
                break  # cut short by the kill: do it again
            if self.proposer.replays_deterministically:
                self._fast_forward(batch_start, wanted, records)
            for record in records:
                self.state.observe(record)
                self._learn_from(record)
                self.on_record(record)
            self._adopt_winner(records)
        self.store.failed.update(training_failures(self.records))
        if len(self.records) < len(previous):
            self.journal.truncate_to(self.records)

    def _fast_forward(self, step: int, wanted: int, records: list[Record]) -> None:
        proposals = self.proposer.propose(self._context(step, wanted), self.screen.check)
        produced = [[e.operation() for e in p.edits] for p in proposals[:wanted]]
        if produced != [r.edits for r in records]:
            raise UserError(
                f"cannot resume: the proposer does not reproduce step {step} "
                "(was the config or the code changed since the run started?)"
            )

    def _train_initial(self) -> Record:
        """The starting baseline's record, written; it gets the learners an accepted
        candidate ends up with. Raises BaselineFailed (after writing the failure)."""
        learners = self.config.evaluator.learners
        if self.config.gate.confirm:
            learners += self.config.gate.confirm_learners
        if self.config.gate.min_effect is not None:
            learners = max(learners, 3)  # the jackknife of its seed noise needs three
        document = document_of(self.initial)
        fields: dict[str, Any] = {
            "architecture": document,
            "arch_hash": architecture_hash(self.initial),
        }
        if self.stager is not None:  # its learning curve is the first the screening learns from
            self.store.prefetch([(self.initial, learners)], fractions=self.stager.full_fractions)
        trained = self.store.ensure(self.initial, learners)
        if isinstance(trained, Failed):
            failure = self.recorder.baseline("failed", trained.reason, **fields)
            self.records.append(failure)
            self.journal.append(failure)
            self.on_record(failure)
            raise BaselineFailed(f"the starting architecture failed: {trained.reason}")
        pool, cost = trained
        stats, logloss = self.gate.summarise(pool.val, self.evaluator.y_val, self.evaluator.task)
        record = self.recorder.baseline(
            "accepted",
            "starting baseline",
            stats=stats,
            logloss=logloss,
            test=self.recorder.test_report(pool),
            parameters=pool.parameters,
            flops=pool.flops,
            learners=learners,
            cost=cost,
            notes=list(self.evaluator.notes),
            screening=self._full_trace(self.initial, fields["arch_hash"], None),
            **fields,
        )
        self.journal.append(record)
        self.journal.save_best(record)
        return record

    def _context(self, step: int, proposals: int) -> ProposalContext:
        return proposal_context(self.config, self.evaluator, self.state, step, proposals)

    def _screens(self) -> bool:
        if not self.config.screening.enabled:
            return False
        if not stages_supported(self.evaluator):
            raise UserError(
                "screening.enabled needs an evaluator that can stop training early "
                "(evaluate_staged, as the built-in tabular evaluator has); this one cannot: "
                "set screening.enabled false"
            )
        return True

    def _stage(self, screened: list[Candidate | Refusal]) -> dict[str, Screened]:
        """Multi-fidelity screening of the round's new candidates, when enabled."""
        if self.stager is None:
            return {}
        candidates = [c for c in screened if isinstance(c, Candidate)]
        bar = self.baseline.stats.E_M - (self.gate.min_effect or 0.0)
        return self.stager.screen(candidates, bar)

    def _train_together(
        self, screened: list[Candidate | Refusal], staged: dict[str, Screened]
    ) -> dict[str, int]:
        """Train the decision learners of a batch's candidates at once (in parallel on a
        parallel executor), but not those screening stopped; returns the order they
        finished in, which is logged but never decides anything."""
        wants = [
            (c.architecture, self._decision_learners(c.arch_hash, staged))
            for c in screened
            if isinstance(c, Candidate) and not _stopped(staged.get(c.arch_hash))
        ]
        fractions = self.stager.full_fractions if self.stager is not None else None
        # In chunks of evaluator.learners: a survivor's first chunk goes on from its stages
        chunk = self.config.evaluator.learners
        finished = self.store.prefetch(wants, chunk=chunk, fractions=fractions)
        return {arch_hash: order for order, arch_hash in enumerate(dict.fromkeys(finished))}

    def _decision_learners(self, arch_hash: str, staged: dict[str, Screened]) -> int:
        """Learners of a candidate's decision round: more for a survivor of this round's
        screening when screening.survivor_learners asks for them."""
        survivors = self.config.screening.survivor_learners
        if survivors is not None and arch_hash in staged:
            return survivors
        return self.config.evaluator.learners

    def _full_trace(self, architecture, arch_hash: str, trace: ScreeningTrace | None):
        if self.stager is None:
            return None
        return self.stager.trace_of_full(architecture, arch_hash, trace)

    def _outcome(
        self,
        batch_start: int,
        index: int,
        proposal: Proposal,
        screened: Candidate | Refusal,
        completion: dict[str, int],
        staged: dict[str, Screened],
    ) -> Record:
        """A proposal's outcome, as its record: refused, failed (before or now), pruned by
        screening, or judged."""
        step = batch_start + index
        record = partial(self.recorder.proposal, step, batch_start, proposal, self.baseline)
        if isinstance(screened, Refusal):
            return record(screened.status, screened.reason)
        stage = staged.get(screened.arch_hash)
        if stage is not None:  # screened now, so trained now (a pruned one had no learners)
            screened = replace(screened, first_step=step)
        fields = candidate_fields(screened, step)
        if _stopped(stage):
            assert stage is not None
            status = "failed" if stage.failed is not None else "pruned"
            reason = stage.failed or stage.pruned
            assert reason is not None
            cost = self.store.bill(screened.arch_hash)
            return record(status, reason, screening=stage.trace, cost=cost, **fields)
        failed_before = self.store.failed.get(screened.arch_hash)
        if failed_before is not None and fields["cached_from"] is not None:
            return record("failed", f"{failed_before} [from step {screened.first_step}]", **fields)
        learners = self._decision_learners(screened.arch_hash, staged)
        judged = self.judge.rounds(self.baseline, step, screened.architecture, learners)
        if isinstance(judged, Failed):
            return record("failed", judged.reason, **fields)
        order = completion.get(screened.arch_hash)
        # Only a screened candidate's full training kept a curve (reused learners did not)
        trace = None
        if stage is not None:
            trace = self._full_trace(screened.architecture, screened.arch_hash, stage.trace)
        return record(
            **self.recorder.judged_fields(screened, step, judged, self.baseline, order),
            screening=trace,
            **fields,
        )

    def _adopt_winner(self, records: list[Record]) -> None:
        winner = next((r for r in records if r.accepted), None)
        if winner is not None:
            self.state.adopt(winner, self.evaluator.parse)
            self.journal.save_best(winner)

    def _log(self, record: Record) -> None:
        self.state.observe(record)
        self._learn_from(record)
        self.journal.append(record)
        self.on_record(record)

    def _learn_from(self, record: Record) -> None:
        if self.stager is not None:
            self.stager.observe(record)


def _stopped(screened: Screened | None) -> bool:
    return screened is not None and (screened.pruned is not None or screened.failed is not None)


def initial_architecture(config: Config, evaluator: Evaluator):
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
