"""Where the ensemble rule and the single-learner rule disagree, who is right? Pooled over
many runs: for each run folder, `verify --steps disagreements` (real M-member ensembles of
every such candidate and its baseline, on learner seeds the run already trained or fresh
ones beyond them), then per group of runs (a table) the share of disagreements the
realised test ensembles sided with the ensemble rule, with a 90 % interval from a bootstrap
over runs (a run's decisions share baselines, so runs are the independent units). Not a
test: it trains M members of every disagreeing architecture, minutes per run.

    python bench/disagreements.py --members 16 --group friedman RUN RUN ... \
        --group rare RUN RUN ... [--out disagreements.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edas_agent.analysis import sided_with, verify


def audit(folder: Path, members: int | None) -> dict[str, int]:
    verified = verify(folder, members, "disagreements")
    return sided_with(verified["decisions"], "test")


def pooled(counts: list[dict[str, int]], resamples: int = 10_000) -> dict[str, float]:
    exact = np.array([c["exact"] for c in counts], dtype=float)
    total = np.array([c["disagreements"] for c in counts], dtype=float)
    rng = np.random.default_rng(0)
    picks = rng.integers(len(counts), size=(resamples, len(counts)))
    totals = total[picks].sum(axis=1)
    shares = exact[picks].sum(axis=1) / np.where(totals > 0, totals, np.nan)
    low, high = np.nanpercentile(shares, [5, 95])
    return {
        "runs": len(counts),
        "disagreements": int(total.sum()),
        "exact": int(exact.sum()),
        "single": int(sum(c["single"] for c in counts)),
        "share_exact": float(exact.sum() / max(total.sum(), 1)),
        "low": low,
        "high": high,
    }


def group_options(description: str, out: str) -> argparse.ArgumentParser:
    """--members, --group NAME RUN ... (repeated), --out: what a benchmark over groups of
    run folders (one group per table) takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--members", type=int, default=None, help="M (default: each run's).")
    parser.add_argument(
        "--group", nargs="+", action="append", required=True, metavar=("NAME", "RUN"),
        help="A group's name, then its run folders.",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(out))
    return parser


def each_run(options: argparse.Namespace, measure) -> dict[str, dict]:
    """measure(folder) of every group's every run, kept in --out as each finishes, so a
    rerun measures only what is missing. Keys are 'group:folder'."""
    results = json.loads(options.out.read_text()) if options.out.is_file() else {}
    for name, *folders in options.group:
        for folder in folders:
            key = f"{name}:{folder}"
            if key not in results:
                results[key] = measure(Path(folder))
                options.out.write_text(json.dumps(results, indent=1))
            print(f"{name} {folder}: {results[key]}", flush=True)
    return results


def main() -> None:
    options = group_options(__doc__.splitlines()[0], "disagreements.json").parse_args()
    results = each_run(options, lambda folder: audit(folder, options.members))
    print(
        "\n| table | runs | disagreements | sided with the ensemble rule | with the "
        "single-learner rule | share ensemble [90 % interval, bootstrap over runs] |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for name in dict.fromkeys(g[0] for g in options.group):
        p = pooled([v for k, v in results.items() if k.split(":", 1)[0] == name])
        print(f"| {name} | {p['runs']} | {p['disagreements']} | {p['exact']} | {p['single']} | "
              f"{p['share_exact']:.2f} [{p['low']:.2f}, {p['high']:.2f}] |")  # fmt: skip


if __name__ == "__main__":
    main()
