"""Runs that survive: SIGKILL then --resume, torn lines, locks, Ctrl-C, disk errors, and
training faults recorded as outcomes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edas_agent.cli.app import RESUMABLE_FLAGS
from edas_agent.record import LOCK, read_records
from edas_agent.session import RESUMABLE
from tests.agent.cli.test_cli import invoke

BUDGET = 14
TIMINGS = {
    "time": True,
    "cost": True,
    "completion": True,  # which training finished first is a timing, not a decision
    "rounds": {"__all__": {"cost": True}},
}


@pytest.fixture
def args(table_csv: Path, tmp_path: Path) -> list[str]:
    return [
        "--budget", str(BUDGET), "--data", str(table_csv), "--target", "label",
        "--members", "20", "--set", "gate.sequential=true", "--set", "gate.max_learners=4",
    ]  # fmt: skip


def comparable(folder: Path) -> list[dict]:
    return [r.model_dump(exclude=TIMINGS) for r in read_records(folder)]


def uninterrupted(monkeypatch, capsys, args, tmp_path) -> Path:
    code, out, _ = invoke(monkeypatch, capsys, "run", *args, "--runs-dir", str(tmp_path / "whole"))
    assert code == 0, out
    (folder,) = (tmp_path / "whole").iterdir()
    return folder


def test_sigkill_then_resume_matches_an_uninterrupted_run(monkeypatch, capsys, args, tmp_path):
    reference = uninterrupted(monkeypatch, capsys, args, tmp_path)
    runs = tmp_path / "killed"
    command = [
        sys.executable,
        "-c",
        "from edas_agent.cli.app import main; main()",
        "run",
        *args,
        "--runs-dir",
        str(runs),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        folders = list(runs.glob("*")) if runs.exists() else []
        trajectory = folders[0] / "trajectory.jsonl" if folders else None
        if trajectory and trajectory.exists() and len(trajectory.read_text().splitlines()) >= 5:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (folder,) = runs.iterdir()
    finished = read_records(folder, drop_torn_tail=True)
    assert 5 <= len(finished) < BUDGET + 1, "the kill should land mid-run"
    assert (folder / LOCK).exists()  # left behind by the killed process: stale

    from edas_agent.evaluators.tabular.evaluator import TabularEvaluator

    original = TabularEvaluator.evaluate
    trained = []

    def counting(self, architecture, learners, first=0):
        trained.append((architecture.arch_hash(), first))
        return original(self, architecture, learners, first)

    monkeypatch.setattr(TabularEvaluator, "evaluate", counting)
    code, out, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder))
    assert code == 0, out
    assert "(resumed)" in out
    assert comparable(folder) == comparable(reference)
    # Nothing finished before the kill was trained again.
    before = {(r.arch_hash, j) for r in finished if r.arch_hash for j in range(r.learners or 0)}
    assert not set(trained) & before
    assert not (folder / LOCK).exists()


def test_a_torn_last_line_is_dropped_with_a_warning(monkeypatch, capsys, args, tmp_path):
    args = [a if a != str(BUDGET) else "6" for a in args]
    code, _, _ = invoke(
        monkeypatch, capsys, "run", *args, "--budget", "3", "--runs-dir", str(tmp_path / "r")
    )
    (folder,) = (tmp_path / "r").iterdir()
    with open(folder / "trajectory.jsonl", "a") as handle:
        handle.write('{"event": "proposal", "step": 4, "ti')  # the kill hit mid-write
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        records = read_records(folder, drop_torn_tail=True)
    assert len(records) == 4
    assert all(json.loads(line) for line in (folder / "trajectory.jsonl").read_text().splitlines())
    code, _, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder), "--budget", "5")
    assert code == 0 and len(read_records(folder)) == 6


def test_a_second_process_cannot_write_the_same_folder(monkeypatch, capsys, args, tmp_path):
    invoke(monkeypatch, capsys, "run", *args, "--budget", "1", "--runs-dir", str(tmp_path / "r"))
    (folder,) = (tmp_path / "r").iterdir()
    (folder / LOCK).write_text(str(os.getppid()))  # a live process owns it
    code, _, err = invoke(monkeypatch, capsys, "run", "--resume", str(folder), "--budget", "2")
    assert code == 2 and f"in use by process {os.getppid()}" in err
    (folder / LOCK).write_text("999999999")  # a dead owner: stale, taken over
    code, _, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder), "--budget", "2")
    assert code == 0 and not (folder / LOCK).exists()


def test_resume_refuses_a_changed_config(monkeypatch, capsys, args, tmp_path):
    invoke(monkeypatch, capsys, "run", *args, "--budget", "1", "--runs-dir", str(tmp_path / "r"))
    (folder,) = (tmp_path / "r").iterdir()
    code, _, err = invoke(monkeypatch, capsys, "run", "--resume", str(folder), "--members", "9")
    said = " ".join(err.split())
    assert code == 2 and "only --budget" in said and "--max-train-tflop may change" in said
    # every flag that error and --help name is one the command has, for each RESUMABLE key
    _, help_text, _ = invoke(monkeypatch, capsys, "run", "--help")
    assert len(RESUMABLE_FLAGS) == len(RESUMABLE)
    for flag in RESUMABLE_FLAGS.values():
        assert flag in said and flag in help_text


def test_a_stop_request_ends_after_the_step_and_resume_finishes(
    monkeypatch, capsys, args, tmp_path
):
    from edas_agent.search import loop

    original = loop.Search._log

    def stop_after_three(self, record):
        original(self, record)
        if len(self.records) == 4:
            self.stop_requested = True  # what the first Ctrl-C does

    monkeypatch.setattr(loop.Search, "_log", stop_after_three)
    code, out, _ = invoke(monkeypatch, capsys, "run", *args, "--runs-dir", str(tmp_path / "r"))
    monkeypatch.setattr(loop.Search, "_log", original)
    (folder,) = (tmp_path / "r").iterdir()
    assert code == 0 and "Stopped early: stopped on request" in out
    assert f"edas-agent run --resume {folder}" in out
    assert len(read_records(folder)) == 4
    code, out, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder))
    reference = uninterrupted(monkeypatch, capsys, args, tmp_path)
    assert code == 0 and comparable(folder) == comparable(reference)


def test_a_full_disk_stops_the_run_and_what_was_written_resumes(
    monkeypatch, capsys, args, tmp_path
):
    from edas_agent.record import Journal

    original = Journal.append
    writes = {"n": 0}

    def fill_the_disk(self, record):
        writes["n"] += 1
        if writes["n"] > 5:
            raise OSError(28, "No space left on device")
        original(self, record)

    monkeypatch.setattr(Journal, "append", fill_the_disk)
    code, out, err = invoke(monkeypatch, capsys, "run", *args, "--runs-dir", str(tmp_path / "r"))
    monkeypatch.setattr(Journal, "append", original)
    (folder,) = (tmp_path / "r").iterdir()
    assert code == 1 and "cannot write to the run folder" in err and "No space left" in err
    assert "Traceback" not in err and f"--resume {folder}" in out
    code, _, _ = invoke(monkeypatch, capsys, "run", "--resume", str(folder))
    assert code == 0 and comparable(folder) == comparable(
        uninterrupted(monkeypatch, capsys, args, tmp_path)
    )


def test_training_faults_are_recorded_and_the_run_goes_on(monkeypatch, capsys, table_csv, tmp_path):
    import torch

    from edas_agent.evaluators.tabular import evaluator as evaluator_module

    original = evaluator_module.train_learners

    def out_of_memory_with_dropout(architecture, *rest, **options):
        if architecture.tower.dropout > 0:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(architecture, *rest, **options)

    monkeypatch.setattr(evaluator_module, "train_learners", out_of_memory_with_dropout)
    code, out, _ = invoke(
        monkeypatch, capsys, "run", "--budget", "12", "--data", str(table_csv), "--target", "label",
        "--set", "space.max_params=3500", "--runs-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0, out
    (folder,) = (tmp_path / "r").iterdir()
    records = read_records(folder)
    reasons = [r.reason for r in records if r.status == "failed"]
    assert any("out of memory" in reason for reason in reasons)
    assert any("exceed space.max_params" in reason for reason in reasons)
    assert len(records) == 13


def test_a_candidate_past_the_timeout_fails(table_csv):
    from edas_agent.evaluators.base import CandidateFailed
    from edas_agent.evaluators.tabular.data import DataSpec
    from edas_agent.evaluators.tabular.evaluator import EvaluatorSettings, TabularEvaluator

    spec = DataSpec(path=str(table_csv), target="label")
    evaluator = TabularEvaluator(spec, EvaluatorSettings(device="cpu", timeout_s=1e-6), 0)
    with pytest.raises(
        CandidateFailed, match=r"ran past evaluator\.timeout_s \(1e-06 s\) in epoch 1"
    ):
        evaluator.evaluate(evaluator.parse({}), 2)
