"""How often the seed-noise interval of E_M covers the realised M-member error, and on which
side it misses.

For each run folder, `verify --steps STEPS` (real M-member ensembles of the chosen steps'
architectures; members the run or an earlier verify trained are reused, so a second pass
trains nothing), then per group of runs (a table) the share of architectures whose
realised validation and test errors fell inside the interval from their decision learners
(theory/seed_noise.py: the run's pooled spread shrunk towards the learners' own, and for a
candidate the gate chose, the run's measured winner's curse), the side of each miss, the
candidates the gate chose apart, and the median half-width as a share of E_M (an interval
can cover by being wide). As in `verify`, the realised ensemble's M members include the
decision learners. Not a test.

Run folders of your own:

    python bench/coverage.py --members 16 --steps all --group friedman RUN ... \
        --group rare RUN ... [--out coverage.json]

or searches made for it, `--seeds` runs of `edas-agent run --budget B --members M` per
table (one folder each under --runs-dir, reused when it is there; --first-seed splits the
seeds into pieces), each table named with the data options `edas-agent run` takes:

    python bench/coverage.py --members 16 --steps all --budget 12 --seeds 10 \
        --runs-dir bench-runs/coverage --make adult "--data adult" \
        --make waves "--data waves.csv --target y" --out coverage.json

What theory/seed_noise.py's PRIOR_DF does: edit it and run again on the same folders with
another --out (nothing is trained again).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from edas_agent import read_records
from edas_agent.analysis import verify


def tally(folder: Path, members: int | None, steps: str) -> dict:
    """Counts per split: architectures, covered, misses above the interval (realised worse
    than predicted) and below it, the same for the candidates the gate chose ("selected"),
    covered among the architectures the run adopted, and the half-widths."""
    result = verify(folder, members, steps)
    M = result["members"]
    adopted = {r.arch_hash for r in read_records(folder) if r.accepted}
    counts: Counter = Counter()
    widths: dict[str, list[float]] = {"val": [], "test": []}
    for arch_hash, entry in result["architectures"].items():
        for split, interval in entry.get("interval", {}).items():
            realised = entry["realised"][split][M]
            side = "above" if realised > interval["upper"] else (
                "below" if realised < interval["lower"] else "covered")  # fmt: skip
            groups = ["all", "selected" if interval.get("selected") else "unselected"]
            groups += ["adopted"] if arch_hash in adopted else []
            for group in groups:
                counts[f"{split}:{group}:of"] += 1
                counts[f"{split}:{group}:{side}"] += 1
            centre = (interval["upper"] + interval["lower"]) / 2
            widths[split].append((interval["upper"] - interval["lower"]) / 2 / centre)
    return {"counts": dict(counts), "half_widths": widths}


def make_runs(options: argparse.Namespace) -> list[list[str]]:
    """--make: the searches the groups are made of, run where missing."""
    groups = []
    for name, data in options.make:
        folders = []
        for seed in range(options.first_seed, options.first_seed + options.seeds):
            place = options.runs_dir / name
            found = sorted(place.glob(f"*-s{seed}")) if place.is_dir() else []
            if not found or not (found[-1] / "best.json").is_file():
                command = [
                    "edas-agent", "run", *shlex.split(data), "--budget", str(options.budget),
                    "--members", str(options.members or 16), "--seed", str(seed),
                    "--runs-dir", str(place), "--name", f"s{seed}",
                ]  # fmt: skip
                print(f"{name} seed {seed}: {shlex.join(command)}", flush=True)
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                found = sorted(place.glob(f"*-s{seed}"))
            folders.append(str(found[-1]))
        groups.append([name, *folders])
    return groups


def each_run(options: argparse.Namespace, groups: list[list[str]]) -> dict[str, dict]:
    """tally() of every group's every run, kept in --out as each finishes, so a rerun
    measures only what is missing. Keys are 'group:folder'."""
    results = json.loads(options.out.read_text()) if options.out.is_file() else {}
    for name, *folders in groups:
        for folder in folders:
            key = f"{name}:{folder}"
            if key not in results:
                results[key] = tally(Path(folder), options.members, options.steps)
                options.out.write_text(json.dumps(results, indent=1))
            print(f"{name} {folder}: done", flush=True)
    return results


def report(results: dict[str, dict], names: list[str]) -> None:
    print("\n| table | runs | split | covered | misses above (realised worse) | misses below "
          "(realised better) | chosen by the gate: covered | adopted: covered | median "
          "half-width |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        runs = [v for k, v in results.items() if k.split(":", 1)[0] == name]
        total: Counter = sum((Counter(r["counts"]) for r in runs), Counter())
        for split in ("val", "test"):
            share = _shares(total, split)
            widths = [w for r in runs for w in r["half_widths"][split]]
            print(f"| {name} | {len(runs)} | {split} | {share('all')} | "
                  f"{total[f'{split}:all:above']} | {total[f'{split}:all:below']} | "
                  f"{share('selected')} | {share('adopted')} | "
                  f"{100 * float(np.median(widths)):.2f} % |")  # fmt: skip


def _shares(total: Counter, split: str):
    def share(group: str) -> str:
        covered, of = total[f"{split}:{group}:covered"], total[f"{split}:{group}:of"]
        return f"{covered}/{of} ({covered / of:.2f})" if of else "-"

    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=None, help="M (default: each run's).")
    parser.add_argument("--steps", default="all", help="as verify --steps")
    parser.add_argument(
        "--group",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "RUN"),
        help="A group's name, then its run folders.",
    )
    parser.add_argument(
        "--make",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "DATA"),
        help="A table's name and its edas-agent run data options, quoted.",
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--runs-dir", type=Path, default=Path("bench-runs/coverage"))
    parser.add_argument("--out", type=Path, default=Path("coverage.json"))
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="Other pieces' --out files, reported with this one.")  # fmt: skip
    options = parser.parse_args()
    if not options.group and not options.make:
        parser.error("name run folders with --group or searches to make with --make")
    groups = options.group + make_runs(options)
    results = each_run(options, groups)
    for piece in options.merge:
        results.update(json.loads(piece.read_text()))
    names = [key.split(":", 1)[0] for key in results]
    report(results, list(dict.fromkeys([*(g[0] for g in groups), *names])))


if __name__ == "__main__":
    sys.exit(main())
