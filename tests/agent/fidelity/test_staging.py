"""Multi-fidelity screening (screening.enabled) as a user runs it: rounds that screen,
stop and halve, the gate untouched, replay, resume, compute, and bad combinations."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import ScreeningSettings, load_config
from edas_agent.errors import UserError
from edas_agent.fidelity.audit import predictor_track, spearman
from edas_agent.fidelity.staging import stage_decisions
from edas_agent.record import CurvePrediction, StagePoint, StageResult, read_records
from tests.agent.cli.test_cli import invoke
from tests.agent.search.test_crash_safety import comparable
from tests.agent.search.test_mixture_search import run


@pytest.fixture
def screening_args(table_csv: Path) -> list[str]:
    return ["--data", str(table_csv), "--target", "label", "--members", "20",
            "--set", "screening.enabled=true", "--set", "screening.warm=3"]  # fmt: skip


@pytest.fixture
def screened_run(monkeypatch, capsys, screening_args, tmp_path) -> Path:
    return run(monkeypatch, capsys, screening_args, tmp_path / "runs", 36)


def test_rounds_screen_nine_and_fully_train_only_the_survivors(screened_run: Path):
    records = read_records(screened_run)
    proposals = [r for r in records if r.event == "proposal"]
    assert len(proposals) == 36 and len({r.round for r in proposals}) == 4
    pruned = [r for r in proposals if r.status == "pruned"]
    judged = [r for r in proposals if r.rounds]
    assert len(pruned) >= 24 and len(judged) <= 12
    for record in pruned:
        trace = record.screening
        assert not record.rounds and record.stats is None and not record.accepted
        assert trace.pruned_at is not None and trace.pruned_by in ("bound", "halving")
        assert record.cost.learners_trained == 0 and record.cost.partial_learners > 0
        assert len(trace.stages) == trace.pruned_at + 1
    for record in judged:  # survivors: both stages, then a full curve ending at the gate's
        assert [s.point.fraction for s in record.screening.stages] == pytest.approx([1 / 9, 1 / 3])
        curve = record.screening.curve
        assert [p.fraction for p in curve] == pytest.approx([1 / 9, 1 / 3, 1.0])
        assert curve[-1].E_M == pytest.approx(record.stats.E_M, rel=1e-12)
        # the stages trained the gate's own learners, which went on (stage_seeds: shared)
        assert [p.E_M for p in curve[:2]] == [s.point.E_M for s in record.screening.stages]
    # the gate alone accepts, so the trajectory is still monotonic
    accepted = [r for r in records if r.accepted]
    errors = [r.carried()[0].E_M for r in accepted]
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert all(r.rounds or r.event == "baseline" for r in accepted)


def test_screening_costs_a_fraction_of_full_training(screened_run: Path):
    records = read_records(screened_run)
    proposals = [r for r in records if r.event == "proposal"]
    spent = sum(r.cost.learner_equivalents for r in proposals)
    # unscreened, each of the 36 proposals costs at least its 2 decision learners
    assert spent < 0.5 * 2 * len(proposals)
    first_round = [r for r in proposals if r.round == 1]
    # 9 to 1/9, the best 3 on from there to 1/3, the best of those on to the end: each
    # step is paid once, and a survivor's stages are part of its full learners
    expected = [2 / 9] * 6 + [2 / 3] * 2 + [0]
    assert _partial_by_stage_reached(first_round) == pytest.approx(expected)


def test_with_independent_seeds_the_gate_judges_learners_the_stages_never_trained(
    monkeypatch, capsys, screening_args, tmp_path
):
    args = [*screening_args, "--set", "screening.stage_seeds=independent"]
    folder = run(monkeypatch, capsys, args, tmp_path / "runs", 9)
    proposals = [r for r in read_records(folder) if r.event == "proposal"]
    # the survivor's stages are paid apart: its full training starts again on other seeds
    assert _partial_by_stage_reached(proposals) == pytest.approx([2 / 9] * 6 + [2 / 3] * 3)
    (survivor,) = [r for r in proposals if r.rounds]
    curve, stages = survivor.screening.curve, survivor.screening.stages
    assert all(p.E_M != s.point.E_M for p, s in zip(curve, stages, strict=False))
    assert curve[-1].E_M == pytest.approx(survivor.stats.E_M, rel=1e-12)
    assert survivor.cost.learners_trained >= 2
    assert replay(folder).ok


def test_survivors_can_be_judged_on_more_learners_than_the_stages_trained(
    monkeypatch, capsys, screening_args, tmp_path
):
    args = [*screening_args, "--set", "screening.survivor_learners=4"]
    folder = run(monkeypatch, capsys, args, tmp_path / "runs", 9)
    proposals = [r for r in read_records(folder) if r.event == "proposal"]
    (survivor,) = [r for r in proposals if r.rounds]
    assert survivor.rounds[0].kind == "decision" and survivor.rounds[0].stats.k == 4
    # learners 0 and 1 went on from their stages (paid once), 2 and 3 are fresh
    curve, stages = survivor.screening.curve, survivor.screening.stages
    assert [p.E_M for p in curve[:2]] == [s.point.E_M for s in stages]
    assert survivor.cost.partial_learners == 0 and survivor.cost.learners_trained >= 4
    assert _partial_by_stage_reached(proposals) == pytest.approx([2 / 9] * 6 + [2 / 3] * 2 + [0])
    assert replay(folder).ok


def test_survivor_learners_below_the_decision_learners_is_a_config_error():
    with pytest.raises(UserError, match="survivor_learners"):
        load_config(None, {}, {"evaluator.learners": 3, "screening.survivor_learners": 2})


def _partial_by_stage_reached(records) -> list[float]:
    """Partial learners per record, pruned ones first by the stage they reached."""

    def order(record):
        trace = record.screening
        return trace.pruned_at if trace.pruned_at is not None else 99

    return [r.cost.partial_learners for r in sorted(records, key=order)]


def test_replay_rederives_every_screening_decision_and_catches_a_tampered_one(
    screened_run: Path, monkeypatch, capsys
):
    report = replay(screened_run)
    assert report.ok, report.mismatches
    assert report.screened == 36
    code, out, _ = invoke(monkeypatch, capsys, "replay", str(screened_run))
    assert code == 0 and "screening of 36 candidates re-derived" in out
    path = screened_run / "trajectory.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    victim = next(r for r in lines if r["status"] == "pruned" and r["screening"]["pruned_at"] == 0)
    victim["screening"]["stages"][0]["point"]["E_M"] *= 0.5  # looked far better than it was
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    mismatches = replay(screened_run).mismatches
    assert any(f"step {victim['step']}" in m for m in mismatches), mismatches


def test_a_resumed_screening_run_matches_an_uninterrupted_one(
    monkeypatch, capsys, screening_args, screened_run, tmp_path
):
    folder = run(monkeypatch, capsys, screening_args, tmp_path / "halves", 18)
    code, out, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder), "--budget", "36")
    assert code == 0, out
    assert comparable(folder) == comparable(screened_run)


def test_the_predictor_scores_once_warm_and_its_track_is_reported(screened_run: Path):
    records = read_records(screened_run)
    scored = [r for r in records if r.screening is not None and r.screening.predicted is not None]
    assert scored, "three full evaluations warm it (screening.warm=3)"
    assert all(r.screening.signals.keys() >= {"log_parameters", "zero_cost", "distance"}
               for r in scored)  # fmt: skip
    track = predictor_track(records)
    assert [n for _, n, _ in track] == list(range(1, len(track) + 1))


def test_runs_and_report_show_pruned_candidates(screened_run, monkeypatch, capsys):
    code, out, _ = invoke(monkeypatch, capsys, "runs", "--runs-dir", str(screened_run.parent))
    assert code == 0 and "pruned" in out
    code, out, _ = invoke(monkeypatch, capsys, "report", str(screened_run))
    assert code == 0, out
    page = (screened_run / "report.html").read_text()
    assert "screening.png" in page and "pruned" in page


def test_screening_with_a_mixture_target_is_a_config_error(table_csv):
    with pytest.raises(UserError, match="screening"):
        load_config(None, {}, {"screening.enabled": True, "search.target": "mixture"})


def _entry(score: float, lower: float) -> StageResult:
    point = StagePoint(fraction=1 / 9, E=0.2, D=0.01, E_M=score)
    forecast = CurvePrediction(E=0.2, D=0.01, E_M=score, lower=lower, curves=3)
    return StageResult(point=point, prediction=forecast, score=score, ranked_by="curve")


def test_stage_decisions_stop_what_cannot_pass_then_keep_the_best_share():
    settings = ScreeningSettings(enabled=True, eta=3)
    entries = [("a", _entry(0.30, 0.25)), ("b", _entry(0.10, 0.05)), ("c", _entry(0.12, 0.06)),
               ("d", _entry(0.11, 0.07)), ("e", _entry(0.13, 0.08))]  # fmt: skip
    decisions = stage_decisions(entries, len(entries), bar=0.2, stage=0, settings=settings)
    assert decisions["a"].rule == "bound"  # even at best 0.25 > bar 0.2
    assert decisions["a"].reason.startswith("stopped at stage 1")
    assert decisions["b"] is None and decisions["d"] is None  # ceil(5 / 3) = 2 go on
    assert decisions["c"].rule == decisions["e"].rule == "halving"
    assert "ranked 3 of 4" in decisions["c"].reason and "ranked 4 of 4" in decisions["e"].reason
    unpruned = ScreeningSettings(enabled=True, eta=1, prune=False)
    assert all(v is None for v in stage_decisions(entries, 5, 0.2, 0, unpruned).values())


def test_fractions_follow_eta_and_stages():
    assert ScreeningSettings(eta=3, stages=2).fractions() == pytest.approx((1 / 9, 1 / 3))
    assert ScreeningSettings(eta=4, stages=1).fractions() == pytest.approx((0.25,))
    assert ScreeningSettings(eta=1, stages=2).fractions() == pytest.approx((1 / 3, 2 / 3))
    assert ScreeningSettings(stage_fractions=[0.1, 0.5]).fractions() == (0.1, 0.5)
    for bad in ([], [0.5, 0.2], [0.0], [1.0]):
        with pytest.raises(UserError, match="stage_fractions"):
            load_config(None, {}, {"screening.stage_fractions": bad})


def test_spearman_is_one_for_the_same_order_and_minus_one_reversed():
    assert spearman([(1, 10), (2, 20), (3, 35)]) == pytest.approx(1.0)
    assert spearman([(1, 30), (2, 20), (3, 10)]) == pytest.approx(-1.0)


def test_the_run_shows_each_stage_and_the_pruned_count(monkeypatch, capsys, screening_args,
                                                        tmp_path):  # fmt: skip
    code, out, _ = invoke(monkeypatch, capsys, "run", *screening_args, "--budget", "9",
                          "--runs-dir", str(tmp_path))  # fmt: skip
    assert code == 0, out
    assert "stage 1 of 3: training 9 candidates to 0.111 of the schedule" in out
    assert "stage 2 of 3: training 3 candidates" in out
    assert " pruned;" in out and "in partial training" in out


def test_an_evaluator_that_cannot_stop_early_is_refused_before_training(tmp_path):
    from edas_agent import RunSession
    from edas_agent.testing import NumpyEvaluator, ScriptedProposer

    config = load_config(None, {}, {"screening.enabled": True, "runs_dir": str(tmp_path)})
    with pytest.raises(UserError, match="evaluate_staged"):
        RunSession.start(config, lambda c: NumpyEvaluator(), ScriptedProposer([]))
    assert list(tmp_path.iterdir()) == []  # no empty run folder left behind


class RoundsProposer:
    """Answers each call with the next prepared round of proposals."""

    replays_deterministically = True

    def __init__(self, rounds):
        self.rounds = list(rounds)
        self.asked: list[int] = []

    def propose(self, context, check=None):
        self.asked.append(context.proposals)  # one call for the whole round
        return self.rounds.pop(0)


def test_an_earlier_pruned_architecture_twice_in_a_round_is_screened_once(fast_config):
    """Regression: a pruned architecture has no learners, so proposing it twice in a later
    round screened it twice under one key (replay disagreed, in the benchmark)."""
    from edas_agent.config import dump_config
    from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
    from edas_agent.record import Journal
    from edas_agent.session import build_search
    from edas_agent.testing import proposal

    dropouts = [proposal({"op": "replace", "path": "/tower/dropout", "value": v})
                for v in (0.05, 0.1, 0.15)]  # fmt: skip
    settings = fast_config.screening.model_copy(
        update={"enabled": True, "proposals": 3, "eta": 3, "stages": 1}
    )
    config = fast_config.model_copy(update={"budget": 6, "screening": settings})
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    proposer = RoundsProposer([dropouts, [dropouts[0]] * 3])
    build_search(config, evaluator, proposer, journal).run()
    assert proposer.asked == [3, 3]  # screening.proposals per call
    records = read_records(journal.folder)[1:]
    assert [r.status for r in records[:3]].count("pruned") == 2
    again = records[3:]
    assert again[1].status == again[2].status == "invalid"
    assert "duplicate of step 4 in the same round" in again[1].reason
    if records[0].status == "pruned":  # screened again, trained now: nothing was reused
        assert again[0].screening is not None and again[0].cached_from is None
    assert replay(journal.folder).ok


class ReachRecorder(RoundsProposer):
    def propose(self, context, check=None):
        self.reaches = [*getattr(self, "reaches", []), context.reach]
        return super().propose(context, check)


@pytest.mark.parametrize("enabled, expected", [(True, 4), (False, None)])
def test_the_proposer_is_told_screenings_reach_only_while_screening(fast_config, enabled, expected):
    from edas_agent.config import dump_config
    from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
    from edas_agent.record import Journal
    from edas_agent.session import build_search
    from edas_agent.testing import proposal

    dropout = proposal({"op": "replace", "path": "/tower/dropout", "value": 0.05})
    settings = fast_config.screening.model_copy(
        update={"enabled": enabled, "proposals": 2, "eta": 2, "stages": 1, "reach": 4}
    )
    config = fast_config.model_copy(update={"budget": 1, "screening": settings})
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    proposer = ReachRecorder([[dropout]])
    build_search(config, evaluator, proposer, journal).run()
    assert proposer.reaches == [expected]
