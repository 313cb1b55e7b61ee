from __future__ import annotations

import json
from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import Config
from edas_agent.errors import UserError


@pytest.fixture
def run_folder(searched, fast_config: Config) -> Path:
    return searched(8, proposer_seed=fast_config.seed)


def rewrite(folder: Path, step: int, change) -> None:
    path = folder / "trajectory.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    change(lines[step])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def evaluated_step(folder: Path) -> int:
    lines = [json.loads(line) for line in (folder / "trajectory.jsonl").read_text().splitlines()]
    return next(r["step"] for r in lines if r["event"] == "proposal" and r["stats"])


def test_an_untouched_run_replays_cleanly(run_folder: Path):
    report = replay(run_folder)
    assert report.ok and report.checked >= 1


def test_a_flipped_decision_is_a_mismatch(run_folder: Path):
    step = evaluated_step(run_folder)

    def flip(record):
        record["accepted"] = not record["accepted"]
        record["status"] = "accepted" if record["accepted"] else "rejected"

    rewrite(run_folder, step, flip)
    assert any(f"step {step}" in m for m in replay(run_folder).mismatches)


def test_edited_statistics_are_a_mismatch(run_folder: Path):
    step = evaluated_step(run_folder)

    def inflate(record):
        record["stats"]["E_M"] += 0.01

    rewrite(run_folder, step, inflate)
    assert any(f"step {step}" in m and "E_M" in m for m in replay(run_folder).mismatches)


def test_a_decision_against_the_wrong_baseline_is_a_mismatch(run_folder: Path):
    step = evaluated_step(run_folder)

    def rebase(record):
        record["baseline"]["step"] = 99

    rewrite(run_folder, step, rebase)
    assert any("current baseline" in m for m in replay(run_folder).mismatches)


def test_not_a_run_folder(tmp_path: Path):
    with pytest.raises(UserError, match=r"trajectory\.jsonl"):
        replay(tmp_path)


def test_a_corrupt_line_is_reported_with_its_number(run_folder: Path):
    with open(run_folder / "trajectory.jsonl", "a") as handle:
        handle.write('{"event": "proposal", "step": \n')
    with pytest.raises(UserError, match=r"trajectory.jsonl:10"):
        replay(run_folder)


def test_rounds_that_depart_from_the_round_plan_are_mismatches(run_folder: Path):
    """replay checks each record's rounds against the run's RoundPlan: a confirmation cut
    off, or a decision followed by a round the plan never asks for."""
    text = (run_folder / "trajectory.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    rejected = next(r["step"] for r in lines if r["status"] == "rejected" and r["rounds"])
    confirmed = next((r["step"] for r in lines if len(r.get("rounds") or []) == 2), None)

    def extra_round(record):
        record["rounds"].append({**record["rounds"][0], "kind": "confirmation"})

    rewrite(run_folder, rejected, extra_round)
    mismatches = replay(run_folder).mismatches
    assert any(f"step {rejected}: a confirmation round after round 0" in m for m in mismatches)
    assert confirmed is not None  # the toy search accepts at least one step
    rewrite(run_folder, confirmed, lambda record: record["rounds"].pop())
    missing = f"step {confirmed}: no confirmation round after round 0"
    assert any(missing in m for m in replay(run_folder).mismatches)


def test_without_a_config_the_round_plan_is_noted_not_checked(run_folder: Path):
    (run_folder / "config.yaml").unlink()
    report = replay(run_folder)
    assert report.ok and any("order of gate rounds not checked" in n for n in report.notes)
