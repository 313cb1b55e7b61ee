from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from edas_agent.analysis.calibrate import calibrate, cohens_kappa
from edas_agent.analysis.verify import choose_records, ensemble_sizes, realised_error, verify
from edas_agent.config import Config
from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
from edas_agent.record import read_records
from edas_agent.training.learners import LearnerStore


@pytest.fixture
def run_folder(searched) -> Path:
    return searched(4, proposer_seed=1)


def test_ensemble_sizes():
    assert ensemble_sizes(16) == [1, 2, 4, 8, 16]
    assert ensemble_sizes(50) == [1, 2, 4, 8, 16, 32, 50]
    assert ensemble_sizes(2) == [1, 2]


def test_realised_error_of_all_members_is_the_ensemble_error():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p = rng.random((4, 100))
    assert realised_error(p, y, 4, rng) == pytest.approx(np.mean((p.mean(0) - y) ** 2))
    single = realised_error(p, y, 1, np.random.default_rng(1))
    assert min(np.mean((p - y) ** 2, axis=1)) <= single <= max(np.mean((p - y) ** 2, axis=1))


def test_verify_reuses_the_runs_learners_and_resumes(run_folder: Path, monkeypatch):
    trained = []
    result = verify(
        run_folder, members=6, steps="accepted", on_learner=lambda h, j: trained.append(j)
    )
    records = choose_records(read_records(run_folder), "accepted")
    # Learners the run already trained (the decision and confirmation ones) are members 1..k.
    for record in records:
        pool = np.load(run_folder / "learners" / f"{record.arch_hash}.npz")
        assert pool["val"].shape[0] == 6
    assert all(j >= 2 for j in trained)
    saved = json.loads((run_folder / "verify.json").read_text())
    assert saved["members"] == 6 and saved["sizes"] == [1, 2, 4, 6]
    entry = next(iter(result["architectures"].values()))
    assert set(entry["relative_error"]) == {"val", "test"}
    assert abs(entry["relative_error"]["val"][6]) < 0.2
    # Every interval says which side it missed on, and the coverage counts add up
    for split in ("val", "test"):
        counted = result["coverage"][split]
        assert counted["covered"] + counted["above"] + counted["below"] == counted["of"]
    # A second verify trains nothing: every member is cached in the run folder.
    again = []
    verify(run_folder, members=6, steps="accepted", on_learner=lambda h, j: again.append(j))
    assert again == []


@pytest.mark.parametrize("fuse", ["off", "same_shapes"])
def test_an_interrupted_verify_keeps_finished_members(run_folder: Path, monkeypatch, fuse):
    """One at a time, every finished chunk of members is kept; fused, every finished group
    (evaluator.fuse_learners members at most)."""
    from edas_agent.analysis.verify import _CHUNK
    from edas_agent.evaluators.tabular import evaluator as evaluator_module

    _set_in_config(run_folder, {"fuse": fuse, "fuse_learners": 8})
    kept = _CHUNK if fuse == "off" else 8
    name = "evaluate" if fuse == "off" else "_fused"
    original = getattr(evaluator_module.TabularEvaluator, name)
    calls = {"n": 0}

    def train_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:  # the first chunk or group finishes, the second is interrupted
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(evaluator_module.TabularEvaluator, name, train_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        verify(run_folder, members=24, steps="0")
    monkeypatch.setattr(evaluator_module.TabularEvaluator, name, original)
    resumed = []
    verify(run_folder, members=24, steps="0", on_learner=lambda h, j: resumed.append(j))
    start = read_records(run_folder)[0]
    assert resumed == list(range(start.learners + kept, 24))


def _set_in_config(run_folder: Path, evaluator_settings: dict) -> None:
    path = run_folder / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config.setdefault("evaluator", {}).update(evaluator_settings)
    path.write_text(yaml.safe_dump(config))


def test_confirmed_candidates_record_their_fresh_learners_and_correct_selected_intervals(
    run_folder: Path,
):
    """A confirmed candidate's record keeps E_M of its decision learners beside that of its
    fresh ones (the run's winner's curse is measured from them), and the intervals of
    candidates the gate chose are shifted by it: in the run's records and in verify."""
    from edas_agent.theory.gate import statistics

    records = read_records(run_folder)
    confirmed = [r for r in records if r.shrinkage is not None]
    assert len(confirmed) >= 2, "the toy search confirms two winners"
    record = confirmed[0]
    check = record.shrinkage.fresh
    assert (check.decision_learners, check.fresh_learners) == (2, 2)
    pool = np.load(run_folder / "learners" / f"{record.arch_hash}.npz")
    config_members = record.members
    evaluator_y = _validation_targets(run_folder)
    fresh = statistics(pool["val"][2:4], evaluator_y, config_members).E_M
    assert check.val[1] == pytest.approx(fresh) and check.val[0] == pytest.approx(record.stats.E_M)
    # the start's seeds split the same way: the gap common random numbers give, unselected
    start = records[0].reference
    assert (start.decision_learners, start.fresh_learners) == (2, 2)
    assert records[0].predicted.selected == 0
    # The record's interval (from all four learners) knows two of them were chosen; the
    # first confirmation had no earlier pair to measure the curse by, later ones had
    assert record.predicted.selected == 2 and record.predicted.shift == 0
    assert all(r.predicted.shift != 0 for r in confirmed[1:])
    rejected = [r for r in records if r.event == "proposal" and r.rounds
                and not r.rounds[0].accepted and r.predicted]  # fmt: skip
    assert all(r.predicted.selected == 0 and r.predicted.shift == 0 for r in rejected)
    # verify leaves each architecture's own pair out of the curse its interval uses
    result = verify(run_folder, members=6, steps="all")
    for other in confirmed:
        entry = result["architectures"][other.arch_hash]["interval"]["val"]
        assert entry["selected"] == 2 and entry["shift"] != 0
    # a run from before the start's split was recorded: verify takes it from its learners
    trajectory = run_folder / "trajectory.jsonl"
    lines = trajectory.read_text().splitlines()
    first = json.loads(lines[0])
    assert first.pop("reference") is not None
    trajectory.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    again = verify(run_folder, members=6, steps="all")
    assert again["architectures"] == result["architectures"]


def _validation_targets(folder: Path):
    from edas_agent.config import load_config
    from edas_agent.training.door import build_evaluator

    return build_evaluator(load_config(folder / "config.yaml", {})).y_val


def test_unknown_steps_are_a_user_error(run_folder: Path):
    from edas_agent.errors import UserError

    with pytest.raises(UserError, match="no evaluated architecture"):
        verify(run_folder, members=4, steps="99")
    with pytest.raises(UserError, match="--steps"):
        verify(run_folder, members=4, steps="best")


def test_calibrate_reports_agreement_per_method_and_stratum(fast_config: Config, tmp_path: Path):
    evaluator = TabularEvaluator(fast_config.evaluator.data, fast_config.evaluator, 0)
    architectures = {
        name: evaluator.parse(doc)
        for name, doc in {
            "default": {},
            "tiny": {"tower": {"widths": [4]}, "training": {"epochs": 1}},
            "dropout": {"tower": {"dropout": 0.4}},
        }.items()
    }
    store = LearnerStore(evaluator, tmp_path / "learners")
    result = calibrate(architectures, store, members=4, pairs=3, seed=0, resamples=100)
    overall = result["agreement"]["all"]
    assert overall["comparisons"] == 3 * 2 * 3
    for method in ("exact", "paper", "confident", "single"):
        assert 0 <= overall[method]["agreement"] <= 1
        assert 0 <= overall[method]["false_accepts"] <= 1 - overall[method]["agreement"] + 1e-12
    assert sum(v["comparisons"] for k, v in result["agreement"].items() if k != "all") == 18
    assert set(result["prediction_error"]["val"]) == {"4"}
    for split in ("val", "test"):  # 10 pairs of learners per architecture, each an interval
        coverage = result["coverage"][split]
        assert coverage["of"] == 3 * 10 and 0 <= coverage["covered"] <= 30
        assert coverage["covered"] + coverage["above"] + coverage["below"] == 30


def test_cohens_kappa_by_hand():
    a = np.array([True, True, False, False])
    b = np.array([True, False, False, False])
    assert cohens_kappa(a, b) == pytest.approx(0.5)  # observed 0.75, chance 0.5
    assert cohens_kappa(a, a) == pytest.approx(1.0)
    assert cohens_kappa(np.ones(3, bool), np.ones(3, bool)) is None


def test_a_member_that_cannot_be_trained_stops_verify_cleanly(
    monkeypatch, capsys, run_folder: Path
):
    from edas_agent.evaluators.base import CandidateFailed
    from edas_agent.evaluators.tabular import evaluator as evaluator_module
    from tests.agent.cli.test_cli import invoke

    def lost_worker(self, architecture, learners, first=0):
        raise CandidateFailed("worker lost: the node went away")

    monkeypatch.setattr(evaluator_module.TabularEvaluator, "evaluate", lost_worker)
    code, _, err = invoke(monkeypatch, capsys, "verify", str(run_folder), "--members", "6")
    assert code == 1 and "verify stopped: worker lost" in err and "rerun to resume" in err
    assert "Traceback" not in err


def test_disagreements_are_the_steps_the_two_rules_decided_differently(searched):
    from edas_agent.analysis.verify import choose_records, rules_disagree
    from edas_agent.record import read_records

    records = read_records(searched(8, proposer_seed=0))
    evaluated = [r for r in records if r.event == "proposal" and r.rules is not None]
    assert not any(map(rules_disagree, evaluated))  # the toy search's rules always agree
    split = evaluated[-1]  # make one disagree: the single-learner rule says otherwise
    flipped = split.rules.model_copy(update={"single": not split.rules.exact})
    records[records.index(split)] = split.model_copy(update={"rules": flipped})
    assert [r.step for r in records if rules_disagree(r)] == [split.step]
    chosen = [r.step for r in choose_records(records, "disagreements")]
    assert chosen == sorted({split.step, split.baseline.step})


def test_the_realised_ensembles_side_with_one_rule_or_the_other():
    from edas_agent.analysis.verify import sided_with

    rows = [
        {"rules": {"exact": True, "single": False}, "realised_test_better": True},
        {"rules": {"exact": False, "single": True}, "realised_test_better": True},
        {"rules": {"exact": True, "single": False}, "realised_test_better": True},
        {"rules": {"exact": True, "single": True}, "realised_test_better": False},  # agreed
        {"realised_test_better": True},  # an older verify.json: no rules logged
    ]
    assert sided_with(rows) == {"disagreements": 3, "exact": 2, "single": 1}


def test_verify_full_data_trains_a_sampled_runs_steps_on_every_training_row(
    fast_config: Config, run_folder: Path
):
    from edas_agent.config import dump_config
    from edas_agent.evaluators.tabular.mutations import MUTATIONS
    from edas_agent.proposers.builtin import BuiltinProposer
    from edas_agent.record import Journal
    from edas_agent.session import build_search
    from edas_agent.training.door import DataError

    data = fast_config.evaluator.data.model_copy(update={"sample_rows": 300})
    settings = fast_config.evaluator.model_copy(update={"data": data})
    config = fast_config.model_copy(update={"budget": 3, "evaluator": settings, "name": "sampled"})
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    assert len(evaluator.data.train) == 300
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    build_search(config, evaluator, BuiltinProposer(1, MUTATIONS), journal).run()

    result = verify(journal.folder, members=4, steps="accepted", full_data=True)
    assert result["full_data"] is True
    saved = json.loads((journal.folder / "verify_full.json").read_text())
    assert saved["architectures"].keys() == result["architectures"].keys()
    for arch_hash in result["architectures"]:
        full = np.load(journal.folder / "learners-full" / f"{arch_hash}.npz")
        sampled = np.load(journal.folder / "learners" / f"{arch_hash}.npz")
        assert full["val"].shape[0] == 4  # none of the sample's learners reused
        assert not np.allclose(full["val"][0], sampled["val"][0])
    assert not (journal.folder / "verify.json").exists()
    with pytest.raises(DataError, match="every training row"):
        verify(run_folder, members=4, steps="accepted", full_data=True)
