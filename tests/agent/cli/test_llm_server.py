"""An LLM server that is not there, or stops answering: said early, and the run stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from edas_agent.record import read_records
from tests.agent.cli.test_cli import invoke
from tests.agent.proposers.fake_servers import serve


@pytest.fixture
def toy_args(table_csv: Path, tmp_path: Path) -> list[str]:
    return ["--data", str(table_csv), "--target", "label", "--runs-dir", str(tmp_path / "runs")]


def test_an_unreachable_llm_server_is_an_error_before_any_training(monkeypatch, capsys, toy_args):
    import socket

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code, _, err = invoke(
        monkeypatch, capsys, "run", "--llm", "openai-compatible:local", "--budget", "1",
        "--set", f"llm.base_url={url}", *toy_args,
    )  # fmt: skip
    assert code == 2 and f"cannot reach the LLM server at {url}" in err
    runs = Path(toy_args[toy_args.index("--runs-dir") + 1])
    assert not runs.exists() or not any(runs.iterdir())  # no run folder, nothing trained


def test_llm_calls_failing_in_a_row_stop_the_run_resumably(monkeypatch, capsys, toy_args):
    boom = (500, {"error": {"message": "boom", "type": "server_error"}})
    with serve([boom] * 5) as server:
        code, out, err = invoke(
            monkeypatch, capsys, "run", "--llm", "openai-compatible:local", "--budget", "10",
            "--set", f"llm.base_url={server.url}/v1", "--set", "llm.max_retries=0", *toy_args,
        )  # fmt: skip
    assert code == 1 and "3 LLM calls in a row" in err and server.url in err
    assert "Continue with: edas-agent run --resume" in out
    (folder,) = Path(toy_args[toy_args.index("--runs-dir") + 1]).iterdir()
    failed = read_records(folder)[1:]
    assert [r.status for r in failed] == ["failed", "failed"]
