"""bench/early_signal.py on a tiny finished run, so it cannot rot unseen (its numbers are
measurements, not checked)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "early_signal.py"


def test_early_deltas_are_measured_for_every_fully_judged_proposal(searched, capsys):
    spec = importlib.util.spec_from_file_location("early_signal", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["early_signal"] = bench
    spec.loader.exec_module(bench)
    folder = searched(4, 0)
    bench.main([str(folder), "--fractions", "0.25", "0.5", "--keep", "0.5", "--retest"])
    out = capsys.readouterr().out
    assert "proposals judged at full fidelity" in out
    assert out.count("| 0.25 (vs other seeds: ") == 1 and out.count("| 0.5 (vs other") == 1
    assert out.count("| 1, other seeds |") == 1
