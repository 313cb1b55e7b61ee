"""search.continuous in the loop: steps right after acceptances, replayed and resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import load_config
from edas_agent.continuous.steps import PROVIDER
from edas_agent.record import read_records
from edas_agent.session import RunSession
from edas_agent.testing import NumpyEvaluator


def build(config):
    return NumpyEvaluator(seed=config.seed, noise=0.5)


def settings(tmp_path: Path, budget: int, name: str):
    start = tmp_path / "start.json"  # a poor start, so that steps are accepted
    start.write_text(json.dumps({"l2": 300.0, "features": 0.4, "rows": 0.5}))
    return load_config(None, {"budget": budget, "members": 20, "runs_dir": str(tmp_path),
                              "name": name, "search.continuous.enabled": True,
                              "baseline": str(start)})  # fmt: skip


def test_continuous_steps_follow_acceptances_and_replay_and_resume(tmp_path: Path):
    with RunSession.start(settings(tmp_path, 30, "whole"), build) as session:
        whole = session.run()
    folder = session.journal.folder
    proposals = [r for r in whole if r.event == "proposal"]
    steps = [i for i, r in enumerate(proposals) if r.llm.provider == PROVIDER]
    assert steps, "no continuous step in 30 proposals"
    assert all(i == 0 or proposals[i - 1].accepted for i in steps)
    report = replay(folder)
    assert report.ok and report.continuous == len(steps)
    with RunSession.start(settings(tmp_path, 12, "stopped"), build) as stopped:
        stopped.run()
    with RunSession.resume(stopped.journal.folder, {"budget": 30}, build) as resumed:
        again = resumed.run()
    assert [r.edits for r in again] == [r.edits for r in whole]

    logged = folder / "llm" / f"step-{proposals[steps[0]].step:04d}.json"
    tampered = json.loads(logged.read_text())
    tampered["optimum"] = {k: v * 0.5 for k, v in tampered["optimum"].items()}
    logged.write_text(json.dumps(tampered))
    assert any("continuous optimum" in m for m in replay(folder).mismatches)
    assert len(read_records(folder)) == len(whole)


def tabular_settings(fast_config, budget: int, name: str):
    continuous = fast_config.search.continuous.model_copy(update={"enabled": True})
    search = fast_config.search.model_copy(update={"continuous": continuous})
    return fast_config.model_copy(update={"budget": budget, "name": name, "search": search})


def test_bagging_closed_form_measures_the_baseline_then_proposes_f_star(fast_config):
    from edas_agent.continuous.bagging_steps import MEASURE, OPTIMUM, BaggingStep
    from edas_agent.continuous.tuning import NOMINAL

    with RunSession.start(tabular_settings(fast_config, 8, "whole")) as session:
        whole = session.run()
    folder = session.journal.folder
    proposals = [r for r in whole if r.event == "proposal"]
    first, second = proposals[0], proposals[1]
    # From the start (all fields): the ladder's next fractions, one proposal each
    assert first.llm.model == MEASURE and first.edits[0]["path"] == "/bagging/fraction"
    assert first.edits[0]["value"] == pytest.approx(NOMINAL[1], abs=0.1)
    step = BaggingStep.model_validate_json(
        (folder / "llm" / f"step-{first.step:04d}.json").read_text()
    )
    assert [p.fraction for p in step.points] == [1.0] and step.purpose == "measure"
    if not first.accepted:
        assert second.llm.model in (MEASURE, OPTIMUM) or second.llm.provider != PROVIDER
    closed_form = [r for r in proposals if r.llm.model in (MEASURE, OPTIMUM)]
    report = replay(folder)
    assert report.ok and report.continuous >= len(closed_form) >= 2
    with RunSession.start(tabular_settings(fast_config, 3, "stopped")) as stopped:
        stopped.run()
    with RunSession.resume(stopped.journal.folder, {"budget": 8}) as resumed:
        again = resumed.run()
    assert [r.edits for r in again] == [r.edits for r in whole]

    logged = folder / "llm" / f"step-{first.step:04d}.json"
    tampered = json.loads(logged.read_text())
    tampered["fraction"] = 0.3
    logged.write_text(json.dumps(tampered))
    assert any("bagging step re-derives" in m for m in replay(folder).mismatches)
