"""The search loop: propose, screen, train, judge, rank, record, adopt; repeat.

    state = the starting baseline (or a stopped run's records)
    while proposals remain in the budget:
        batch      = proposer.propose(context(state))    # one or more proposals
        screened   = [screen(p) for p in batch]           # a candidate, or why not
        train the batch's candidates together             # in parallel on Ray
        records    = rank([judge(c) for c in screened])   # gate rounds; one winner at most
        record them; adopt the winner as the baseline

Screening of proposals (screening.py), gate rounds and ranking (judging.py, rounds.py,
target.py) and the run's state (state.py) live beside this file; multi-fidelity screening
in agent/fidelity/. Which target and whether to screen are strategies chosen once, when the
run opens. Invalid edits, failed training and failed LLM calls are
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
from edas_agent.continuous.steps import ContinuousSteps
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.evaluators.base import Evaluator, architecture_hash, document_of
from edas_agent.fidelity.staging import NOT_SCREENED, Screened
from edas_agent.fidelity.strategy import make_screening
from edas_agent.outcome import Outcome, failed
from edas_agent.proposers.base import Proposal, ProposalContext, Proposer
from edas_agent.search.context import proposal_context
from edas_agent.search.journal import Journal, Record, seed_noise
from edas_agent.search.judging import Judge, make_gate, noise_floor, outrank
from edas_agent.search.outcomes import Recorder, candidate_fields
from edas_agent.search.screening import Candidate, Screen
from edas_agent.search.state import Baseline, RunState, batches, training_failures
from edas_agent.training.compute import ComputeBudget
from edas_agent.training.costs import BudgetExhausted
from edas_agent.training.executors import Executor
from edas_agent.training.learners import LearnerStore

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
        self.continuous = ContinuousSteps(config, evaluator)
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
                batch = self._propose(step, wanted)
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
                    self._record(step, i, proposal, candidate, completion, staged)
                    for i, (proposal, candidate) in enumerate(zip(batch, screened, strict=True))
                ]
            )
            for record in records:
                self._log(record)
            self._adopt_winner(records)
            self._set_floor()
            step += len(records)
        return self.records

    def _propose(self, step: int, wanted: int) -> list[Proposal]:
        """A continuous step when one is due (search.continuous), else the proposer's."""
        continuous = self.continuous.propose(self.state, self.gate.min_effect)
        if continuous is not None:
            return [continuous]
        return self.proposer.propose(self._context(step, wanted), self.screen.check)

    @property
    def baseline(self) -> Baseline:
        return self.state.baseline

    def _round_size(self, step: int) -> int:
        return min(self.screening.proposals_per_round, self.config.budget - step + 1)

    def _should_stop(self) -> bool:
        if self.stop_requested:
            self.stopped = "stopped on request after the last finished step"
        else:
            self.stopped = self.compute.exhausted()
        return self.stopped is not None

    def _open(self, journal: Journal, on_record, previous: list[Record] | None) -> None:
        """The run's parts, strategies chosen once (target, screening), and its state."""
        self.journal, self.on_record = journal, on_record
        self.store = LearnerStore(self.evaluator, journal.folder / "learners", self.executor)
        self.judge = Judge.for_run(self.config, self.gate, self.evaluator, self.store)
        self.plan, self.target = self.judge.plan, self.judge.target
        self.recorder = Recorder(self.config, self.evaluator, self.target)
        self.screening = make_screening(self.config, self.evaluator, self.store, self.on_progress)
        self.compute = ComputeBudget(self.config.max_train_hours, self.config.max_train_tflop)
        start = self._train_initial() if not previous else previous[0]
        if start.event != "baseline" or not start.accepted or start.stats is None:
            raise UserError("cannot resume: the run has no trained starting baseline")
        self.state = RunState.starting_from(start, self.evaluator.parse, self.records)
        self._set_floor()
        self.screen = Screen(self.state, self.evaluator.parse)
        self.screening.observe(start)
        self.compute.charge(start.cost)
        self.on_record(start)
        if previous:
            self._resume(previous)

    def _resume(self, previous: list[Record]) -> None:
        """The state an uninterrupted run would have after `previous`. Learners come from
        the store, so nothing finished is trained again; a proposer that replays
        deterministically (builtin, replay) is run through the recorded batches and must
        reproduce them. An unfinished last batch is dropped and done again."""
        for batch_start, records in batches(previous[1:]):
            continuous = self.continuous.propose(self.state, self.gate.min_effect)
            wanted = 1 if continuous else self._round_size(batch_start)
            if batch_start != len(self.state.proposals()) + 1 or len(records) < wanted:
                break  # cut short by the kill: do it again
            if continuous is not None:
                self._check_reproduced(batch_start, [continuous], records)
            elif self.proposer.replays_deterministically:
                self._fast_forward(batch_start, wanted, records)
            for record in records:
                self.state.observe(record)
                self.screening.observe(record)
                self.compute.charge(record.cost)
                self.on_record(record)
            self._adopt_winner(records)
            self._set_floor()
        self.store.failed.update(training_failures(self.records))
        if len(self.records) < len(previous):
            self.journal.truncate_to(self.records)

    def _fast_forward(self, step: int, wanted: int, records: list[Record]) -> None:
        proposals = self.proposer.propose(self._context(step, wanted), self.screen.check)
        self._check_reproduced(step, proposals[:wanted], records)

    def _check_reproduced(self, step: int, proposals: list[Proposal], records: list[Record]):
        produced = [[e.operation() for e in p.edits] for p in proposals]
        if produced != [r.edits for r in records]:
            raise UserError(
                f"cannot resume: the proposer does not reproduce step {step} "
                "(was the config or the code changed since the run started?)"
            )

    def _train_initial(self) -> Record:
        """The starting baseline's record, written; it gets the learners an accepted
        candidate ends up with. Raises BaselineFailed (after writing the failure)."""
        learners = self.plan.initial_learners()
        fields: dict[str, Any] = {
            "architecture": document_of(self.initial),
            "arch_hash": architecture_hash(self.initial),
        }
        # With screening, its learning curve is the first the screening learns from
        fractions = self.screening.full_fractions
        self.store.prefetch([(self.initial, learners)], fractions=fractions)
        trained = self.store.ensure(self.initial, learners)
        if isinstance(trained, Outcome):
            failure = self.recorder.baseline(trained.status, trained.reason, **fields)
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
            screening=self.screening.trace_of_full(self.initial, fields["arch_hash"], None),
            **self.recorder.seed_noise_fields(stats, pool, None),
            **fields,
        )
        self.journal.append(record)
        self.journal.save_best(record)
        return record

    def _context(self, step: int, proposals: int) -> ProposalContext:
        return proposal_context(
            self.config, self.evaluator, self.state, step, proposals,
            reach=self.screening.reach, mixture=self.target.view(self.state),
        )  # fmt: skip

    def _stage(self, screened: list[Candidate | Outcome]) -> dict[str, Screened]:
        """Multi-fidelity screening of the round's new candidates (none without it)."""
        candidates = [c for c in screened if isinstance(c, Candidate)]
        bar = self.baseline.stats.E_M - (self.gate.min_effect or 0.0)
        return self.screening.screen(candidates, bar)

    def _train_together(
        self, screened: list[Candidate | Outcome], staged: dict[str, Screened]
    ) -> dict[str, int]:
        """Train the decision learners of a batch's candidates at once (in parallel on a
        parallel executor), but not those screening stopped; returns the order they
        finished in, which is logged but never decides anything."""
        wants = [
            (c.architecture, self.plan.decision_learners(c.arch_hash in staged))
            for c in screened
            if isinstance(c, Candidate) and staged.get(c.arch_hash, NOT_SCREENED).stopped is None
        ]
        # In chunks of evaluator.learners: a survivor's first chunk goes on from its stages
        chunk = self.config.evaluator.learners
        fractions = self.screening.full_fractions
        finished = self.store.prefetch(wants, chunk=chunk, fractions=fractions)
        return {arch_hash: order for order, arch_hash in enumerate(dict.fromkeys(finished))}

    def _record(
        self,
        batch_start: int,
        index: int,
        proposal: Proposal,
        screened: Candidate | Outcome,
        completion: dict[str, int],
        staged: dict[str, Screened],
    ) -> Record:
        """A proposal's record: the outcome of the first stage that stopped it (refused,
        pruned or failed in screening, failed in training), or its judgement."""
        step = batch_start + index
        record = partial(self.recorder.proposal, step, batch_start, proposal, self.baseline)
        if isinstance(screened, Outcome):
            return record(screened.status, screened.reason)
        stage = staged.get(screened.arch_hash, NOT_SCREENED)
        if stage.screened:  # screened now, so trained now (a pruned one had no learners)
            screened = replace(screened, first_step=step)
        fields = candidate_fields(screened, step)
        if stage.stopped is not None:
            cost = self.store.bill(screened.arch_hash)
            return record(stage.stopped.status, stage.stopped.reason, screening=stage.trace,
                          cost=cost, **fields)  # fmt: skip
        judged = self._judged(step, screened, survived_screening=stage.screened)
        if isinstance(judged, Outcome):
            return record(judged.status, judged.reason, **fields)
        order = completion.get(screened.arch_hash)
        # Only a screened candidate's full training kept a curve (reused learners did not)
        trace = None
        if stage.screened:
            arch, arch_hash = screened.architecture, screened.arch_hash
            trace = self.screening.trace_of_full(arch, arch_hash, stage.trace)
        noise = seed_noise(self.records)
        return record(
            **self.recorder.judged_fields(screened, step, judged, self.baseline, order, noise),
            screening=trace,
            **fields,
        )

    def _judged(self, step: int, candidate: Candidate, survived_screening: bool):
        """The gate rounds of a candidate, or why it cannot have them: its training failed
        now, or it failed at an earlier step whose learners it would reuse."""
        failed_before = self.store.failed.get(candidate.arch_hash)
        if failed_before is not None and candidate.first_step != step:
            return failed(f"{failed_before} [from step {candidate.first_step}]")
        learners = self.plan.decision_learners(survived_screening)
        return self.judge.rounds(self.baseline, step, candidate.architecture, learners)

    def _set_floor(self) -> None:
        """gate.min_effect for the next round: fixed by the start, or (gate.floor_from:
        pooled) moving with the run's seed-noise model and its baseline."""
        self.gate.min_effect = noise_floor(self.config, self.records, self.baseline.stats)

    def _adopt_winner(self, records: list[Record]) -> None:
        winner = next((r for r in records if r.accepted), None)
        if winner is not None:
            self.state.adopt(winner, self.evaluator.parse)
            self.journal.save_best(winner)

    def _log(self, record: Record) -> None:
        self.state.observe(record)
        self.screening.observe(record)
        self.compute.charge(record.cost)
        self.journal.append(record)
        self.on_record(record)


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
