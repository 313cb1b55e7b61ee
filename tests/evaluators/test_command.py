"""The command evaluator and JSON Schema spaces: a script per learner, its failures as
values, and a JSON Schema turned into a pydantic space with the same bounds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.command import CommandEvaluator, load_targets
from edas_agent.evaluators.json_space import SpaceError, space_from_schema

SPACE = {
    "type": "object",
    "properties": {
        "depth": {"type": "integer", "minimum": 1, "maximum": 8, "default": 2},
        "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.1},
        "kind": {"enum": ["a", "b"], "default": "a"},
        "widths": {
            "type": "array",
            "items": {"type": "integer", "minimum": 4, "maximum": 64},
            "minItems": 1,
            "maxItems": 3,
            "default": [8],
        },
        "inner": {
            "type": "object",
            "properties": {"on": {"type": "boolean", "default": True}},
        },
        "cap": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 9}, {"type": "null"}],
                "default": None},
    },
}  # fmt: skip

SCRIPT = """
import json, sys, time
import numpy as np
arch = json.load(open(sys.argv[1])); seed = int(sys.argv[2]); out = sys.argv[3]
print("training", arch["depth"], "seed", seed)
mode = {mode!r}
if mode == "crash": sys.exit(3)
if mode == "hang": time.sleep(30)
if mode == "silent": sys.exit(0)
if mode == "garbage": open(out, "w").write("not an npz"); sys.exit(0)
if mode == "nan": np.savez(out, val=np.full(4, np.nan), test=np.zeros(2)); sys.exit(0)
rng = np.random.default_rng(seed)
np.savez(out, val=rng.uniform(size=4), test=rng.uniform(size=2))
"""


def test_a_json_schema_becomes_a_pydantic_space_with_its_bounds_and_defaults():
    space = space_from_schema(SPACE, "Toy")
    default = space()
    assert default.model_dump() == {
        "depth": 2, "rate": 0.1, "kind": "a", "widths": [8], "inner": {"on": True}, "cap": None,
    }  # fmt: skip
    for bad in ({"depth": 9}, {"rate": 0}, {"kind": "c"}, {"widths": [2]}, {"widths": []},
                {"cap": 10}, {"unknown": 1}):  # fmt: skip
        with pytest.raises(ValidationError):
            space.model_validate({**default.model_dump(), **bad})
    schema = space.model_json_schema()  # what the prompt and the answer schema read
    assert schema["properties"]["depth"]["maximum"] == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"depth": {"type": "integer", "default": 2}}, "/depth: a number needs both bounds"),
        ({"name": {"type": "string", "default": "x"}}, "/name: a string needs an enum"),
        ({"depth": {"type": "integer", "minimum": 1, "maximum": 3}}, "/depth: every property"),
    ],
)
def test_a_schema_that_cannot_be_a_space_is_refused_with_its_path(change, message):
    schema = {**SPACE, "properties": {**SPACE["properties"], **change}}
    with pytest.raises(SpaceError, match=message):
        space_from_schema(schema)


def command_evaluator(tmp_path: Path, mode: str, timeout_s: float | None = 20):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(mode=mode))
    command = f"{sys.executable} {script} {{arch}} {{seed}} {{out}}"
    evaluator = CommandEvaluator(
        command, space_from_schema(SPACE), np.array([0, 1, 1, 0]), np.array([1, 0]),
        timeout_s=timeout_s, workdir=tmp_path, seed=1,
    )  # fmt: skip
    evaluator.keep_files_in(tmp_path / "commands")
    return evaluator


def test_the_command_runs_once_per_learner_seed_and_its_files_are_kept(tmp_path):
    evaluator = command_evaluator(tmp_path, "ok")
    result = evaluator.evaluate(evaluator.default_architecture(), learners=2)
    assert result.val_predictions.shape == (2, 4) and result.test_predictions.shape == (2, 2)
    logs = sorted((tmp_path / "commands").glob("*/*/log.txt"))
    assert [log.parent.name for log in logs] == ["1000", "1001"]
    assert logs[0].read_text().strip() == "training 2 seed 1000"
    assert json.loads((logs[0].parent / "arch.json").read_text())["widths"] == [8]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "exited with status 3; last lines of .*\ntraining 2 seed 1000"),
        ("silent", "wrote no predictions.npz"),
        ("garbage", "is not an NPZ with 'val' and 'test'"),
        ("nan", "val predictions hold 4 NaN"),
    ],
)
def test_every_way_a_command_fails_is_a_candidate_failure(tmp_path, mode, message):
    evaluator = command_evaluator(tmp_path, mode)
    with pytest.raises(CandidateFailed, match=message):
        evaluator.evaluate(evaluator.default_architecture(), learners=2)


def test_a_command_past_its_timeout_is_stopped(tmp_path):
    import time

    evaluator = command_evaluator(tmp_path, "hang", timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(CandidateFailed, match=r"ran past evaluator\.timeout_s \(1\.5 s\)"):
        evaluator.evaluate(evaluator.default_architecture(), learners=1)
    assert time.monotonic() - started < 10


def test_targets_files_are_checked(tmp_path):
    np.savez(tmp_path / "ok.npz", y_val=[0, 1], y_test=[1], task="binary")
    assert load_targets(tmp_path / "ok.npz")[2] == "binary"
    np.savez(tmp_path / "bad.npz", y_val=[0, 1])
    with pytest.raises(ValueError, match="no y_test"):
        load_targets(tmp_path / "bad.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable NPZ"):
        load_targets(tmp_path / "text.npz")
