"""The loop end to end on a small real dataset: every outcome is a record, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import Config, dump_config
from edas_agent.evaluators.tabular import trainer
from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
from edas_agent.evaluators.tabular.mutations import MUTATIONS
from edas_agent.proposers.builtin import BuiltinProposer
from edas_agent.proposers.edits import ProposedEdits
from edas_agent.record import Journal, read_records
from edas_agent.search.loop import BaselineFailed, Search
from edas_agent.session import build_search
from edas_agent.testing import ScriptedProposer, proposal


def run(config: Config, proposer) -> tuple[Search, Journal]:
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    search = build_search(config, evaluator, proposer, journal)
    search.run()
    return search, journal


def test_builtin_search_end_to_end(fast_config: Config):
    _, journal = run(fast_config, BuiltinProposer(fast_config.seed, MUTATIONS))
    records = read_records(journal.folder)
    assert [r.event for r in records] == ["baseline"] + ["proposal"] * fast_config.budget
    assert [r.step for r in records] == list(range(fast_config.budget + 1))
    accepted = [r.stats.E_M for r in records if r.accepted]
    assert accepted == sorted(accepted, reverse=True) and len(set(accepted)) == len(accepted)
    for record in records[1:]:
        assert record.status in ("accepted", "rejected", "invalid", "failed")
        if record.stats is not None:
            assert record.rules is not None and record.delta_E is not None
            assert record.test is not None and "auc" in record.test.metrics
            assert record.baseline is not None
    best = json.loads((journal.folder / "best.json").read_text())
    assert best["step"] == max(r.step for r in records if r.accepted)
    assert (journal.folder / "config.yaml").read_text().startswith("name: test")
    assert replay(journal.folder).ok


class CheckingProposer(ScriptedProposer):
    """Also asks the loop's check about each proposal first, as an LLM proposer does."""

    def __init__(self, proposals):
        super().__init__(proposals)
        self.checked: list[str | None] = []

    def propose(self, context, check=None):
        answer = super().propose(context, check)
        items = [ProposedEdits(rationale="scripted", edits=p.edits) for p in answer]
        self.checked += check(items)
        return answer


def test_an_edit_that_cannot_act_is_a_no_op_with_its_reason(fast_config: Config):
    """/cross/rank while /cross/layers is 0 (the default), residual connections where no
    layer keeps its width: edits a small model made (Gemma 3 270M, bench/local_llm.py)."""
    config = fast_config.model_copy(update={"budget": 3})
    script = CheckingProposer(
        [
            proposal({"op": "replace", "path": "/cross/rank", "value": 8}),
            proposal(
                {"op": "replace", "path": "/numeric/buckets", "value": 8},
                {"op": "replace", "path": "/attention/heads", "value": 4},
            ),
            proposal({"op": "replace", "path": "/tower/residual", "value": True}),  # 64-32
        ]
    )
    _, journal = run(config, script)
    records = read_records(journal.folder)[1:]
    assert [r.status for r in records] == ["invalid"] * 3
    assert records[0].reason == script.checked[0]
    assert "/cross/rank cannot act in this architecture" in records[0].reason
    assert "/attention/heads, /numeric/buckets cannot act" in records[1].reason
    assert "/tower/residual cannot act in this architecture on this table" in records[2].reason
    assert all(r.cost.learners_trained == 0 for r in records)


def test_invalid_noop_duplicate_and_problem_outcomes(fast_config: Config):
    dropout = {"op": "replace", "path": "/tower/dropout", "value": 0.1}
    script = ScriptedProposer(
        [
            proposal({"op": "replace", "path": "/tower/dropout", "value": 0.9}),  # out of bounds
            proposal({"op": "replace", "path": "/tower/depth", "value": 3}),  # no such path
            proposal({"op": "replace", "path": "/tower/dropout", "value": 0.0}),  # no-op
            proposal(dropout),
            proposal(dropout),  # duplicate of step 4 (or of the new baseline)
            proposal(problem="the answer is not valid JSON: ..."),
        ]
    )
    _, journal = run(fast_config, script)
    records = read_records(journal.folder)[1:]
    assert records[0].status == "invalid" and "tower.dropout" in records[0].reason
    assert "less than or equal to 0.5" in records[0].reason
    assert records[1].status == "invalid" and "does not apply" in records[1].reason
    assert records[2].status == "invalid" and "no-op" in records[2].reason
    assert records[3].status in ("accepted", "rejected")
    assert records[3].cost.learners_trained == records[3].learners  # 2, or 4 if confirmed
    if records[3].accepted:
        assert records[4].status == "invalid" and "no-op" in records[4].reason
    else:  # judged again on the same learners: same rounds, nothing trained
        assert records[4].cached_from == 4 and records[4].cost.learners_trained == 0

        def summary(record):
            return [(r.kind, r.stats, r.accepted) for r in record.rounds]

        assert summary(records[4]) == summary(records[3])
    assert records[5].status == "invalid" and "not valid JSON" in records[5].reason
    # The proposer saw the history with outcomes and reasons.
    last = script.contexts[-1].history
    assert [h.status for h in last][:3] == ["invalid", "invalid", "invalid"]
    assert replay(journal.folder).ok


def test_failed_training_is_recorded_and_the_run_goes_on(fast_config: Config, monkeypatch):
    original = trainer._fit

    def fit_nan_for_sgd(trained, architecture, *rest):
        if architecture.training.optimizer == "sgd":
            from edas_agent.evaluators.base import CandidateFailed

            raise CandidateFailed("learner 0: training loss became nan in epoch 1")
        return original(trained, architecture, *rest)

    monkeypatch.setattr(trainer, "_fit", fit_nan_for_sgd)
    script = ScriptedProposer(
        [proposal({"op": "replace", "path": "/training/optimizer", "value": "sgd"})]
        + [
            proposal({"op": "replace", "path": "/tower/dropout", "value": 0.1 * i})
            for i in range(1, 6)
        ]
    )
    _, journal = run(fast_config, script)
    records = read_records(journal.folder)
    assert (
        records[1].status == "failed" and "learner 0: training loss became nan" in records[1].reason
    )
    assert len(records) == fast_config.budget + 1


def test_a_failing_baseline_stops_with_a_reason(fast_config: Config, monkeypatch):
    from edas_agent.evaluators.base import CandidateFailed

    def always_fail(*args, **kwargs):
        raise CandidateFailed("training loss became inf in epoch 1")

    monkeypatch.setattr(trainer, "_fit", always_fail)
    with pytest.raises(BaselineFailed, match="inf"):
        run(fast_config, ScriptedProposer([]))


def test_same_seed_same_trajectory(fast_config: Config):
    def trajectory(name: str) -> list[dict]:
        config = fast_config.model_copy(update={"name": name})
        _, journal = run(config, BuiltinProposer(config.seed, MUTATIONS))
        timings = {"time": True, "cost": True, "rounds": {"__all__": {"cost": True}}}
        return [r.model_dump(exclude=timings) for r in read_records(journal.folder)]

    assert trajectory("a") == trajectory("b")


def test_three_learners_per_candidate(fast_config: Config):
    config = fast_config.model_copy(
        update={
            "budget": 3,
            "evaluator": fast_config.evaluator.model_copy(update={"learners": 3}),
        }
    )
    _, journal = run(config, BuiltinProposer(config.seed, MUTATIONS))
    records = read_records(journal.folder)
    assert records[0].stats.k == 3 + config.gate.confirm_learners
    for record in records[1:]:
        if record.rounds:
            assert record.rounds[0].stats.k == 3 and record.rounds[0].stats.seed_se > 0
    assert replay(journal.folder).ok


def test_a_min_effect_turns_down_a_gain_below_the_seed_noise_and_replays(tmp_path):
    from edas_agent.config import load_config
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator
    from edas_agent.theory.gate import seed_noise_floor

    (tmp_path / "start.json").write_text(json.dumps({"l2": 1.0, "features": 0.6, "rows": 0.5}))
    steps = [("/rows", 0.55), ("/features", 0.7), ("/rows", 0.6), ("/features", 0.8),
             ("/rows", 0.7), ("/features", 0.9), ("/rows", 1.0), ("/features", 1.0)]  # fmt: skip

    def search(min_effect):
        config = load_config(None, {"budget": len(steps), "members": 10, "runs_dir": str(tmp_path),
                                    "baseline": str(tmp_path / "start.json"),
                                    "gate.min_effect": min_effect})  # fmt: skip
        script = ScriptedProposer([proposal({"op": "replace", "path": p, "value": v})
                                   for p, v in steps])  # fmt: skip
        with RunSession.start(config, lambda c: NumpyEvaluator(seed=c.seed), script) as session:
            return session.run(), session.journal.folder

    plain, _ = search(None)
    floored, folder = search(1.0)
    assert plain[-1].accepted  # the gain is real by the point estimate ...
    last = floored[-1].rounds[-1]
    assert last.rules.exact and not last.accepted  # ... but below the seed noise
    assert last.floor == pytest.approx(seed_noise_floor(floored[0].stats, 1.0))
    assert "< floor" in last.reason
    assert replay(folder).mismatches == []


def test_a_pooled_floor_follows_the_runs_seed_noise_model_and_replays(tmp_path):
    from edas_agent.config import load_config
    from edas_agent.record import pooled_seed_noise
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator
    from edas_agent.theory.gate import seed_noise_floor
    from edas_agent.theory.seed_noise import pooled_noise_floor

    (tmp_path / "start.json").write_text(json.dumps({"l2": 1.0, "features": 0.6, "rows": 0.5}))
    steps = [("/rows", 0.7), ("/features", 0.8), ("/rows", 0.9), ("/features", 1.0),
             ("/rows", 1.0), ("/l2", 0.5)]  # fmt: skip
    config = load_config(None, {"budget": len(steps), "members": 10, "runs_dir": str(tmp_path),
                                "baseline": str(tmp_path / "start.json"),
                                "gate.min_effect": 0.5, "gate.floor_from": "pooled"})  # fmt: skip
    script = ScriptedProposer([proposal({"op": "replace", "path": p, "value": v})
                               for p, v in steps])  # fmt: skip
    with RunSession.start(config, lambda c: NumpyEvaluator(seed=c.seed), script) as session:
        records, folder = session.run(), session.journal.folder
    by_step = {r.step: r for r in records}
    floors = []
    for record in records[1:]:
        if not record.rounds:
            continue
        seen = [r for r in records if r.step < record.step]
        baseline = by_step[record.baseline.step].carried()[0]
        expected = pooled_noise_floor(pooled_seed_noise(seen), baseline, records[0].stats.k, 0.5)
        assert record.rounds[0].floor == pytest.approx(expected)
        floors.append(expected)
    assert sum(r.accepted for r in records[1:]) >= 1  # confirmations add to the pooled model
    assert len(set(floors)) > 1  # it moves, unlike the start's fixed floor
    # pooled over the start alone, it is the start's own floor
    assert floors[0] == pytest.approx(seed_noise_floor(records[0].stats, 0.5))
    assert replay(folder).mismatches == []


def test_a_selection_aware_gate_moves_the_floor_before_confirmation_by_the_baselines_curse(
    tmp_path,
):
    from edas_agent.config import load_config
    from edas_agent.record import measured_selection, pooled_seed_noise
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator
    from edas_agent.theory.gate import seed_noise_floor

    (tmp_path / "start.json").write_text(json.dumps({"l2": 1.0, "features": 0.6, "rows": 0.5}))
    steps = [("/rows", 0.7), ("/features", 0.8), ("/rows", 0.9), ("/features", 1.0),
             ("/rows", 1.0), ("/l2", 0.5)]  # fmt: skip
    config = load_config(None, {"budget": len(steps), "members": 10, "runs_dir": str(tmp_path),
                                "baseline": str(tmp_path / "start.json"),
                                "gate.min_effect": 0.5, "gate.selection_aware": True})  # fmt: skip
    script = ScriptedProposer([proposal({"op": "replace", "path": p, "value": v})
                               for p, v in steps])  # fmt: skip
    with RunSession.start(config, lambda c: NumpyEvaluator(seed=c.seed), script) as session:
        records, folder = session.run(), session.journal.folder
    by_step = {r.step: r for r in records}
    moved = 0
    for record in records[1:]:
        if not record.rounds:
            continue
        decision, last = record.rounds[0], record.rounds[-1]
        if last.kind == "confirmation":  # a confirmation keeps the run's floor
            assert last.floor >= decision.floor
        baseline = by_step[record.baseline.step]
        seen = [r for r in records if r.step < record.step]
        selection = measured_selection(seen, pooled_seed_noise(seen))
        share = baseline.predicted.selected / baseline.predicted.k
        optimism = share * selection.shift * baseline.carried()[0].E_M
        run_floor = seed_noise_floor(records[0].stats, 0.5)
        assert decision.floor == pytest.approx(max(0.0, run_floor - optimism))
        moved += decision.floor != pytest.approx(run_floor)
    # after a confirmed baseline, with its curse measured (here its fresh learners did better
    # than its decision ones, so the floor rose), the decision rounds' floor moved
    assert moved >= 1
    assert replay(folder).mismatches == []


def test_min_effect_without_confirmation_trains_three_starting_learners(tmp_path):
    from edas_agent.config import load_config
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator

    config = load_config(None, {"budget": 2, "gate.min_effect": 1.0, "gate.confirm": False,
                                "members": 10, "runs_dir": str(tmp_path)})  # fmt: skip
    with RunSession.start(config, lambda c: NumpyEvaluator(seed=c.seed)) as session:
        records = session.run()
    assert records[0].learners == 3 and records[0].stats.seed_se is not None
    assert all(r.rounds[0].floor is not None for r in records[1:])


def test_every_judged_record_carries_a_seed_noise_interval_of_its_E_M(searched):
    from edas_agent.record import read_records

    records = read_records(searched(5, proposer_seed=2))
    start = records[0]
    assert start.predicted is not None and start.predicted.source == "learners"
    assert start.predicted.k == start.stats.k >= 3 and start.predicted.members == start.members
    judged = [r for r in records[1:] if r.stats is not None]
    assert judged and all(r.predicted is not None for r in judged)
    for record in judged:
        predicted = record.predicted
        assert predicted.lower < predicted.E_M < predicted.upper and predicted.level == 0.9
        if predicted.k == 2:  # decision learners alone: the run's pooled spread
            assert predicted.source in ("pooled", "spread") and predicted.pooled_over >= 1
        assert isinstance(record.unstable, list)


def test_a_search_is_whole_when_built_and_runs_once(tmp_path):
    """Its parts and strategies exist before run(); its state comes from the baseline run()
    trains; the floor lives on the search, not on the gate it shares with its target."""
    from edas_agent.config import dump_config, load_config
    from edas_agent.search.strategies import NoScreening, NoSteps
    from edas_agent.testing import NumpyEvaluator

    config = load_config(None, {"budget": 2, "members": 10, "runs_dir": str(tmp_path)})
    journal = Journal.create(tmp_path, config.name, dump_config(config))
    script = ScriptedProposer([proposal({"op": "replace", "path": "/l2", "value": 0.5})] * 2)
    search = build_search(config, NumpyEvaluator(seed=0), script, journal)
    assert isinstance(search.screening, NoScreening) and isinstance(search.steps, NoSteps)
    assert search.store.folder == journal.folder / "learners" and search.records == []
    with pytest.raises(RuntimeError, match="has not started"):
        search.baseline  # noqa: B018
    records = search.run()
    assert len(records) == 3 and search.baseline.step in (0, 1)
    assert search.floor is not None and not hasattr(search.gate, "min_effect")
    with pytest.raises(RuntimeError, match="runs once"):
        search.run()
