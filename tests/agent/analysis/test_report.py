from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edas_agent.analysis.report import write_report
from edas_agent.analysis.runs import list_runs
from edas_agent.analysis.verify import verify
from edas_agent.record import LOCK
from tests.agent.cli.test_cli import invoke

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_folder(monkeypatch, capsys, table_csv: Path, tmp_path: Path) -> Path:
    code, _, _ = invoke(
        monkeypatch, capsys, "run", "--budget", "6", "--data", str(table_csv), "--target", "label",
        "--runs-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert code == 0
    (folder,) = (tmp_path / "runs").iterdir()
    return folder


def test_report_writes_pngs_and_one_self_contained_page(run_folder: Path):
    verify(run_folder, members=4, steps="accepted")
    page = write_report(run_folder)
    names = ["trajectory", "frontier", "error_vs_disagreement", "cost", "verify"]
    for name in names:
        assert (run_folder / f"{name}.png").read_bytes().startswith(PNG)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == len(names)
    assert "<h2>Accepted trajectory</h2>" in text and 'src="http' not in text


def test_report_command_prints_a_summary(monkeypatch, capsys, run_folder: Path):
    code, out, _ = invoke(monkeypatch, capsys, "report", str(run_folder))
    assert code == 0 and "6 proposals" in out and "report.html" in out


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(run_folder: Path, tmp_path: Path):
    page = write_report(run_folder)
    shot = tmp_path / "shot.png"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000",
    ]  # fmt: skip
    subprocess.run(
        ["chromium", *flags, f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 50_000


def test_runs_lists_state_progress_and_best(monkeypatch, capsys, run_folder: Path):
    runs_dir = run_folder.parent
    (summary,) = list_runs(runs_dir)
    assert summary.state == "finished" and summary.steps == 6 and summary.budget == 6
    assert summary.best_E_M is not None and summary.learners > 0
    assert summary.best_E_M_plus_minus > 0  # the best E_M's seed-noise interval
    (run_folder / LOCK).write_text(str(os.getppid()))  # a live process writes it
    assert list_runs(runs_dir)[0].state == "running"
    (run_folder / LOCK).unlink()
    code, out, _ = invoke(monkeypatch, capsys, "runs", "--runs-dir", str(runs_dir))
    assert code == 0 and run_folder.name in out and "finished" in out
    shown = out.replace("\n", " ")
    if summary.best_E_M_centre is None:  # centred on the prediction
        assert f"{summary.best_E_M:.5f} ± {summary.best_E_M_plus_minus:.5f}" in shown
    else:  # moved by the run's winner's curse: its bounds
        low = summary.best_E_M_centre - summary.best_E_M_plus_minus
        assert f"{summary.best_E_M:.5f} [{low:.5f}," in shown


def test_report_states_the_run_wall_time_not_the_training_time(
    monkeypatch, capsys, run_folder: Path
):
    """A run whose records span 45 minutes (LLM calls, a pause) reports 45 minutes."""
    import json

    from edas_agent.record import TRAJECTORY

    path = run_folder / TRAJECTORY
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["time"], lines[-1]["time"] = "2026-01-01T09:00:00.000Z", "2026-01-01T09:45:00.000Z"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, _ = invoke(monkeypatch, capsys, "report", str(run_folder))
    seconds = 45 * 60 + lines[0]["cost"]["train_seconds"]
    assert code == 0 and f"{seconds:.0f} s wall time" in out


def test_a_run_where_nothing_reached_the_gate_reports_without_warnings(tmp_path: Path):
    import warnings

    from edas_agent.config import load_config
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator, ScriptedProposer, proposal

    config = load_config(None, {"budget": 2, "members": 10, "runs_dir": str(tmp_path)})
    script = ScriptedProposer(
        [proposal(problem="not JSON"), proposal({"op": "replace", "path": "/l2", "value": 1e9})]
    )
    with RunSession.start(config, lambda c: NumpyEvaluator(), script) as session:
        session.run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels" among them
        page = write_report(session.journal.folder)
    assert (session.journal.folder / "frontier.png").read_bytes().startswith(PNG)
    assert page.is_file()


def test_plots_put_what_matters_on_top_and_leave_out_empty_panels(run_folder: Path):
    from edas_agent.analysis.report import _cost, _error_vs_disagreement
    from edas_agent.record import read_records

    records = read_records(run_folder)  # a builtin run: no LLM tokens, no dollars
    labels = [axes.get_ylabel() for axes in _cost(records).axes]
    assert "LLM tokens" not in labels and "learners trained" in labels
    final = next(r for r in reversed(records) if r.accepted).carried()[0]
    (line,) = _error_vs_disagreement(records).axes[0].get_lines()
    assert f"{final.E_M:.5f} (the final baseline)" in line.get_label()
