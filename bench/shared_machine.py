"""Two searches on one machine: does each still finish in reasonable time?

Runs `edas-agent run --budget B` (the default search on Adult) alone, then two at once,
each in its own process, and prints each run's wall seconds and its ratio to the run
alone. A run that passes --timeout is killed and reported as "over". The settings under
test are environment variables and --set options, applied to every run:

    python bench/shared_machine.py --budget 15                      # today's defaults
    python bench/shared_machine.py --budget 15 --env OMP_WAIT_POLICY=ACTIVE
    python bench/shared_machine.py --budget 15 --set evaluator.threads=1

`--trainings` measures the cause instead, without the search: one training of the default
architecture's 2 learners (3 epochs on Adult), fastest of 3, in one process and in two at
once, on 1 and on 2 threads each (the environment's OMP settings apply).

A benchmark, not a test: it prints measured ratios. Run it on an otherwise quiet machine
(it is the machine's sharing it measures), and name the machine when quoting it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def launch(budget: int, runs_dir: Path, name: str, sets: list[str], env: dict[str, str]):
    command = [sys.executable, "-m", "edas_agent", "run", "--budget", str(budget),
               "--runs-dir", str(runs_dir), "--name", name]  # fmt: skip
    for item in sets:
        command += ["--set", item]
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def together(count: int, options: argparse.Namespace, env: dict[str, str]) -> list[float | None]:
    """Wall seconds of `count` runs started at once (None: killed at the timeout)."""
    with tempfile.TemporaryDirectory() as runs:
        started = time.perf_counter()
        running = [launch(options.budget, Path(runs), f"run{i}", options.set or [], env)
                   for i in range(count)]  # fmt: skip
        seconds: list[float | None] = [None] * count
        while any(p.poll() is None for p in running):
            elapsed = time.perf_counter() - started
            for i, process in enumerate(running):
                if process.poll() is not None and seconds[i] is None:
                    seconds[i] = elapsed
            if elapsed > options.timeout:
                for process in running:
                    process.kill()
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        for i, process in enumerate(running):
            process.wait()
            if seconds[i] is None and process.returncode == 0:
                seconds[i] = elapsed
            elif process.returncode not in (0, -9):
                raise RuntimeError(f"run {i} failed: {process.stderr.read()[-2000:]}")
    return seconds


def time_trainings(threads: int, repeats: int = 3) -> float:
    """Fastest of `repeats` trainings of the default architecture's 2 learners (child)."""
    import torch

    from edas_agent.evaluators.tabular import Architecture, DataSpec, load, train_learners

    torch.set_num_threads(threads)
    data, times = load(DataSpec(), seed=0), []
    for _ in range(repeats):
        started = time.perf_counter()
        train_learners(Architecture(), data, [0, 1], torch.device("cpu"))
        times.append(time.perf_counter() - started)
    return min(times)


def trainings_table(env: dict[str, str]) -> None:
    for threads in (2, 1):
        for count in (1, 2):
            command = [sys.executable, __file__, "--time-trainings", str(threads)]
            children = [subprocess.Popen(command, env={**os.environ, **env}, text=True,
                                         stdout=subprocess.PIPE) for _ in range(count)]  # fmt: skip
            seconds = [float(child.communicate()[0]) for child in children]
            print(
                f"{threads} thread(s), {count} process(es) at once: "
                + ", ".join(f"{s:.2f} s" for s in seconds)
            )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=15, help="Proposals per run.")
    parser.add_argument("--env", action="append", help="KEY=VALUE for every run's process.")
    parser.add_argument("--set", action="append", help="Config override for every run.")
    parser.add_argument("--timeout", type=float, default=300.0, help="Kill runs after this.")
    parser.add_argument("--out", type=Path, help="Write the measurements here as JSON.")
    parser.add_argument("--trainings", action="store_true", help="Trainings alone and in pairs.")
    parser.add_argument("--time-trainings", type=int, help=argparse.SUPPRESS)  # a child
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    env = dict(item.split("=", 1) for item in options.env or [])
    if options.time_trainings:
        print(time_trainings(options.time_trainings))
        return
    if options.trainings:
        trainings_table(env)
        return
    alone = together(1, options, env)[0]
    pair = together(2, options, env)
    result = {"budget": options.budget, "env": env, "sets": options.set or [],
              "cpus": os.cpu_count(), "alone_s": alone, "side_by_side_s": pair}  # fmt: skip
    print(
        f"budget {options.budget}, env {env or 'as given'}, sets {options.set or []}, "
        f"{os.cpu_count()} cpus"
    )
    print(f"alone: {alone:.1f} s" if alone else f"alone: over {options.timeout:.0f} s")
    for i, seconds in enumerate(pair):
        if seconds is None or alone is None:
            print(f"side by side, run {i}: over {options.timeout:.0f} s (killed)")
        else:
            print(f"side by side, run {i}: {seconds:.1f} s, {seconds / alone:.2f} x alone")
    if options.out:
        options.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
