"""`edas-agent tune bagging` as a user runs it."""

from __future__ import annotations

import json

from tests.agent.cli.test_cli import invoke


def test_tune_bagging_prints_f_star_for_each_M(monkeypatch, capsys, table_csv):
    code, out, _ = invoke(
        monkeypatch, capsys, "tune", "bagging", "--data", str(table_csv), "--target", "label",
        "--members", "30", "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert [o["members"] for o in report["optima"]] == [2, 4, 16, 30, 50, 200]
    assert report["fields"] == 5 and len(report["measured"]) >= 2
    assert all(0.2 <= o["fraction"] <= 1 for o in report["optima"])
    code, _, err = invoke(
        monkeypatch, capsys, "tune", "bagging", "--data", str(table_csv), "--target", "label",
        "--fractions", "1,abc",
    )  # fmt: skip
    assert code == 2 and "--fractions" in err
