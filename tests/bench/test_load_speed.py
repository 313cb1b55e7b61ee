"""bench/load_speed.py, whose figures are in docs/benchmarks/performance.md, still runs:
it generates a Criteo-like Parquet table, loads it fresh and from the cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "load_speed.py"


def test_the_loading_benchmark_generates_loads_and_reads_back_from_the_cache(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "3000", "--tables", str(tmp_path / "t"),
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 3,000 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["first", "cached"]
    assert (tmp_path / "t" / "criteo-like-3000.parquet").exists()
    assert any((tmp_path / "cache").iterdir())
