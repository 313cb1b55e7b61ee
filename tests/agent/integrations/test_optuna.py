"""A run exported into an Optuna storage, loaded back with Optuna's own API."""

from __future__ import annotations

from pathlib import Path

import optuna

from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.integrations.optuna import export_run
from edas_agent.record import read_records
from tests.agent.cli.test_cli import invoke


def test_an_exported_run_loads_back_as_a_study_and_a_second_export_adds_nothing(
    searched, tmp_path: Path, monkeypatch, capsys
):
    folder = searched(6, proposer_seed=0)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    code, out, _ = invoke(monkeypatch, capsys, "export", str(folder), "--optuna-storage", storage)
    assert code == 0 and "7 trials added" in out
    study = optuna.load_study(study_name=folder.name, storage=storage)
    records = read_records(folder)
    assert [t.user_attrs["step"] for t in study.trials] == [r.step for r in records]
    judged = [r for r in records if r.predicted_error() is not None]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.values[0] for t in complete] == [r.predicted_error() for r in judged]
    assert study.metric_names == ["predicted ensemble error", "forward FLOPs per example"]
    assert complete[0].params["/training/lr"] == records[0].architecture["training"]["lr"]
    assert study.best_trials  # the front of error against FLOPs
    name, added = export_run(folder, storage, Architecture.model_json_schema())
    assert (name, added) == (folder.name, 0)
