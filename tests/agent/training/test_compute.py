"""Training compute in records, and the caps that stop a run (max_train_hours and
max_train_tflop), through the loop with the numpy test double (it reports its FLOPs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import load_config
from edas_agent.errors import UserError
from edas_agent.record import Cost
from edas_agent.session import RunSession
from edas_agent.testing import NumpyEvaluator, ScriptedProposer, proposal
from edas_agent.training.compute import ComputeBudget


def script(n: int) -> ScriptedProposer:
    return ScriptedProposer(
        [proposal({"op": "replace", "path": "/l2", "value": 2.0 ** (i + 1)}) for i in range(n)]
    )


def build(config):
    return NumpyEvaluator(seed=config.seed)


def test_a_flop_cap_stops_the_run_and_a_resume_may_raise_it(tmp_path: Path):
    config = load_config(None, {"budget": 20, "members": 10, "runs_dir": str(tmp_path)})
    with RunSession.start(config, build, script(20)) as session:
        records = session.run()
    start = records[0].cost.train_flops
    assert start > 0 and len(records) == 21  # no cap: the whole budget
    per_step = records[1].cost.train_flops
    cap = (start + 2.5 * per_step) / 1e12  # reached during the third proposal
    capped = config.model_copy(update={"max_train_tflop": cap, "name": "capped"})
    with RunSession.start(capped, build, script(20)) as session:
        records = session.run()
        stopped = session.search.stopped
    assert len(records) == 4 and "max_train_tflop" in stopped
    folder = session.journal.folder
    raised = {"max_train_tflop": 2 * cap}
    with RunSession.resume(folder, raised, build, script(20)) as session:
        records = session.run()
    assert 4 < len(records) < 21 and "max_train_tflop" in session.search.stopped
    assert sum(r.cost.train_flops for r in records) >= 2 * cap * 1e12
    assert replay(folder).ok


def test_the_hours_cap_and_a_flop_cap_without_reported_flops():
    budget = ComputeBudget(max_train_hours=1.0, max_train_tflop=None)
    budget.charge(Cost(learners_trained=2, train_seconds=1800))
    assert budget.exhausted() is None
    budget.charge(Cost(learners_trained=2, train_seconds=1800))
    assert budget.exhausted() == "training took 1 h, reaching max_train_hours (1)"
    silent = ComputeBudget(max_train_hours=None, max_train_tflop=1.0)
    silent.charge(Cost())  # nothing trained: nothing to report
    with pytest.raises(UserError, match="reports training FLOPs"):
        silent.charge(Cost(learners_trained=2, train_seconds=1.0))
