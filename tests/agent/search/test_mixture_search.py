"""A mixture search (search.target: mixture) as a user runs it: run, resume, replay, and
the prompt it shows."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import load_config
from edas_agent.proposers.prompts import render
from edas_agent.record import read_records
from edas_agent.search.context import proposal_context
from edas_agent.search.judging import make_gate
from edas_agent.search.state import RunState
from edas_agent.search.target import make_target
from edas_agent.training.door import build_evaluator
from edas_agent.training.learners import LearnerStore
from tests.agent.cli.test_cli import invoke
from tests.agent.search.test_crash_safety import comparable


@pytest.fixture
def mixture_args(table_csv: Path) -> list[str]:
    return ["--data", str(table_csv), "--target", "label", "--members", "20",
            "--set", "search.target=mixture"]  # fmt: skip


def run(monkeypatch, capsys, args, runs: Path, budget: int) -> Path:
    code, out, _ = invoke(monkeypatch, capsys, "run", *args, "--budget", str(budget),
                          "--runs-dir", str(runs))  # fmt: skip
    assert code == 0, out
    (folder,) = runs.iterdir()
    return folder


@pytest.fixture
def mixture_run(monkeypatch, capsys, mixture_args, tmp_path) -> Path:
    return run(monkeypatch, capsys, mixture_args, tmp_path / "runs", 8)


def test_a_mixture_search_accepts_only_lower_mixture_errors(mixture_run: Path):
    records = read_records(mixture_run)
    judged = [r for r in records if r.mixture() is not None]
    assert len(judged) >= 6
    accepted = [r for r in records if r.accepted]
    assert len(accepted) >= 2, "the toy search should find at least one improvement"
    errors = [r.predicted_error() for r in accepted]
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    for record in accepted[1:]:
        assert sum(p.members for p in record.mixture().after) == 20
        assert any(p.arch_hash == record.arch_hash for p in record.mixture().after)
    for earlier, later in itertools.pairwise(accepted):
        before = later.mixture().before
        assert before == (earlier.mixture().after if earlier.mixture() else before)


def test_replay_rederives_and_recomputes_every_mixture_round(mixture_run: Path):
    report = replay(mixture_run)
    rounds = sum(len(r.rounds) for r in read_records(mixture_run))
    assert report.ok, report.mismatches
    assert report.recomputed == rounds > 0 and not report.notes


def rewrite_first_accepted(folder: Path, change) -> int:
    path = folder / "trajectory.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    target = next(r for r in lines if r["event"] == "proposal" and r["accepted"])
    change(target["rounds"][-1]["mixture"])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return target["step"]


def test_an_edited_mixture_error_is_caught_from_the_learners(mixture_run: Path):
    step = rewrite_first_accepted(mixture_run, lambda m: m.update(E_after=m["E_after"] - 1e-4))
    mismatches = replay(mixture_run).mismatches
    assert any(f"step {step}" in m and "from the learners" in m for m in mismatches)


def test_an_edited_composition_is_caught(mixture_run: Path):
    def move_a_member(mixture):
        mixture["after"][0]["members"] -= 1

    step = rewrite_first_accepted(mixture_run, move_a_member)
    mismatches = replay(mixture_run).mismatches
    assert any(f"step {step}" in m and "M = 20" in m for m in mismatches)
    assert any(f"step {step}" in m and "another mixture" in m for m in mismatches)


def test_without_the_learners_replay_says_what_it_could_not_recompute(mixture_run: Path):
    for stored in (mixture_run / "learners").iterdir():
        stored.unlink()
    report = replay(mixture_run)
    assert report.ok and report.recomputed == 0
    assert any("learners missing" in note for note in report.notes)


def test_a_resumed_mixture_search_matches_an_uninterrupted_one(
    monkeypatch, capsys, mixture_args, mixture_run, tmp_path
):
    folder = run(monkeypatch, capsys, mixture_args, tmp_path / "halves", 4)
    code, out, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder), "--budget", "8")
    assert code == 0, out
    assert comparable(folder) == comparable(mixture_run)
    assert replay(folder).ok


def test_the_prompt_shows_the_mixture_and_each_proposals_diversity(mixture_run: Path):
    config = load_config(mixture_run / "config.yaml", {})
    evaluator = build_evaluator(config)
    records = read_records(mixture_run)
    state = RunState.starting_from(records[0], evaluator.parse)
    for record in records[1:]:
        state.observe(record)
        if record.accepted:
            state.adopt(record, evaluator.parse)
    target = make_target(config, make_gate(config), evaluator, LearnerStore(evaluator, None))
    context = proposal_context(config, evaluator, state, 9, 1, mixture=target.view(state))
    prompt = render(context)
    assert "## Current mixture" in prompt.user and "Acceptance frontier" not in prompt.user
    assert f"E_mix (M = 20) = {records[-1].mixture().E_before:.6f}" in prompt.user
    assert "cross=" in prompt.user and "searches for a mixture" in prompt.system
    compact = render(context, style="compact")
    assert "Mixture (what is improved)" in compact.user
    single = render(context.model_copy(update={"mixture": None}))
    assert "Acceptance frontier" in single.user and "searches for a mixture" not in single.system


def test_a_mixture_search_needs_the_exact_rule(tmp_path: Path):
    from edas_agent.errors import UserError

    with pytest.raises(UserError, match=r"search\.target 'mixture'.*gate\.rule 'single'"):
        load_config(None, {}, {"search.target": "mixture", "gate.rule": "single"})
