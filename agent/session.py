"""A run as a thing you can hold from Python: create or reopen its folder, lock it, search,
close it. The command line's `run` is a thin layer over this. Here the run is wired from
its config: the evaluator, the proposer, the executor, and the loop's strategies
(multi-fidelity screening from agent/fidelity/, continuous steps from agent/continuous/),
which plug into the loop through the interfaces it owns (search/strategies.py).

    with RunSession.start(config) as session:         # a new folder under runs/
        session.run()
    with RunSession.resume(folder, budget=80) as session:   # a stopped or killed run
        ...

Entering the `with` takes the run's lock (a second process cannot write the same folder);
leaving it releases the lock and stops the executor's workers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edas_agent.config import Config, dump_config, load_config
from edas_agent.continuous.steps import make_steps
from edas_agent.evaluators.base import Evaluator
from edas_agent.fidelity.strategy import make_screening
from edas_agent.proposers import Proposer, make_proposer, preflight
from edas_agent.proposers.explore import with_exploration
from edas_agent.record import CONFIG, Journal, Record, read_records
from edas_agent.search.loop import Search
from edas_agent.search.strategies import Strategies
from edas_agent.training.costs import LLMBudget, Spend
from edas_agent.training.door import build_evaluator, check_protocol, keep_files, offered_mutations
from edas_agent.training.executors import Executor, make_executor

Build = Callable[[Config], Evaluator]  # the run's evaluator from its config

# The strategies a run's config chooses between; each returns its "off" one when it is off
STRATEGIES = Strategies(screening=make_screening, steps=make_steps)

# What may change when a run is resumed: how far it goes, never what it searches.
RESUMABLE = ("budget", "llm.max_cost", "llm.max_calls", "max_train_hours", "max_train_tflop")


@dataclass
class RunSession:
    config: Config
    journal: Journal
    search: Search
    executor: Executor
    previous: list[Record] = field(default_factory=list)  # records of a resumed run

    @classmethod
    def start(
        cls, config: Config, build: Build = build_evaluator, proposer: Proposer | None = None
    ) -> RunSession:
        """A new run folder for `config`, whose evaluator `build` makes; the proposer is
        the config's unless given. The folder is created last, so bad data or settings
        leave no empty run behind."""
        evaluator, proposer, executor = _parts(config, build, proposer, [])
        journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
        try:
            search = build_search(config, evaluator, proposer, journal, executor)
        except BaseException:  # a strategy the evaluator cannot serve: leave no empty run
            shutil.rmtree(journal.folder, ignore_errors=True)
            executor.close()
            raise
        keep_files(evaluator, journal.folder)
        return cls(config, journal, search, executor)

    @classmethod
    def resume(
        cls,
        folder: Path,
        changes: dict[str, Any] | None = None,
        build: Build = build_evaluator,
        proposer: Proposer | None = None,
    ) -> RunSession:
        """Reopen a stopped or killed run with its own config; `changes` may set only the
        RESUMABLE keys (dotted, as on the command line)."""
        changes = {k: v for k, v in (changes or {}).items() if v is not None}
        if set(changes) - set(RESUMABLE):
            raise ValueError(f"a resumed run keeps its config; only {RESUMABLE} may change")
        previous = read_records(folder, drop_torn_tail=True)
        config = load_config(folder / CONFIG, changes)
        evaluator, proposer, executor = _parts(config, build, proposer, previous)
        keep_files(evaluator, folder)
        journal = Journal(folder)
        search = build_search(config, evaluator, proposer, journal, executor)
        return cls(config, journal, search, executor, previous)

    def run(self, on_record=lambda record: None) -> list[Record]:
        """Search until the budget is spent (see Search.run); the session must be open."""
        return self.search.run(on_record, previous=self.previous or None)

    def __enter__(self) -> RunSession:
        self.journal.lock()
        if self.previous:  # the resumed config (a new budget, say) is the run's config now
            (self.journal.folder / CONFIG).write_text(dump_config(self.config))
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.journal.unlock()
        finally:
            self.executor.close()


def _llm_budget(config: Config, previous: list[Record]) -> LLMBudget:
    budget = LLMBudget(config.llm)
    if previous:  # what the stopped run spent counts towards its caps
        budget.restore(Spend.of(r.llm for r in previous))
    return budget


def build_search(
    config: Config,
    evaluator: Evaluator,
    proposer: Proposer,
    journal: Journal,
    executor: Executor | None = None,
) -> Search:
    """The loop for `config`, writing to `journal`, with the strategies the config chooses."""
    return Search(config, evaluator, proposer, journal, STRATEGIES, executor)


def _parts(
    config: Config, build: Build, proposer: Proposer | None, previous: list[Record]
) -> tuple[Evaluator, Proposer, Executor]:
    if proposer is None and config.llm.prompts_a_model:
        # A missing key or an unreachable server is said before the data loads
        proposer = make_proposer(config.llm, config.seed, _llm_budget(config, previous), None)
        preflight(config.llm)
    evaluator = build(config)
    check_protocol(evaluator, "the evaluator built for the run is")
    if proposer is None:
        mutations = offered_mutations(evaluator, config.search.explore.lift_caps)
        proposer = make_proposer(config.llm, config.seed, _llm_budget(config, previous), mutations)
    proposer = with_exploration(proposer, config, evaluator)
    executor = make_executor(evaluator, config.executor)
    return evaluator, proposer, executor
