"""Pool bench/search_value.py results run in pieces (--first-seed) into one table: each
arm's realised error, its paired difference from edas over every seed with the 90 %
Student t interval, and its compute. A benchmark's arithmetic, not a test.

    python bench/merge_results.py runs/search_value/piece-a runs/search_value/piece-b
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from search_value_tables import _interval  # beside this file


def pooled(folders: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for folder in folders:
        rows += json.loads((folder / "results.json").read_text())["rows"]
    seeds = [r["seed"] for r in rows if r["arm"] == "edas"]
    if len(seeds) != len(set(seeds)):
        sys.exit("the pieces share seeds: each seed must come from one piece")
    return rows


def table(rows: list[dict], level: float = 0.9) -> str:
    edas = {r["seed"]: r for r in rows if r["arm"] == "edas"}
    lines = [
        f"| arm | seeds | realised test error | improvement over start | minus edas, paired "
        f"[{level:.0%} interval] | seeds better than edas | training TFLOP | proposals |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm and r["seed"] in edas]
        final = np.array([r["final_error"] for r in mine])
        gain = np.array([1 - r["final_error"] / r["start_error"] for r in mine]) * 100
        versus = np.array([r["final_error"] - edas[r["seed"]]["final_error"] for r in mine])
        paired = "-"
        if arm != "edas" and len(versus) > 1:
            paired = f"{versus.mean():+.5f} {_interval(versus, level)}"
        better = "-" if arm == "edas" else f"{int((versus < 0).sum())}/{len(versus)}"
        tflop = np.mean([r.get("train_tflop", float("nan")) for r in mine])
        proposals = np.mean([r["proposals"] for r in mine])
        lines.append(
            f"| {arm} | {len(mine)} | {final.mean():.5f} ± {final.std(ddof=1):.5f} | "
            f"{gain.mean():.1f} ± {gain.std(ddof=1):.1f} % | {paired} | {better} | "
            f"{tflop:.3g} | {proposals:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(pooled([Path(p) for p in sys.argv[1:]])))
