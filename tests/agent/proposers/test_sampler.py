"""The Optuna-backed proposer: whole architectures from a seeded sampler, told the gate's
outcomes; it replays and resumes like the builtin proposer."""

from __future__ import annotations

from pathlib import Path

import optuna

from edas_agent.analysis.replay import replay
from edas_agent.config import load_config
from edas_agent.record import read_records
from edas_agent.session import RunSession
from edas_agent.testing import NumpyEvaluator


def build(config):
    return NumpyEvaluator(seed=config.seed)


def settings(tmp_path: Path, budget: int, name: str = "optuna"):
    return load_config(None, {"budget": budget, "members": 10, "runs_dir": str(tmp_path),
                              "name": name, "llm.provider": "optuna"})  # fmt: skip


def test_the_sampler_is_told_every_outcome_and_a_resumed_run_reproduces_it(tmp_path: Path):
    with RunSession.start(settings(tmp_path, 10, "whole"), build) as session:
        whole = session.run()
        study = session.search.proposer.study
    assert [r.llm.provider for r in whole[1:]] == ["optuna"] * 10
    assert all(r.edits[0]["path"] == "" for r in whole[1:])  # a whole architecture each
    told = [t for t in study.trials if t.state != optuna.trial.TrialState.RUNNING]
    assert len(told) >= 10  # the start and every step but the last, failed draws besides
    judged = [r for r in whole[1:-1] if r.stats is not None]
    values = {t.value for t in told if t.state == optuna.trial.TrialState.COMPLETE}
    assert {r.carried()[0].E_M for r in judged} <= values
    assert replay(session.journal.folder).ok
    with RunSession.start(settings(tmp_path, 5, "stopped"), build) as session:
        session.run()
    folder = session.journal.folder
    with RunSession.resume(folder, {"budget": 10}, build) as session:
        resumed = session.run()
    assert [r.edits for r in resumed] == [r.edits for r in whole]
    assert [r.status for r in read_records(folder)] == [r.status for r in whole]


def test_nsga2_is_told_the_error_and_the_flops_of_each_candidate(fast_config):
    overrides = {"runs_dir": fast_config.runs_dir, "data.path": fast_config.evaluator.data.path,
                 "data.target": "label", "evaluator.device": "cpu", "budget": 4,
                 "llm.provider": "optuna", "llm.model": "nsga2"}  # fmt: skip
    with RunSession.start(load_config(None, overrides)) as session:
        records = session.run()
        study = session.search.proposer.study
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.directions) == 2 and complete
    judged = {(r.carried()[0].E_M, float(r.flops)) for r in records[:-1] if r.stats is not None}
    assert {tuple(t.values) for t in complete} <= judged
    assert records[0].flops and (records[0].stats.E_M, float(records[0].flops)) in judged


def test_a_draw_the_check_refuses_is_an_infeasible_trial_tpe_learns_to_avoid():
    from edas_agent.proposers.sampler import OptunaProposer

    from .test_builtin import context

    def long_training(answers):  # refuse what trains more than 5 epochs
        return ["too long" if a.edits[0].value["training"]["epochs"] > 5 else None
                for a in answers]  # fmt: skip

    proposer = OptunaProposer(0, "tpe")
    for step in range(1, 31):
        proposer.propose(context(0.5, step=step), long_training)
    trials = proposer.study.trials
    refused = [t for t in trials if t.constraints.get("refused") == 1.0]
    assert refused and all(t.state == optuna.trial.TrialState.COMPLETE for t in refused)
    assert all(t.params["/training/epochs"] > 5 for t in refused)
    first, last = trials[1:21], trials[-20:]  # after the start
    share = [sum(t in refused for t in part) / len(part) for part in (first, last)]
    assert share[1] < share[0]  # it draws where the check accepts more often as it learns


def test_a_sampler_without_constraints_is_told_a_refused_draw_failed_not_measured():
    from edas_agent.proposers.sampler import OptunaProposer

    from .test_builtin import context

    # Only TPE learns from constraints; CMA-ES would take a stand-in value as measured, and
    # every sampler but TPE takes the failed path (random needs no extra package)
    proposer = OptunaProposer(0, "random")
    proposer.propose(context(0.5, step=1), lambda answers: ["refused"] * len(answers))
    refused = proposer.study.trials[1:]  # after the start
    assert refused and all(t.state == optuna.trial.TrialState.FAIL for t in refused)
