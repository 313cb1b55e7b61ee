"""How often the seed-noise interval of E_M covers the realised M-member error.

For each run folder, `verify --steps STEPS` (real M-member ensembles of the chosen steps'
architectures; members the run or an earlier verify trained are reused, so on folders the
disagreement audit verified it trains nothing), then per group of runs (a table) the share
of architectures whose realised validation and test errors fell inside the interval
logged at their decision (theory/seed_noise.py: from the decision learners, k = 2 with the
run's pooled spread, or their own spread where k >= 3), by the interval's source. As in
`verify`, the realised ensemble's M members include the decision learners. Not a test.

    python bench/coverage.py --members 16 --steps disagreements --group friedman RUN ... \
        --group rare RUN ... [--out coverage.json]
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from disagreements import each_run, group_options  # beside this file

from edas_agent import read_records
from edas_agent.analysis import verify


def tally(folder: Path, members: int | None, steps: str) -> dict:
    """Counts per split and interval source: architectures, covered, misses above the
    interval (realised worse than predicted), predictions below the realised error (an
    optimistic point estimate), and the same for the architectures the run adopted (its
    start and accepted steps: chosen on their validation numbers)."""
    result = verify(folder, members, steps)
    M = result["members"]
    adopted = {r.arch_hash for r in read_records(folder) if r.accepted}
    counts: Counter = Counter()
    for arch_hash, entry in result["architectures"].items():
        for split, interval in entry.get("interval", {}).items():
            realised = entry["realised"][split][M]
            key = f"{split}:{interval['source']}"
            counts[f"{key}:of"] += 1
            counts[f"{key}:covered"] += int(interval["covered"])
            counts[f"{key}:above"] += int(realised > interval["upper"])
            counts[f"{key}:optimistic"] += int(entry["predicted"][split][M] < realised)
            if arch_hash in adopted:
                counts[f"{split}:adopted:of"] += 1
                counts[f"{split}:adopted:covered"] += int(interval["covered"])
    return dict(counts)


def main() -> None:
    parser = group_options(__doc__.splitlines()[0], "coverage.json")
    parser.add_argument("--steps", default="disagreements", help="as verify --steps")
    options = parser.parse_args()
    results = each_run(options, lambda folder: tally(folder, options.members, options.steps))
    print("\n| table | runs | split | interval from | covered | share | misses above the "
          "interval | point estimate below the realised error |")  # fmt: skip
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for name in dict.fromkeys(g[0] for g in options.group):
        runs = [v for k, v in results.items() if k.split(":", 1)[0] == name]
        total: Counter = sum((Counter(r) for r in runs), Counter())
        for key in sorted(k for k in total if k.endswith(":of")):
            split, source, _ = key.split(":")
            covered, of = total[f"{split}:{source}:covered"], total[key]
            above, low = total[f"{split}:{source}:above"], total[f"{split}:{source}:optimistic"]
            direction = "- | -" if source == "adopted" else f"{above} | {low}/{of}"
            print(f"| {name} | {len(runs)} | {split} | {source} | {covered}/{of} | "
                  f"{covered / of:.2f} | {direction} |")  # fmt: skip


if __name__ == "__main__":
    main()
