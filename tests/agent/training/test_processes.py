"""The process executor: a batch side by side in worker processes, the same results as
the local executor, and failures that stay with their own candidate."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edas_agent.config import Config, ExecutorSettings, dump_config, load_config
from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
from edas_agent.evaluators.tabular.mutations import MUTATIONS
from edas_agent.outcome import Outcome
from edas_agent.proposers.builtin import BuiltinProposer
from edas_agent.record import Journal, read_records
from edas_agent.session import RunSession, build_search
from edas_agent.training.executors import LocalExecutor, TrainRequest, make_executor
from edas_agent.training.processes import ProcessExecutor, WorkersUnavailable, _train_in_worker

TIMINGS = {"time": True, "cost": True, "completion": True,
           "rounds": {"__all__": {"cost": True}}, "reason": True}  # fmt: skip


@pytest.fixture
def one_thread():
    """Workers run torch on one thread; the driver must too for bit-equal float sums."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def evaluator_of(config: Config) -> TabularEvaluator:
    settings = config.evaluator.model_copy(update={"threads": 1})
    return TabularEvaluator(settings.data, settings, config.seed)


@pytest.mark.usefixtures("one_thread")
def test_a_batch_in_worker_processes_gives_what_this_process_gives(fast_config: Config):
    evaluator = evaluator_of(fast_config)
    requests = [TrainRequest(evaluator.parse({"tower": {"widths": [w]}}), 2, 0) for w in (8, 16)]
    requests.append(TrainRequest(requests[0].architecture, 1, 2))  # a later learner
    executor = ProcessExecutor(evaluator, workers=2)
    remote = dict(executor.run(requests))
    assert executor.pool is not None  # the batch did go to the workers
    executor.close()
    local = dict(LocalExecutor(evaluator).run(requests))
    for i in range(len(requests)):
        np.testing.assert_array_equal(remote[i].val_predictions, local[i].val_predictions)
        np.testing.assert_array_equal(remote[i].test_predictions, local[i].test_predictions)


def test_a_single_request_trains_in_this_process(fast_config: Config):
    evaluator = evaluator_of(fast_config)
    executor = ProcessExecutor(evaluator, workers=2)
    [(index, result)] = executor.run([TrainRequest(evaluator.default_architecture(), 2, 0)])
    assert index == 0 and result.val_predictions.shape[0] == 2
    assert executor.pool is None  # no worker was started for it


def failing_task(document, learners, first, fractions=None, resume=None):
    """Raises for dropout 0.3 and kills its worker for dropout 0.2."""
    dropout = document["tower"]["dropout"]
    if dropout == 0.3:
        raise CandidateFailed("learner 0: boom inside the worker")
    if dropout == 0.2:
        os._exit(1)
    return _train_in_worker(document, learners, first, fractions, resume)


def test_a_raising_task_and_a_dead_worker_fail_only_their_candidates(fast_config: Config):
    evaluator = evaluator_of(fast_config)
    executor = ProcessExecutor(evaluator, workers=2, task=failing_task)
    requests = [
        TrainRequest(evaluator.parse({"tower": {"dropout": d}}), 2, 0) for d in (0.1, 0.2, 0.3)
    ]
    results = dict(executor.run(requests))
    # A dead worker breaks the pool for every request in it: the others are trained again
    assert results[0].val_predictions.shape[0] == 2
    assert results[1] == Outcome("failed", "worker lost: its process died")
    assert results[2] == Outcome("failed", "learner 0: boom inside the worker")
    again = dict(executor.run(requests[:1] * 2))  # the executor goes on with a fresh pool
    assert all(r.val_predictions.shape[0] == 2 for r in again.values())
    executor.close()


class Unbuildable:
    """A shipment no worker can build (as a worker without the evaluator's package)."""

    def build(self):
        raise ImportError("no module named 'gone'")


def test_workers_that_cannot_start_stop_the_command_instead_of_failing_candidates(
    fast_config: Config,
):
    evaluator = evaluator_of(fast_config)
    executor = ProcessExecutor(evaluator, workers=2)
    executor.shipment = Unbuildable()
    requests = [TrainRequest(evaluator.default_architecture(), 1, first) for first in (0, 1)]
    with pytest.raises(WorkersUnavailable, match="cannot start"):
        list(executor.run(requests))
    assert executor.pool is None


def search(config: Config, evaluator: TabularEvaluator, executor) -> Path:
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    proposer = BuiltinProposer(config.seed, MUTATIONS)
    build_search(config, evaluator, proposer, journal, executor).run()
    return journal.folder


def local_and_in_processes(config: Config) -> list[list[dict]]:
    """The records of the same search run locally and on two worker processes."""
    runs = []
    for kind in ("local", "processes"):
        changed = config.model_copy(
            update={"name": kind, "executor": ExecutorSettings(kind=kind, workers=2),
                    "llm": config.llm.model_copy(update={"proposals_per_round": 2})}
        )  # fmt: skip
        evaluator = evaluator_of(changed)
        executor = make_executor(evaluator, changed.executor)
        folder = search(changed, evaluator, executor)
        executor.close()
        runs.append([r.model_dump(exclude=TIMINGS) for r in read_records(folder)])
    return runs


@pytest.mark.usefixtures("one_thread")
def test_a_run_with_rounds_on_worker_processes_equals_a_local_run(fast_config: Config):
    local, in_processes = local_and_in_processes(fast_config)
    assert in_processes == local
    assert [r["round"] for r in in_processes[1:]] == [1, 1, 3, 3, 5, 5]


@pytest.mark.usefixtures("one_thread")
def test_screening_stages_in_worker_processes_equal_local_ones(fast_config: Config):
    """Stages travel too: their paused training state comes back from the workers."""
    screening = fast_config.screening.model_copy(update={"enabled": True, "proposals": 6})
    config = fast_config.model_copy(update={"budget": 10, "screening": screening})
    local, in_processes = local_and_in_processes(config)
    assert in_processes == local
    assert sum(r["status"] == "pruned" for r in in_processes) >= 3


# A plugin module a user would write: worker processes (and Ray workers) rebuild it
PLUGIN = """
import numpy as np
from pydantic import BaseModel, Field
from edas_agent import FunctionEvaluator

class Knob(BaseModel):
    scale: float = Field(1.0, ge=0.1, le=2.0)

def make(seed, rows=30):
    y_val, y_test = np.linspace(0, 1, rows), np.linspace(1, 0, rows)
    def train(knob, learner_seed):
        noise = np.random.default_rng(learner_seed).normal(size=(2, rows))
        return y_val + knob.scale * noise[0], y_test + knob.scale * noise[1]
    return FunctionEvaluator(Knob, train, y_val, y_test, task="regression", seed=seed)
"""


def proposal_statuses(changes: dict) -> list[str]:
    """The statuses of a run's proposals, the run started from `changes` to the defaults."""
    with RunSession.start(load_config(None, changes)) as session:
        session.run()
        folder = session.journal.folder
    return [r.status for r in read_records(folder) if r.event == "proposal"]


def driver_only_plugin(monkeypatch) -> str:
    """PLUGIN as a module importable in this process only (a package installed on the
    driver alone): its `evaluator.plugin` name."""
    import sys
    import types

    module = types.ModuleType("driver_only_plugin")
    exec(PLUGIN, module.__dict__)
    monkeypatch.setitem(sys.modules, "driver_only_plugin", module)
    return "driver_only_plugin:make"


def test_a_plugin_is_rebuilt_in_the_workers_and_one_they_cannot_build_stops_the_start(
    tmp_path, monkeypatch
):
    (tmp_path / "process_plugin.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)  # the plugin's module lives here, as a user's would
    monkeypatch.syspath_prepend(str(tmp_path))
    changes = {"evaluator.plugin": "process_plugin:make", "executor.kind": "processes",
               "executor.workers": 2, "llm.proposals_per_round": 3, "budget": 3,
               "runs_dir": str(tmp_path / "runs")}  # fmt: skip
    statuses = proposal_statuses(changes)
    assert len(statuses) == 3 and "failed" not in statuses, statuses
    changes["evaluator.plugin"] = driver_only_plugin(monkeypatch)
    with pytest.raises(RuntimeError, match="worker process cannot start or rebuild the evaluator"):
        RunSession.start(load_config(None, changes))
