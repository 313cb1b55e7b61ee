"""Bring your own model, as a user runs it: the worked examples in docs/examples through the
command line (run, replay, verify, report, a SIGKILL then --resume), and a plugin or a
command that fails in every way it can, each failure a `failed` record while the run goes on."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edas_agent.record import read_records
from tests.agent.cli.test_cli import invoke

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples"
TIMINGS = {"time": True, "cost": True, "completion": True, "rounds": {"__all__": {"cost": True}}}


@pytest.fixture
def digits(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "digits"
    shutil.copytree(EXAMPLES / "digits_torch", folder)
    monkeypatch.chdir(folder)
    return folder


def only_run(runs: Path) -> Path:
    (folder,) = runs.iterdir()
    return folder


def proposals(folder: Path):
    return [r for r in read_records(folder) if r.event == "proposal"]


def test_the_pytorch_plugin_example_runs_replays_verifies_and_reports(
    digits, monkeypatch, capsys, tmp_path
):
    code, out, err = invoke(
        monkeypatch, capsys, "run", "--config", "digits.yaml", "--budget", "6",
        "--runs-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert code == 0, out + err
    folder = only_run(tmp_path / "runs")
    trained = [r for r in proposals(folder) if r.status in ("accepted", "rejected")]
    assert len(trained) == 6
    assert all(r.arch_hash and r.rationale.startswith("one step on /") for r in trained)
    code, out, _ = invoke(monkeypatch, capsys, "replay", str(folder))
    assert code == 0 and "all agree" in out
    code, out, _ = invoke(monkeypatch, capsys, "verify", str(folder), "--members", "4")
    assert code == 0 and (folder / "verify.json").is_file(), out
    code, out, _ = invoke(monkeypatch, capsys, "report", str(folder))
    assert code == 0 and (folder / "report.html").is_file(), out


def test_a_killed_plugin_run_resumes_to_the_uninterrupted_trajectory(
    digits, monkeypatch, capsys, tmp_path
):
    args = ["--config", "digits.yaml", "--budget", "10"]
    code, out, _ = invoke(monkeypatch, capsys, "run", *args, "--runs-dir", str(tmp_path / "a"))
    assert code == 0, out
    reference = only_run(tmp_path / "a")
    command = [sys.executable, "-c", "from edas_agent.cli.app import main; main()", "run", *args,
               "--runs-dir", str(tmp_path / "b")]  # fmt: skip
    process = subprocess.Popen(command, cwd=digits, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = list((tmp_path / "b").glob("*/trajectory.jsonl"))
        if runs and len(runs[0].read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    folder = only_run(tmp_path / "b")
    assert len(read_records(folder, drop_torn_tail=True)) < 11, "the kill should land mid-run"
    code, out, err = invoke(monkeypatch, capsys, "run", "--resume", str(folder))
    assert code == 0, out + err
    resumed = [r.model_dump(exclude=TIMINGS) for r in read_records(folder)]
    assert resumed == [r.model_dump(exclude=TIMINGS) for r in read_records(reference)]


FAULTY_PLUGIN = """
from typing import Literal
import numpy as np
from pydantic import BaseModel
from edas_agent import FunctionEvaluator

class Faulty(BaseModel):
    mode: Literal["ok", "raise", "nan", "shape"] = "ok"
    scale: Literal[1, 2] = 1

def make(seed, rows=40):
    rng = np.random.default_rng(0)
    y_val, y_test = rng.normal(size=rows), rng.normal(size=rows)

    def train(arch, learner_seed):
        noise = np.random.default_rng(learner_seed).normal(size=(2, rows))
        if arch.mode == "raise":
            raise MemoryError("out of memory")
        val, test = y_val + arch.scale * noise[0], y_test + noise[1]
        if arch.mode == "nan":
            val[3] = np.nan
        if arch.mode == "shape":
            val = val[:-1]
        return val, test

    return FunctionEvaluator(Faulty, train, y_val, y_test, task="regression", seed=seed)
"""


def test_a_plugin_that_raises_returns_nan_or_the_wrong_shape_fails_only_that_candidate(
    monkeypatch, capsys, tmp_path
):
    (tmp_path / "faulty_plugin.py").write_text(FAULTY_PLUGIN)
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(
        monkeypatch, capsys, "run", "--budget", "4", "--runs-dir", str(tmp_path / "runs"),
        "--set", "evaluator.plugin=faulty_plugin:make",
    )  # fmt: skip
    assert code == 0, out + err
    by_mode = {r.architecture["mode"]: r for r in proposals(only_run(tmp_path / "runs"))}
    assert by_mode["raise"].status == "failed" and "MemoryError" in by_mode["raise"].reason
    assert by_mode["nan"].status == "failed" and "NaN" in by_mode["nan"].reason
    assert by_mode["shape"].status == "failed" and "shape (39,)" in by_mode["shape"].reason
    assert len(by_mode) == 4  # and the run went on to its budget


def test_calibrate_trains_members_of_architecture_files_through_a_plugin(
    monkeypatch, capsys, tmp_path
):
    import json

    both_splits = FAULTY_PLUGIN.replace("y_test + noise[1]", "y_test + arch.scale * noise[1]")
    (tmp_path / "scaled_plugin.py").write_text(both_splits)  # a new name: not cached
    (tmp_path / "plugin.yaml").write_text("evaluator:\n  plugin: scaled_plugin:make\n")
    (tmp_path / "calm.json").write_text(json.dumps({"scale": 1}))
    (tmp_path / "noisy.json").write_text(json.dumps({"scale": 2}))
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(
        monkeypatch, capsys, "calibrate", "--config", "plugin.yaml", "--arch", "calm.json",
        "--arch", "noisy.json", "--members", "4", "--pairs", "3", "--folder", "calibration",
    )  # fmt: skip
    assert code == 0, out + err
    saved = json.loads((tmp_path / "calibration" / "calibration.json").read_text())
    realised = saved["realised_test_E_M"]
    assert saved["architectures"] == ["0:calm", "1:noisy"]
    assert realised["0:calm"] < realised["1:noisy"]  # the noisier learners are worse


FAULTY_SCRIPT = """
import json, sys, time
import numpy as np
arch = json.load(open(sys.argv[1]))
if arch["mode"] == "crash": print("Traceback: boom"); sys.exit(2)
if arch["mode"] == "hang": time.sleep(60)
if arch["mode"] == "silent": sys.exit(0)
y = np.load("targets.npz")
rng = np.random.default_rng(int(sys.argv[2]))
np.savez(sys.argv[3], val=y["y_val"] + rng.normal(size=20), test=y["y_test"])
"""


def test_a_command_that_crashes_hangs_or_writes_nothing_fails_only_that_candidate(
    monkeypatch, capsys, tmp_path
):
    import json

    import numpy as np

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(FAULTY_SCRIPT)
    np.savez("targets.npz", y_val=np.zeros(20), y_test=np.zeros(20), task="regression")
    space = {"type": "object", "properties": {
        "mode": {"enum": ["ok", "crash", "hang", "silent"], "default": "ok"}}}  # fmt: skip
    (tmp_path / "space.json").write_text(json.dumps(space))
    code, out, err = invoke(
        monkeypatch, capsys, "run", "--budget", "3", "--runs-dir", str(tmp_path / "runs"),
        "--set", f"evaluator.command={sys.executable} train.py {{arch}} {{seed}} {{out}}",
        "--set", "evaluator.space=space.json", "--set", "evaluator.targets=targets.npz",
        "--set", "evaluator.timeout_s=3",
    )  # fmt: skip
    assert code == 0, out + err
    by_mode = {r.architecture["mode"]: r for r in proposals(only_run(tmp_path / "runs"))}
    assert set(by_mode) == {"crash", "hang", "silent"}
    assert all(r.status == "failed" for r in by_mode.values())
    assert "status 2" in by_mode["crash"].reason and "Traceback: boom" in by_mode["crash"].reason
    assert "timeout_s (3 s)" in by_mode["hang"].reason
    assert "wrote no predictions.npz" in by_mode["silent"].reason


def test_the_command_example_runs_and_replays(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "boosting"
    shutil.copytree(EXAMPLES / "sklearn_command", folder)
    monkeypatch.chdir(folder)
    subprocess.run([sys.executable, "prepare.py"], check=True, capture_output=True)
    code, out, err = invoke(
        monkeypatch, capsys, "run", "--config", "boosting.yaml", "--budget", "3",
        "--runs-dir", str(tmp_path / "runs"),
        "--set", f"evaluator.command={sys.executable} train.py --arch {{arch}} --seed {{seed}} "
        "--out {out}",
    )  # fmt: skip
    assert code == 0, out + err
    run = only_run(tmp_path / "runs")
    assert all(r.status in ("accepted", "rejected") for r in proposals(run))
    assert list((run / "commands").glob("*/*/log.txt"))
    code, out, _ = invoke(monkeypatch, capsys, "replay", str(run))
    assert code == 0 and "all agree" in out


def refused_before_the_run(monkeypatch, capsys, tmp_path, plugin: str) -> str:
    """What `run` with evaluator.plugin `plugin` says, on one line, after checking that it
    failed and left no run folder behind."""
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(
        monkeypatch, capsys, "run", "--budget", "2", "--runs-dir", str(tmp_path / "runs"),
        "--set", f"evaluator.plugin={plugin}",
    )  # fmt: skip
    assert code != 0
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    return " ".join((out + err).split())


def test_a_plugin_that_cannot_be_imported_stops_before_the_run(monkeypatch, capsys, tmp_path):
    said = refused_before_the_run(monkeypatch, capsys, tmp_path, "no_such_module:make")
    assert "cannot be imported" in said and "ModuleNotFoundError" in said


# An evaluator as someone might first write one: the training works, but it lacks notes and
# describe (which the loop reads at the baseline) and has a zero_cost that is not a method
HALF_PLUGIN = """
from pydantic import BaseModel
from edas_agent.testing import NumpyEvaluator

class Half:
    task = "regression"
    zero_cost = 0.5
    def __init__(self, seed):
        self.inner = NumpyEvaluator(seed=seed)
        self.y_val, self.y_test = self.inner.y_val, self.inner.y_test
    def space(self):
        return self.inner.space()
    def parse(self, document):
        return self.inner.parse(document)
    def default_architecture(self):
        return self.inner.default_architecture()
    def evaluate(self, architecture, learners, first=0):
        return self.inner.evaluate(architecture, learners, first)

def make(seed):
    return Half(seed)
"""


def test_a_plugin_is_checked_against_the_whole_protocol_when_it_loads(
    monkeypatch, capsys, tmp_path
):
    """Required members the old hand-copied list missed (notes, describe), and an optional
    member that is there but not callable, are named before any training."""
    (tmp_path / "half_plugin.py").write_text(HALF_PLUGIN)
    said = refused_before_the_run(monkeypatch, capsys, tmp_path, "half_plugin:make")
    assert "lacks describe, notes" in said
    assert "has zero_cost but cannot call it" in said


def test_only_an_evaluator_built_from_the_config_ships_to_ray_workers(monkeypatch, tmp_path):
    import numpy as np

    from edas_agent.config import load_config
    from edas_agent.evaluators.function import FunctionEvaluator
    from edas_agent.training.door import ConfigShipment, build_evaluator, shipment

    (tmp_path / "faulty_plugin.py").write_text(FAULTY_PLUGIN)
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {"evaluator.plugin": "faulty_plugin:make"})
    assert shipment(build_evaluator(config)) == ConfigShipment(config)
    by_hand = FunctionEvaluator(
        type(build_evaluator(config).default), None, np.zeros(2), np.zeros(2)
    )
    with pytest.raises(TypeError, match="passed from Python"):
        shipment(by_hand)
