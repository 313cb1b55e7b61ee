from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edas_agent.analysis.ensemble import ENSEMBLE, ensemble
from edas_agent.analysis.verify_mixture import MIXTURE_FIRST, VERIFY_MIXTURE, verify_mixture
from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
from edas_agent.record import read_records
from edas_agent.theory.gate import statistics
from tests.agent.cli.test_cli import invoke, only_run_folder


@pytest.fixture
def run_folder(searched) -> Path:
    return searched(6, proposer_seed=1)


def test_ensemble_of_a_run(run_folder: Path):
    records = read_records(run_folder)
    evaluated = {r.arch_hash for r in records if r.stats is not None and r.status != "failed"}
    result = ensemble(run_folder, members=8)
    assert result.candidates == len(evaluated) >= 3
    assert json.loads((run_folder / ENSEMBLE).read_text())["members"] == 8

    best, alone = result.mixture, result.homogeneous
    assert best.members == alone.members == 8 and alone.architectures == 1
    assert best.val <= alone.val + 1e-12  # one architecture is one of the mixtures
    assert best.val == pytest.approx(min(result.optimisers.values()))
    # The homogeneous prediction is the gate's E_M from every stored learner.
    (member,) = alone.composition
    pool = np.load(run_folder / "learners" / f"{member.arch_hash}.npz")
    y_val = TabularEvaluator(*_data(run_folder)).y_val
    assert alone.val == pytest.approx(statistics(pool["val"], y_val, 8).E_M, abs=1e-12)
    # Every ensemble carries the seed-noise interval of its realised error, around it
    for choice in (best, alone, *result.front):
        for value, interval in (
            (choice.val, choice.val_interval),
            (choice.test, choice.test_interval),
        ):
            assert interval.lower < value < interval.upper and interval.members == choice.members

    threshold = best.val * (1 + result.tolerance)
    for pruned in (result.pruned.members, result.pruned.architectures, result.pruned.flops):
        assert pruned.val <= threshold and pruned.members <= 8
    assert result.pruned.members.members <= best.members
    costs = [choice.flops for choice in result.front]
    errors = [choice.val for choice in result.front]
    assert costs == sorted(costs) and errors == sorted(errors, reverse=True)
    assert len(set(errors)) == len(errors)


def _data(folder: Path):
    from edas_agent.config import load_config

    config = load_config(folder / "config.yaml", {})
    return config.evaluator.data, config.evaluator, config.seed


def test_limits_on_architectures_and_flops(run_folder: Path):
    one = ensemble(run_folder, members=8, max_architectures=1)
    assert one.mixture.architectures == 1
    assert one.mixture.val == pytest.approx(one.homogeneous.val)
    cheapest = min(m.flops for choice in one.front for m in choice.composition)
    tight = ensemble(run_folder, members=8, max_flops=3 * cheapest)
    assert tight.mixture.flops <= 3 * cheapest and tight.mixture.members <= 3


def test_min_learners_keeps_only_architectures_with_that_many(run_folder: Path):
    every = ensemble(run_folder, members=8)
    confirmed = ensemble(run_folder, members=8, min_learners=4)
    pools = {p.stem: len(np.load(p)["val"]) for p in (run_folder / "learners").glob("*.npz")}
    assert confirmed.candidates == sum(k >= 4 for k in pools.values()) < every.candidates
    assert confirmed.min_learners == 4
    for choice in (confirmed.mixture, confirmed.homogeneous, *confirmed.front):
        assert all(pools[m.arch_hash] >= 4 for m in choice.composition)


def test_verify_mixture_trains_fresh_members_once(run_folder: Path):
    ensemble(run_folder, members=4)
    trained: list[tuple[str, int]] = []
    result = verify_mixture(run_folder, on_learner=lambda h, j: trained.append((h, j)))
    assert all(j >= MIXTURE_FIRST for _, j in trained)
    mixture = result["ensembles"]["mixture"]
    slots = sum(member["members"] for member in mixture["composition"])
    assert slots == 4 and len({j for _, j in trained}) >= 4  # every member its own seed
    for row in result["ensembles"].values():
        for split in ("val", "test"):
            assert abs(row[split]["relative_error"]) < 0.2
            assert row[split]["covered"] in (True, False)
    assert (run_folder / VERIFY_MIXTURE).is_file()
    again: list[tuple[str, int]] = []
    verify_mixture(run_folder, on_learner=lambda h, j: again.append((h, j)))
    assert again == []  # every member is saved in the run folder


def test_ensemble_command(monkeypatch, capsys, table_csv, tmp_path):
    args = ["--data", str(table_csv), "--target", "label", "--runs-dir", str(tmp_path / "runs")]
    invoke(monkeypatch, capsys, "run", "--budget", "3", *args)
    folder = only_run_folder(tmp_path)
    code, out, _ = invoke(monkeypatch, capsys, "ensemble", str(folder), "--members", "6")
    assert code == 0 and "best mixture" in out and "Cost front" in out
    code, out, _ = invoke(monkeypatch, capsys, "ensemble", str(folder), "--json")
    assert code == 0 and json.loads(out)["members"] == 50  # the run's M
    code, out, _ = invoke(monkeypatch, capsys, "verify", str(folder), "--mixture", "--members", "3")
    assert code == 0 and "fresh seeds" in out
    assert json.loads((folder / VERIFY_MIXTURE).read_text())["members"] == 3
    code, _, err = invoke(monkeypatch, capsys, "ensemble", str(tmp_path))
    assert code == 2 and "not a run folder" in err
    code, _, err = invoke(monkeypatch, capsys, "ensemble", str(folder), "--max-flops", "1")
    assert code == 2 and "--max-flops" in err
