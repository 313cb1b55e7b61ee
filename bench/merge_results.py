"""Pool bench/search_value.py results run in pieces (--first-seed) into one table: each
arm's realised error, its paired difference from edas over every seed with the 90 %
Student t interval, and its compute. A benchmark's arithmetic, not a test.

    python bench/merge_results.py runs/search_value/piece-a runs/search_value/piece-b

Pieces run with --also get a second table, at equal compute in that currency.

With --verdict, one row per table instead, each arm's paired difference from edas and the
seeds it was better on (the verdict table of docs/pages/benchmarks/search-value.md):

    python bench/merge_results.py --verdict --arms random,optuna-tpe \
        "Friedman #1=OUT_A,OUT_B" "rare positives=OUT_C,OUT_D"

--write DIR writes the pooled rows to DIR/results.json (the first piece's options), which
`python bench/search_value.py --redraw --out DIR` turns into one table and plot.

--also judges the verdict at equal compute in the pieces' --also currency. --reference ARM
compares with ARM instead of edas in the pieces that ran it, leaving their own edas rows out:
for pieces run while ARM was an alternative that has since become the default (the pieces
of 2026-12-07 ran `learners-4` beside a two-learner `edas`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from search_value_tables import _interval  # beside this file


def pooled(folders: list[Path], reference: str | None = None) -> list[dict]:
    rows: list[dict] = []
    for folder in folders:
        rows += as_reference(json.loads((folder / "results.json").read_text())["rows"], reference)
    seeds = [r["seed"] for r in rows if r["arm"] == "edas"]
    if len(seeds) != len(set(seeds)):
        sys.exit("the pieces share seeds: each seed must come from one piece")
    return rows


def as_reference(rows: list[dict], reference: str | None) -> list[dict]:
    """One piece's rows with `reference` as edas, where the piece ran it."""
    if reference is None or not any(r["arm"] == reference for r in rows):
        return rows
    kept = [r for r in rows if r["arm"] != "edas"]
    return [{**r, "arm": "edas"} if r["arm"] == reference else r for r in kept]


def at_also(rows: list[dict]) -> list[dict]:
    """The rows as judged at equal compute in --also's currency (pieces run with --also),
    for the same table; [] when a row was not."""
    if not rows or any("also" not in r for r in rows):
        return []
    return [{**r, "final_error": r["also"]["final_error"]} for r in rows]


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


def verdict(
    tables: dict[str, list[Path]],
    arms: list[str],
    level: float = 0.9,
    reference: str | None = None,
    also: bool = False,
) -> str:
    """Per table (its pieces), per arm: its realised error minus edas's, paired by seed,
    with the 90 % interval and the seeds it was better on; '-' where it was not run."""
    lines = [
        "| table | seeds | " + " | ".join(f"{arm} minus edas [{level:.0%}], better" for arm in arms)
        + " |",
        "|---|---:|" + "---|" * len(arms),
    ]  # fmt: skip
    for name, folders in tables.items():
        rows = pooled(folders, reference)
        if also and not (rows := at_also(rows)):
            sys.exit(f"{name}: a piece ran without --also")
        edas = {r["seed"]: r["final_error"] for r in rows if r["arm"] == "edas"}
        cells = []
        for arm in arms:
            versus = np.array([r["final_error"] - edas[r["seed"]] for r in rows
                               if r["arm"] == arm and r["seed"] in edas])  # fmt: skip
            if len(versus) < 2:
                cells.append("-")
                continue
            cells.append(f"{versus.mean():+.5f} {_interval(versus, level)}, "
                         f"{int((versus < 0).sum())}/{len(versus)}")  # fmt: skip
        lines.append(f"| {name} | {len(edas)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(rows: list[dict], first: Path, folder: Path) -> None:
    result = json.loads((first / "results.json").read_text())
    seeds = sorted({r["seed"] for r in rows})
    result["options"].update(seeds=seeds, arms=list(dict.fromkeys(r["arm"] for r in rows)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({**result, "rows": rows}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pieces", nargs="+", help="piece folders; with --verdict NAME=DIR,DIR")
    parser.add_argument("--verdict", action="store_true", help="one row per table")
    parser.add_argument("--arms", default="", help="--verdict: comma-separated arms")
    parser.add_argument("--also", action="store_true", help="--verdict in the --also currency")
    parser.add_argument("--reference", help="this arm as edas, in the pieces that ran it")
    parser.add_argument("--write", type=Path, help="the pooled results.json into this folder")
    args = parser.parse_args()
    if args.verdict:
        tables = {}
        for spec in args.pieces:
            name, _, folders = spec.partition("=")
            tables[name] = [Path(f) for f in folders.split(",")]
        print(verdict(tables, args.arms.split(","), reference=args.reference, also=args.also))
        return
    rows = pooled([Path(p) for p in args.pieces], args.reference)
    if args.write:
        write(rows, Path(args.pieces[0]), args.write)
    print(table(rows))
    if also := at_also(rows):
        unit = rows[0]["also"].get("unit", "the second currency")
        print(f"\nAt equal {unit} (--also): each arm's incumbent at the edas arm's {unit}\n")
        print(table(also))


if __name__ == "__main__":
    main()
