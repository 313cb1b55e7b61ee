"""The Ray executor: same results as the local one, faults become failed candidates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from edas_agent.analysis.verify import verify
from edas_agent.config import Config, dump_config
from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
from edas_agent.evaluators.tabular.mutations import MUTATIONS
from edas_agent.outcome import Outcome
from edas_agent.proposers.builtin import BuiltinProposer
from edas_agent.record import Journal, read_records
from edas_agent.session import build_search
from edas_agent.training.executors import (
    ExecutorSettings,
    LocalExecutor,
    RayExecutor,
    TrainRequest,
    _train_remote,
)
from tests.agent.training.test_processes import (  # a plugin workers rebuild
    PLUGIN,
    driver_only_plugin,
    proposal_statuses,
)

TIMINGS = {
    "time": True,
    "cost": True,
    "completion": True,
    "rounds": {"__all__": {"cost": True}},
    "reason": True,  # carries no timing, but compared through the rounds anyway
}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def search(config: Config, executor) -> Path:
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    proposer = BuiltinProposer(config.seed, MUTATIONS)
    build_search(config, evaluator, proposer, journal, executor(evaluator)).run()
    return journal.folder


def two_per_round(config: Config, kind: str, name: str) -> Config:
    # Ray workers run torch on one thread; the driver must too for bit-equal float sums
    # (threaded matmuls may sum in another order, and verify's results are compared exactly).
    return config.model_copy(
        update={
            "budget": 6,
            "name": name,
            "llm": config.llm.model_copy(update={"proposals_per_round": 2}),
            "executor": ExecutorSettings(kind=kind),
            "evaluator": config.evaluator.model_copy(update={"threads": 1}),
        }
    )


@pytest.fixture
def restore_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("restore_threads")
def test_a_ray_run_equals_a_local_run_and_so_does_verify(fast_config: Config):
    local_config, ray_config = (two_per_round(fast_config, k, k) for k in ("local", "ray"))
    local = search(local_config, LocalExecutor)
    remote = search(ray_config, lambda e: RayExecutor(e, ray_config.executor))
    strip = lambda folder: [r.model_dump(exclude=TIMINGS) for r in read_records(folder)]  # noqa: E731
    assert strip(remote) == strip(local)
    assert [r.round for r in read_records(remote)[1:]] == [1, 1, 3, 3, 5, 5]
    # verify reads the run's config: the Ray run's members are trained as Ray tasks.
    verified = [verify(folder, members=5, steps="accepted") for folder in (local, remote)]
    assert json.dumps(verified[0]["architectures"]) == json.dumps(verified[1]["architectures"])


@pytest.mark.usefixtures("restore_threads")
def test_a_screening_run_on_ray_equals_a_local_one(fast_config: Config):
    """Stages are Ray tasks too (screening's training requests carry their fractions)."""
    configs = []
    for kind in ("local", "ray"):
        config = two_per_round(fast_config, kind, f"screen-{kind}")
        screening = config.screening.model_copy(update={"enabled": True, "proposals": 6})
        configs.append(config.model_copy(update={"budget": 12, "screening": screening}))
    local = search(configs[0], LocalExecutor)
    remote = search(configs[1], lambda e: RayExecutor(e, configs[1].executor))
    strip = lambda folder: [r.model_dump(exclude=TIMINGS) for r in read_records(folder)]  # noqa: E731
    assert strip(remote) == strip(local)
    assert sum(r.status == "pruned" for r in read_records(remote)) >= 6


def failing_task(shipment, document, learners, first, fractions=None, resume=None):
    """A task that raises for dropout 0.3 and kills its worker for dropout 0.2."""
    dropout = document["tower"]["dropout"]
    if dropout == 0.3:
        raise CandidateFailed("learner 0: boom inside the task")
    if dropout == 0.2:
        os._exit(1)
    return _train_remote(shipment, document, learners, first, fractions, resume)


def test_a_raising_task_and_a_dead_worker_fail_only_their_candidates(fast_config: Config):
    settings = fast_config.evaluator
    evaluator = TabularEvaluator(settings.data, settings, fast_config.seed)
    executor = RayExecutor(evaluator, ExecutorSettings(kind="ray"), task=failing_task)
    requests = [
        TrainRequest(evaluator.parse({"tower": {"dropout": d}}), 2, 0) for d in (0.1, 0.2, 0.3)
    ]
    results = dict(executor.run(requests))
    assert results[0].val_predictions.shape[0] == 2
    assert results[1].status == "failed" and "worker" in results[1].reason.lower()
    assert results[2] == Outcome("failed", "learner 0: boom inside the task")
    executor.close()
    assert ray.is_initialized()  # closing an executor leaves a cluster it joined running


def test_a_search_survives_failing_tasks(fast_config: Config):
    config = fast_config.model_copy(update={"budget": 8, "executor": ExecutorSettings(kind="ray")})
    folder = search(config, lambda e: RayExecutor(e, config.executor, task=failing_task))
    records = read_records(folder)
    assert len(records) == 9
    failed = [r for r in records if r.status == "failed"]
    assert failed and all("boom" in r.reason or "worker" in r.reason.lower() for r in failed)


def test_a_plugin_is_rebuilt_from_the_config_on_ray_workers(tmp_path, monkeypatch):
    (tmp_path / "ray_plugin.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)  # the plugin's module lives here, as a user's would
    changes = {"evaluator.plugin": "ray_plugin:make", "executor.kind": "ray", "budget": 3,
               "runs_dir": str(tmp_path / "runs")}  # fmt: skip
    statuses = proposal_statuses(changes)
    assert len(statuses) == 3 and "failed" not in statuses, statuses


def test_a_plugin_the_workers_cannot_import_stops_the_run_at_the_start(tmp_path, monkeypatch):
    from edas_agent.config import load_config
    from edas_agent.session import RunSession

    plugin = driver_only_plugin(monkeypatch)
    monkeypatch.chdir(tmp_path)
    changes = {"evaluator.plugin": plugin, "executor.kind": "ray",
               "runs_dir": str(tmp_path / "runs")}  # fmt: skip
    with pytest.raises(RuntimeError, match=r"cannot rebuild the evaluator.*driver_only_plugin"):
        RunSession.start(load_config(None, changes))
    assert not (tmp_path / "runs").exists()  # no run folder left behind
