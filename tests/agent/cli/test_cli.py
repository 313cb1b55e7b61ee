"""The command line as a user runs it: exit codes, messages, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edas_agent import cli
from edas_agent.record import read_records
from tests.agent.proposers.fake_servers import anthropic_tool_message, openai_completion, serve

GOOD = {
    "rationale": "more capacity",
    "edits": [{"op": "replace", "path": "/tower/widths/0", "value": 128}],
}
OUT_OF_BOUNDS = {
    "rationale": "lots of dropout",
    "edits": [{"op": "replace", "path": "/tower/dropout", "value": 0.95}],
}


def invoke(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["edas-agent", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def toy_args(table_csv: Path, tmp_path: Path) -> list[str]:
    return ["--data", str(table_csv), "--target", "label", "--runs-dir", str(tmp_path / "runs")]


def only_run_folder(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "runs").iterdir()
    return folder


def test_run_then_replay(monkeypatch, capsys, toy_args, tmp_path):
    code, out, _ = invoke(monkeypatch, capsys, "run", "--budget", "3", "--name", "cli", *toy_args)
    assert code == 0, out
    assert "Accepted trajectory" in out and "Run folder" in out and "3 proposals" in out
    assert "seed-noise interval" in out and " ± " in out  # the start's E_M carries its interval
    folder = only_run_folder(tmp_path)
    assert folder.name.endswith("-cli")
    code, out, _ = invoke(monkeypatch, capsys, "replay", str(folder))
    assert code == 0 and "all agree" in out


def test_replay_exits_non_zero_on_a_mismatch(monkeypatch, capsys, toy_args, tmp_path):
    invoke(monkeypatch, capsys, "run", "--budget", "2", *toy_args)
    folder = only_run_folder(tmp_path)
    path = folder / "trajectory.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[1]["rules"]["paper"] = not lines[1]["rules"]["paper"]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, _, err = invoke(monkeypatch, capsys, "replay", str(folder))
    assert code == 1 and "mismatch" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--members", "1"], "members: Input should be greater than or equal to 2"),
        (["run", "--llm", "gemini"], "llm.provider"),
        (["run", "--set", "gate.rule=median"], "gate.rule"),
        (["run", "--set", "nonsense"], "--set expects KEY=VALUE"),
        (["run", "--data", "/nowhere.csv", "--target", "y"], "data file not found"),
        (["run", "--config", "/nowhere.yaml"], "cannot read config"),
        (["replay", "/nowhere"], "/nowhere does not exist"),
        (["run", "--resume", "/nowhere"], "/nowhere does not exist"),
    ],
)
def test_user_errors_are_one_line_without_traceback(monkeypatch, capsys, args, message):
    code, out, err = invoke(monkeypatch, capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err + out
    assert err.count("error:") == 1


def test_missing_api_key_names_the_variable(monkeypatch, capsys, toy_args):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, _, err = invoke(monkeypatch, capsys, "run", "--llm", "openai:gpt-test", *toy_args)
    assert code == 2 and "$OPENAI_API_KEY" in err


def test_openai_compatible_run_records_every_outcome(monkeypatch, capsys, toy_args, tmp_path):
    secret = "sk-do-not-log-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    replies = [
        openai_completion(json.dumps(GOOD)),
        openai_completion("Let me think about this... {not json"),
        openai_completion(json.dumps(OUT_OF_BOUNDS)),
    ]
    with serve(replies) as server:
        code, out, _ = invoke(
            monkeypatch, capsys, "run", "--budget", "3", "--llm", "openai:local-model",
            "--set", f"llm.base_url={server.url}/v1", "--set", "llm.max_retries=0",
            "--set", "llm.max_repairs=0", *toy_args,
        )  # fmt: skip
    assert code == 0, out
    folder = only_run_folder(tmp_path)
    records = read_records(folder)
    assert records[1].status in ("accepted", "rejected") and records[1].llm.model == "local-model"
    assert records[2].status == "invalid" and "not valid JSON" in records[2].reason
    assert records[3].status == "invalid" and "tower.dropout" in records[3].reason
    assert records[1].llm.input_tokens == 120 and records[1].llm.output_tokens == 30
    assert sorted(p.name for p in (folder / "llm").iterdir()) == [
        f"step-000{i}.json" for i in (1, 2, 3)
    ]
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_anthropic_run(monkeypatch, capsys, toy_args, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with serve([anthropic_tool_message(GOOD), anthropic_tool_message(OUT_OF_BOUNDS)]) as server:
        code, out, _ = invoke(
            monkeypatch, capsys, "run", "--budget", "2", "--llm", "anthropic:claude-test",
            "--set", f"llm.base_url={server.url}", "--set", "llm.max_retries=0",
            "--set", "llm.max_repairs=0", *toy_args,
        )  # fmt: skip
    assert code == 0, out
    records = read_records(only_run_folder(tmp_path))
    assert records[1].status in ("accepted", "rejected") and records[1].llm.provider == "anthropic"
    assert records[2].status == "invalid" and "less than or equal to 0.5" in records[2].reason


def test_bad_api_key_stops_the_run_cleanly(monkeypatch, capsys, toy_args, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    replies = [(401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}})]
    with serve(replies) as server:
        code, _, err = invoke(
            monkeypatch, capsys, "run", "--budget", "5", "--llm", "openai:m",
            "--set", f"llm.base_url={server.url}/v1", *toy_args,
        )  # fmt: skip
    assert code == 1 and "$OPENAI_API_KEY" in err
    assert len(read_records(only_run_folder(tmp_path))) == 1  # the baseline is kept


def write_npz(path: Path, preds: np.ndarray, y: np.ndarray) -> Path:
    np.savez(path, preds=preds, y=y)
    return path


def test_gate_on_predictions_from_any_framework(monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    base = write_npz(tmp_path / "a.npz", np.clip(y + rng.normal(0, 0.4, (2, 300)), 0, 1), y)
    cand = write_npz(tmp_path / "b.npz", np.clip(y + rng.normal(0, 0.3, (2, 300)), 0, 1), y)
    code, out, _ = invoke(
        monkeypatch,
        capsys,
        "gate",
        "--baseline",
        str(base),
        "--candidate",
        str(cand),
        "--members",
        "50",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["accepted"] is True and result["rules"]["paper"] and result["rules"]["exact"]
    assert result["candidate"]["E_M"] < result["baseline"]["E_M"]
    interval = result["interval"]
    assert interval["confidence"] == 0.9 and interval["lower"] <= interval["upper"] < 0
    multiclass = write_npz(
        tmp_path / "m.npz", rng.dirichlet(np.ones(3), (3, 300)), rng.integers(0, 3, 300)
    )
    code, _, err = invoke(
        monkeypatch,
        capsys,
        "gate",
        "--baseline",
        str(base),
        "--candidate",
        str(multiclass),
        "--members",
        "5",
    )
    assert code == 2 and "same examples" in err


def test_gate_rejects_bad_files(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, predictions=np.zeros((2, 3)))
    code, _, err = invoke(
        monkeypatch,
        capsys,
        "gate",
        "--baseline",
        str(bad),
        "--candidate",
        str(bad),
        "--members",
        "5",
    )
    assert code == 2 and "lacks key" in err


def test_evaluate_prints_statistics_and_timings(monkeypatch, capsys, table_csv, tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"tower": {"widths": [32]}, "training": {"epochs": 2}}))
    code, out, _ = invoke(
        monkeypatch, capsys, "evaluate", "--arch", str(arch), "--learners", "3",
        "--data", str(table_csv), "--target", "label", "--set", "members=16", "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["validation"]["k"] == 3 and result["architecture"]["tower"]["widths"] == [32]
    assert len(result["timings"]["learner_seconds"]) == 3 and "auc" in result["test_metrics"]
    predicted = result["predicted_E_M"]  # seed noise from the three learners themselves
    assert predicted["source"] == "learners" and predicted["members"] == result["members"] == 16
    assert predicted["lower"] < result["validation"]["E_M"] < predicted["upper"]


def test_console_script_is_installed():
    result = subprocess.run(["edas-agent", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "replay" in result.stdout


def test_gate_confidence_multiclass_and_logloss(monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 400)
    onehot = np.eye(3)[y]
    sharp = np.clip(onehot * 0.7 + rng.dirichlet(np.ones(3), (3, 400)) * 0.3, 1e-6, 1)
    vague = np.clip(onehot * 0.3 + rng.dirichlet(np.ones(3), (3, 400)) * 0.7, 1e-6, 1)
    base = write_npz(tmp_path / "a.npz", vague, y)
    cand = write_npz(tmp_path / "b.npz", sharp, y)
    args = ["gate", "--baseline", str(base), "--candidate", str(cand), "--members", "20", "--json"]
    code, out, _ = invoke(monkeypatch, capsys, *args, "--confidence", "0.95")
    result = json.loads(out)
    assert code == 0 and result["task"] == "multiclass" and result["candidate"]["k"] == 3
    assert result["confidence"] == 0.95 and result["interval"]["upper"] < 0 and result["accepted"]
    assert result["candidate_logloss"]["E_M_is"] == "approximate"
    code, out, _ = invoke(monkeypatch, capsys, *args, "--rule", "logloss")
    assert code == 0 and json.loads(out)["rules"]["logloss"] is True
    code, _, err = invoke(monkeypatch, capsys, *args, "--confidence", "1.5")
    assert code == 2 and "--confidence" in err


def test_verify_and_calibrate_commands(monkeypatch, capsys, toy_args, table_csv, tmp_path):
    invoke(monkeypatch, capsys, "run", "--budget", "2", *toy_args)
    folder = only_run_folder(tmp_path)
    code, out, _ = invoke(monkeypatch, capsys, "verify", str(folder), "--members", "5")
    assert code == 0 and "realised 5-member" in out and (folder / "verify.json").is_file()
    assert all(f"m={m}" in out for m in (1, 2, 4, 5))  # every size, not only M
    code, _, err = invoke(monkeypatch, capsys, "verify", str(tmp_path))
    assert code == 2 and "not a run folder" in err

    small, wide = tmp_path / "small.json", tmp_path / "wide.json"
    small.write_text(json.dumps({"tower": {"widths": [8]}}))
    wide.write_text(json.dumps({"tower": {"widths": [64]}}))
    data = ["--data", str(table_csv), "--target", "label"]
    out_folder = tmp_path / "calibration"
    code, out, _ = invoke(
        monkeypatch, capsys, "calibrate", "--arch", str(small), "--arch", str(wide),
        "--members", "4", "--pairs", "2", "--folder", str(out_folder), *data,
    )  # fmt: skip
    assert code == 0 and "2-learner gate vs realised 4-member" in out
    saved = json.loads((out_folder / "calibration.json").read_text())
    assert saved["members"] == 4 and saved["agreement"]["all"]["comparisons"] == 2 * 2
    twice = ["--arch", str(small), "--arch", str(small)]
    code, _, err = invoke(monkeypatch, capsys, "calibrate", *twice, *data)
    assert code == 2 and "at least two different architectures" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tower": {"dropout": 2}}))
    code, _, err = invoke(
        monkeypatch,
        capsys,
        "calibrate",
        "--arch",
        str(bad),
        "--data",
        str(table_csv),
        "--target",
        "label",
    )
    assert code == 2 and "architecture 0:bad: tower.dropout" in err


def trajectory(folder: Path) -> list[dict]:
    timings = {"time": True, "cost": True, "rounds": {"__all__": {"cost": True}}}
    return [r.model_dump(exclude=timings) for r in read_records(folder)]


def test_replay_backend_reproduces_a_run_without_network(monkeypatch, capsys, table_csv, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    second = {
        "rationale": "wider",
        "edits": [{"op": "replace", "path": "/tower/widths/0", "value": 32}],
    }
    replies = [
        openai_completion(json.dumps(GOOD), 100, 10),
        openai_completion(json.dumps(OUT_OF_BOUNDS), 110, 11),  # repaired on the next call
        openai_completion(json.dumps({"proposals": [second]}), 120, 12),
        openai_completion("no idea", 130, 13),  # repairs run out: invalid
        openai_completion("still no idea", 140, 14),
        (500, {"error": {"message": "boom", "type": "server_error"}}),  # a failed round
    ]
    data = ["--data", str(table_csv), "--target", "label", "--name", "orig"]
    with serve(replies) as server:
        code, out, _ = invoke(
            monkeypatch, capsys, "run", "--budget", "4", "--llm", "openai-compatible:local",
            "--set", f"llm.base_url={server.url}/v1", "--set", "llm.max_retries=0",
            "--set", "llm.max_repairs=1", "--runs-dir", str(tmp_path / "a"), *data,
        )  # fmt: skip
    assert code == 0, out
    (original,) = (tmp_path / "a").iterdir()
    statuses = [r.status for r in read_records(original)[1:]]
    assert statuses[2:] == ["invalid", "failed"] and statuses[0] in ("accepted", "rejected")
    assert "LLM: 6 calls" in out

    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key and no server
    code, out, _ = invoke(
        monkeypatch, capsys, "run", "--budget", "4", "--llm", "replay",
        "--replay-from", str(original), "--set", "llm.max_repairs=1",
        "--runs-dir", str(tmp_path / "b"), *data,
    )  # fmt: skip
    assert code == 0, out
    (replayed,) = (tmp_path / "b").iterdir()
    assert trajectory(replayed) == trajectory(original)


def test_replay_stops_when_the_runs_diverge(monkeypatch, capsys, toy_args, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with serve([openai_completion(json.dumps(GOOD))]) as server:
        invoke(
            monkeypatch, capsys, "run", "--budget", "1", "--llm", "openai:m",
            "--set", f"llm.base_url={server.url}/v1", *toy_args,
        )  # fmt: skip
    original = only_run_folder(tmp_path)
    code, _, err = invoke(
        monkeypatch, capsys, "run", "--budget", "1", "--llm", "replay",
        "--replay-from", str(original), "--members", "7", *toy_args,
    )  # fmt: skip
    assert code == 1 and "replay diverged at step 1" in err


def test_the_llm_call_cap_stops_the_run_cleanly(monkeypatch, capsys, toy_args, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with serve([openai_completion(json.dumps(GOOD))] * 5) as server:
        code, out, _ = invoke(
            monkeypatch, capsys, "run", "--budget", "5", "--llm", "openai:m",
            "--max-llm-calls", "2", "--set", f"llm.base_url={server.url}/v1", *toy_args,
        )  # fmt: skip
    assert code == 0 and "Stopped early: llm.max_calls reached: 2 calls" in out
    records = read_records(only_run_folder(tmp_path))
    assert len(records) == 3 and len(server.requests) == 2  # the baseline and two proposals


def test_a_cost_cap_without_a_price_is_refused_up_front(monkeypatch, capsys, toy_args):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = invoke(
        monkeypatch, capsys, "run", "--llm", "openai:mystery-model", "--max-cost", "1", *toy_args
    )
    assert code == 2 and "llm.prices" in err


def test_set_null_turns_a_default_off(monkeypatch, capsys, toy_args, tmp_path):
    code, _, _ = invoke(monkeypatch, capsys, "run", "--budget", "1",
                        "--set", "gate.min_effect=null", *toy_args)  # fmt: skip
    config = (only_run_folder(tmp_path) / "config.yaml").read_text()
    assert code == 0 and "min_effect: null" in config
    code, _, err = invoke(monkeypatch, capsys, "run", "--resume", str(only_run_folder(tmp_path)),
                          "--set", "gate.min_effect=1")  # fmt: skip
    assert code == 2 and "--set gate.min_effect" in err
