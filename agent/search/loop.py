"""The search loop: propose, check, screen, train, judge, rank, record, adopt; repeat.

    state = the starting baseline (or a stopped run's records)
    while proposals remain in the budget:
        batch      = proposer.propose(context(state))    # one or more proposals
        candidates = [check(p) for p in batch]            # a candidate, or why not
        screenings = screening.screen(candidates)         # multi-fidelity; none when off
        train the batch's surviving candidates together   # in parallel on Ray
        records    = rank([judge(c) for c in survivors])  # gate rounds; one winner at most
        record them; adopt the winner as the baseline

Edit checks (checks.py), gate rounds and ranking (judging.py, rounds.py, target.py), the
records (recorder.py) and the run's state (state.py) live beside this file. Multi-fidelity
screening (agent/fidelity/) and continuous steps (agent/continuous/) plug in through the
interfaces in strategies.py, chosen once from the config by edas_agent.session. Invalid
edits, failed training and failed LLM calls are records with a status, never exceptions
that end the run. Only a proposer that can never succeed (bad API key), a configured cap
on LLM calls or cost, or a stop request ends it, cleanly.
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
from edas_agent.errors import UserError, describe_validation_error
from edas_agent.evaluators.base import Evaluator, architecture_hash, document_of
from edas_agent.outcome import Outcome, failed
from edas_agent.proposers.base import Proposal, ProposalContext, Proposer
from edas_agent.proposers.edits import ProposedEdits
from edas_agent.record import Journal, Record, measured_selection, pooled_seed_noise
from edas_agent.search.checks import Candidate, EditChecks
from edas_agent.search.context import proposal_context
from edas_agent.search.judging import Judge, decision_floor, make_gate, noise_floor, outrank
from edas_agent.search.recorder import Recorder, candidate_fields
from edas_agent.search.state import Baseline, RunState, batches, training_failures
from edas_agent.search.strategies import NOT_SCREENED, ScreeningResult, Strategies
from edas_agent.training.compute import ComputeBudget
from edas_agent.training.costs import BudgetExhausted
from edas_agent.training.executors import Executor
from edas_agent.training.learners import LearnerStore

__all__ = ["BaselineFailed", "Search", "initial_architecture", "make_gate"]


class BaselineFailed(Exception):
    """The starting architecture could not be trained: there is nothing to search from."""


class Search:
    """A search, whole once built: its parts and strategies are made here, its state when
    `run` trains (or, resuming, reads) the starting baseline. Build one from a config with
    edas_agent.session.build_search, which chooses the strategies."""

    def __init__(
        self,
        config: Config,
        evaluator: Evaluator,
        proposer: Proposer,
        journal: Journal,
        strategies: Strategies,
        executor: Executor | None = None,
    ):
        self.config = config
        self.evaluator = evaluator
        self.proposer = proposer
        self.journal = journal
        self.executor = executor
        self.gate = make_gate(config)
        self.initial = initial_architecture(config, evaluator)
        self.store = LearnerStore(evaluator, journal.folder / "learners", executor)
        self.judge = Judge.for_run(config, self.gate, evaluator, self.store)
        self.plan, self.target = self.judge.plan, self.judge.target
        self.recorder = Recorder(config, evaluator, self.target)
        self.checks = EditChecks(evaluator)
        self.screening = strategies.screening(config, evaluator, self.store, self._progress)
        self.steps = strategies.steps(config, evaluator)
        self.compute = ComputeBudget(config.max_train_hours, config.max_train_tflop)
        self.records: list[Record] = []  # the run's, in order, as in trajectory.jsonl
        self.state: RunState | None = None  # from the starting baseline, once run() has it
        self.floor: float | None = None  # the gate's floor against the current baseline
        self.decision_floor: float | None = None  # ... before confirmation (decision_floor)
        self.stopped: str | None = None  # why the run ended before its budget, if it did
        self.stop_requested = False  # set by a signal handler: stop after the current batch
        self.on_progress: Callable[[str], None] = lambda text: None  # work inside a round
        self.on_record: Callable[[Record], None] = lambda record: None

    def run(
        self,
        on_record: Callable[[Record], None] | None = None,
        previous: list[Record] | None = None,
    ) -> list[Record]:
        """Search until the budget is spent; `previous` (a stopped run's records) resumes.
        Why it stopped early, if it did, is in .stopped."""
        if on_record is not None:
            self.on_record = on_record
        self._start(previous)
        step = len(self.run_state.proposals()) + 1
        while step <= self.config.budget and not self._should_stop():
            wanted = self._round_size(step)
            try:
                batch = self._propose(step, wanted)
            except BudgetExhausted as exc:
                self.stopped = str(exc)
                break
            batch = batch[:wanted]
            if batch[0].transcript is not None:
                self.journal.save_transcript(step, batch[0].transcript)
            state = self.run_state
            candidates = [
                self.checks.candidate(p, step + i, step, state) for i, p in enumerate(batch)
            ]
            screenings = self._screen(candidates)
            completion = self._train_together(candidates, screenings)
            records = outrank(
                [
                    self._record(step, i, proposal, candidate, completion, screenings)
                    for i, (proposal, candidate) in enumerate(zip(batch, candidates, strict=True))
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
        continuous = self.steps.propose(self.run_state, self.floor)
        if continuous is not None:
            return [continuous]
        return self.proposer.propose(self._context(step, wanted), self._check)

    @property
    def run_state(self) -> RunState:
        if self.state is None:
            raise RuntimeError("the search has not started: call run()")
        return self.state

    @property
    def baseline(self) -> Baseline:
        return self.run_state.baseline

    def _check(self, items: list[ProposedEdits]) -> list[str | None]:
        return self.checks.check(items, self.run_state)

    def _progress(self, text: str) -> None:
        self.on_progress(text)  # looked up when called: the display sets it after building

    def _round_size(self, step: int) -> int:
        return min(self.screening.proposals_per_round, self.config.budget - step + 1)

    def _should_stop(self) -> bool:
        if self.stop_requested:
            self.stopped = "stopped on request after the last finished step"
        else:
            self.stopped = self.compute.exhausted()
        return self.stopped is not None

    def _start(self, previous: list[Record] | None) -> None:
        """The run's state from its starting baseline: trained now, or a stopped run's."""
        if self.state is not None:
            raise RuntimeError("a Search runs once; build another for another run")
        start = self._train_initial() if not previous else previous[0]
        if start.event != "baseline" or not start.accepted or start.stats is None:
            raise UserError("cannot resume: the run has no trained starting baseline")
        self.state = RunState.starting_from(start, self.evaluator.parse, self.records)
        self._set_floor()
        self._observe(start)
        if previous:
            self._resume(previous)

    def _resume(self, previous: list[Record]) -> None:
        """The state an uninterrupted run would have after `previous`. Learners come from
        the store, so nothing finished is trained again; a proposer that replays
        deterministically (builtin, replay) is run through the recorded batches and must
        reproduce them. An unfinished last batch is dropped and done again."""
        for batch_start, records in batches(previous[1:]):
            continuous = self.steps.propose(self.run_state, self.floor)
            wanted = 1 if continuous else self._round_size(batch_start)
            if batch_start != len(self.run_state.proposals()) + 1 or len(records) < wanted:
                break  # cut short by the kill: do it again
            if continuous is not None:
                self._check_reproduced(batch_start, [continuous], records)
            elif self.proposer.replays_deterministically:
                self._fast_forward(batch_start, wanted, records)
            for record in records:
                self.run_state.observe(record)
                self._observe(record)
            self._adopt_winner(records)
            self._set_floor()
        self.store.failed.update(training_failures(self.records))
        if len(self.records) < len(previous):
            self.journal.truncate_to(self.records)

    def _fast_forward(self, step: int, wanted: int, records: list[Record]) -> None:
        proposals = self.proposer.propose(self._context(step, wanted), self._check)
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
            reference=self.recorder.seed_split(pool, self.plan.decision_learners()),
            **fields,
        )
        self.journal.append(record)
        self.journal.save_best(record)
        return record

    def _context(self, step: int, proposals: int) -> ProposalContext:
        return proposal_context(
            self.config, self.evaluator, self.run_state, step, proposals,
            reach=self.screening.reach, mixture=self.target.view(self.run_state),
        )  # fmt: skip

    def _screen(self, candidates: list[Candidate | Outcome]) -> dict[str, ScreeningResult]:
        """Multi-fidelity screening of the round's new candidates (none without it)."""
        valid = [c for c in candidates if isinstance(c, Candidate)]
        bar = self.baseline.stats.E_M - (self.floor or 0.0)
        return self.screening.screen(valid, bar)

    def _train_together(
        self, candidates: list[Candidate | Outcome], screenings: dict[str, ScreeningResult]
    ) -> dict[str, int]:
        """Train the decision learners of a batch's candidates at once (in parallel on a
        parallel executor), but not those screening stopped; returns the order they
        finished in, which is logged but never decides anything."""
        wants = [
            (c.architecture, self.plan.decision_learners(c.arch_hash in screenings))
            for c in candidates
            if isinstance(c, Candidate)
            and screenings.get(c.arch_hash, NOT_SCREENED).stopped is None
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
        candidate: Candidate | Outcome,
        completion: dict[str, int],
        screenings: dict[str, ScreeningResult],
    ) -> Record:
        """A proposal's record: the outcome of the first stage that stopped it (refused by
        the edit checks, pruned or failed in screening, failed in training), or its
        judgement."""
        step = batch_start + index
        record = partial(self.recorder.proposal, step, batch_start, proposal, self.baseline)
        if isinstance(candidate, Outcome):
            return record(candidate.status, candidate.reason)
        screening = screenings.get(candidate.arch_hash, NOT_SCREENED)
        if screening.was_screened:  # so trained now (a pruned one had no learners)
            candidate = replace(candidate, first_step=step)
        fields = candidate_fields(candidate, step)
        if screening.stopped is not None:
            cost = self.store.bill(candidate.arch_hash)
            return record(screening.stopped.status, screening.stopped.reason,
                          screening=screening.trace, cost=cost, **fields)  # fmt: skip
        judged = self._judged(step, candidate, survived_screening=screening.was_screened)
        if isinstance(judged, Outcome):
            return record(judged.status, judged.reason, **fields)
        order = completion.get(candidate.arch_hash)
        # Only a screened candidate's full training kept a curve (reused learners did not)
        trace = None
        if screening.was_screened:
            arch, arch_hash = candidate.architecture, candidate.arch_hash
            trace = self.screening.trace_of_full(arch, arch_hash, screening.trace)
        noise = pooled_seed_noise(self.records)
        selection = measured_selection(self.records, noise)
        return record(
            **self.recorder.judged_fields(
                candidate, step, judged, self.baseline, order, noise, selection
            ),
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
        return self.judge.rounds(self.baseline, step, candidate.architecture, learners,
                                 self.floor, self.decision_floor)  # fmt: skip

    def _set_floor(self) -> None:
        """The floor for the next round (gate.min_effect in the loss's units): fixed by the
        start, or (gate.floor_from: pooled) moving with the run's seed-noise model and its
        baseline; and (gate.selection_aware) before confirmation, net of the baseline's
        measured optimism."""
        self.floor = noise_floor(self.config, self.records, self.baseline.stats)
        self.decision_floor = decision_floor(
            self.config, self.records, self.baseline.stats, self.baseline.step, self.floor
        )

    def _adopt_winner(self, records: list[Record]) -> None:
        winner = next((r for r in records if r.accepted), None)
        if winner is not None:
            self.run_state.adopt(winner, self.evaluator.parse)
            self.journal.save_best(winner)

    def _log(self, record: Record) -> None:
        """A new record: into the state, the journal, and what learns from records."""
        self.run_state.observe(record)
        self.journal.append(record)
        self._observe(record)

    def _observe(self, record: Record) -> None:
        """What every part learns from a record, logged now or read back on resume."""
        self.screening.observe(record)
        self.compute.charge(record.cost)
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
