"""How fast a round of small candidates trains, against what the cores can do.

For rounds of 1, 4, 8 and 16 candidates of the default family (the default architecture
with one or two of the builtin proposer's own mutations, drawn as it draws them), each with
2 learners, on Adult and on a generated numeric regression table (20,000 rows, 12 numeric
fields, no test uses it): learner-epochs per second and achieved GFLOP/s (the evaluator's
own training-FLOP count over the training seconds) of the round trained one candidate
after another, trained together (evaluate_together, evaluators/tabular/fused.py) with
evaluator.fuse same_shapes and padded, and side by side in worker processes, one torch
thread each (`executor.kind: processes`, --workers of them, default the cores); against
the FLOP floor of the same cores (a 2048 x 2048 float32 matrix product on the same
threads). Each way is timed --repeats times, interleaved, and the fastest kept: the
machine's own speed drifts.

    python bench/round_speed.py [--rounds 1 4 8 16] [--threads N] [--repeats 2] [--device cuda]

A benchmark, not a test: it prints what it measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jsonpatch
import numpy as np
import pandas as pd
import torch

from edas_agent import document_of
from edas_agent.config import EvaluatorSettings, ExecutorSettings
from edas_agent.evaluators import Request
from edas_agent.evaluators.tabular import DataSpec, TabularEvaluator
from edas_agent.training import TrainRequest, make_executor

WAYS = ("one at a time", "same_shapes", "padded", "processes")


def candidates(evaluator: TabularEvaluator, count: int, seed: int) -> list:
    """`count` distinct default-family architectures: the default with one or two of the
    builtin proposer's mutations (either family, uniformly)."""
    rng, found = np.random.default_rng(seed), {}
    base = document_of(evaluator.default_architecture())
    families = evaluator.mutations.diversity | evaluator.mutations.accuracy
    names, dataset = sorted(families), evaluator.describe()
    while len(found) < count:
        document = base
        for name in rng.choice(names, size=int(rng.integers(1, 3)), replace=False):
            operations = families[str(name)](document, rng, dataset)
            if operations is not None:
                document = jsonpatch.apply_patch(document, operations, in_place=False)
        try:
            architecture = evaluator.parse(document)
        except ValueError:  # an edit this table's space refuses
            continue
        found.setdefault(str(sorted(document_of(architecture).items())), architecture)
    return list(found.values())


def flop_floor(threads: int, device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large float32 matrix product on `threads` threads or the GPU (the best of
    repeats)."""
    torch.set_num_threads(threads)
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # warm up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def numeric_table(folder: Path, rows: int = 20_000, fields: int = 12) -> Path:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, fields))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 0.5 * x[:, 3] ** 2 + rng.normal(0, 0.3, rows)
    table = pd.DataFrame(x, columns=[f"x{i}" for i in range(fields)]).assign(y=y)
    path = folder / "numeric.csv"
    table.to_csv(path, index=False)
    return path


def train_round(evaluator: TabularEvaluator, architectures: list, way: str, executor) -> list:
    if way == "one at a time":
        return [evaluator.evaluate(a, 2) for a in architectures]
    if way == "processes":  # side by side, one worker process (one torch thread) per core
        results = dict(executor.run([TrainRequest(a, 2, 0) for a in architectures]))
        return [results[i] for i in range(len(architectures))]
    evaluator.settings = evaluator.settings.model_copy(update={"fuse": way})
    return [
        result for _, result in evaluator.evaluate_together([Request(a, 2) for a in architectures])
    ]


def measure(evaluator: TabularEvaluator, rounds: list[int], repeats: int, workers: int | None):
    evaluator.evaluate(evaluator.default_architecture(), 2)  # warm up: first-call costs
    executor = make_executor(evaluator, ExecutorSettings(kind="processes", workers=workers))
    warm_up = [TrainRequest(evaluator.default_architecture(), 2, 0)] * max(executor.workers, 2)
    list(executor.run(warm_up))  # the workers start (imports, data) before any clock
    rows = []
    for count in rounds:
        architectures = candidates(evaluator, count, seed=count)
        epochs = 2 * sum(a.training.epochs for a in architectures)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeats):
            for way in WAYS:
                started = time.perf_counter()
                results = train_round(evaluator, architectures, way, executor)
                seconds = time.perf_counter() - started
                # A failure: an exception (evaluate_together) or an Outcome (an executor)
                failed = [r for r in results if isinstance(r, Exception) or hasattr(r, "status")]
                if failed:
                    raise SystemExit(f"{way}: {failed[0]}")
                flops = sum(r.train_flops or 0.0 for r in results)
                if way not in best or seconds < best[way][0]:
                    best[way] = (seconds, flops)
        alone = best["one at a time"][0]
        for way, (seconds, flops) in best.items():
            rows.append({"round": count, "way": way, "learner_epochs_per_s": epochs / seconds,
                         "gflops": flops / seconds / 1e9, "seconds": seconds,
                         "speedup": alone / seconds})  # fmt: skip
    executor.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the processes way (default: the cores)",
    )
    options = parser.parse_args(argv)
    floor = flop_floor(options.threads, torch.device(options.device))
    where = f"{options.threads} threads" if options.device == "cpu" else options.device
    print(f"{where}; FLOP floor (2048^2 float32 matmul): {floor:.0f} GFLOP/s")
    settings = EvaluatorSettings(device=options.device, threads=options.threads)
    with tempfile.TemporaryDirectory() as folder:
        tables = {"Adult": DataSpec(),
                  "numeric 20,000 x 12": DataSpec(path=str(numeric_table(Path(folder))),
                                                  target="y", task="regression")}  # fmt: skip
        print("| table | round | how | learner-epochs/s | GFLOP/s | of the floor | "
              "seconds (wall, with predictions) | vs one at a time |")  # fmt: skip
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        for name, spec in tables.items():
            evaluator = TabularEvaluator(spec, settings, seed=0)
            for row in measure(evaluator, options.rounds, options.repeats, options.workers):
                print(f"| {name} | {row['round']} | {row['way']} | "
                      f"{row['learner_epochs_per_s']:.1f} | {row['gflops']:.1f} | "
                      f"1/{floor / row['gflops']:.0f} | {row['seconds']:.2f} | "
                      f"{row['speedup']:.2f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
