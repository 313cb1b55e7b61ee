"""How fast a round of small candidates trains, against what the cores can do.

For rounds of 1, 4, 8 and 16 candidates of the default family (the default architecture
with one or two of the edits the builtin proposer makes: widths, layers, epochs, dropout,
cross layers, embedding size), each with 2 learners, trained as the search trains them
today (one candidate after another), on Adult and on a generated numeric regression table
(20,000 rows, 12 numeric fields, no test uses it): learner-epochs per second and achieved
GFLOP/s (the evaluator's own training-FLOP count over the training seconds), against the
FLOP floor of the same cores (a 2048 x 2048 float32 matrix product on the same threads).

    python bench/round_speed.py [--rounds 1 4 8 16] [--threads N]

Issue 45 asks a round of 8 to train at least 4 times the learner-epochs per second of the
same candidates one at a time, once their learners are fused into one program: this is the
"one at a time" side, and the floor. A benchmark, not a test: it prints what it measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from edas_agent import document_of
from edas_agent.config import EvaluatorSettings
from edas_agent.evaluators.tabular import DataSpec, TabularEvaluator

# One edit each, as the builtin proposer's mutations make them (JSON Patch on the document)
EDITS = [
    ("/tower/widths", [128, 64]), ("/tower/widths", [32, 16]), ("/tower/widths", [64, 32, 16]),
    ("/tower/dropout", 0.1), ("/tower/dropout", 0.3), ("/training/epochs", 2),
    ("/training/epochs", 4), ("/cross/layers", 1), ("/cross/layers", 2),
    ("/embeddings/dim", 4), ("/embeddings/dim", 16), ("/tower/activation", "silu"),
]  # fmt: skip


def candidates(evaluator: TabularEvaluator, count: int, seed: int) -> list:
    """`count` distinct default-family architectures: the default with one or two edits."""
    rng, found = np.random.default_rng(seed), {}
    base = document_of(evaluator.default_architecture())
    while len(found) < count:
        document = {key: dict(value) if isinstance(value, dict) else value
                    for key, value in base.items()}  # fmt: skip
        for index in rng.choice(len(EDITS), size=int(rng.integers(1, 3)), replace=False):
            path, value = EDITS[index]
            section, key = path.strip("/").split("/")
            document[section] = {**document[section], key: value}
        try:
            architecture = evaluator.parse(document)
        except ValueError:  # an edit this table's space refuses
            continue
        found.setdefault(str(sorted(document_of(architecture).items())), architecture)
    return list(found.values())


def flop_floor(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large float32 matrix product on `threads` threads (the best of repeats)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
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


def measure(evaluator: TabularEvaluator, rounds: list[int]) -> list[dict]:
    evaluator.evaluate(evaluator.default_architecture(), 2)  # warm up: first-call costs
    rows = []
    for count in rounds:
        epochs = seconds = flops = 0.0
        for architecture in candidates(evaluator, count, seed=count):
            evaluation = evaluator.evaluate(architecture, 2)
            epochs += evaluation.learners * architecture.training.epochs
            seconds += evaluation.train_seconds
            flops += evaluation.train_flops or 0.0
        rows.append({"round": count, "learner_epochs_per_s": epochs / seconds,
                     "gflops": flops / seconds / 1e9, "seconds": seconds})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    options = parser.parse_args(argv)
    floor = flop_floor(options.threads)
    print(f"{options.threads} threads; FLOP floor (2048^2 float32 matmul): {floor:.0f} GFLOP/s")
    settings = EvaluatorSettings(device="cpu", threads=options.threads)
    with tempfile.TemporaryDirectory() as folder:
        tables = {"Adult": DataSpec(),
                  "numeric 20,000 x 12": DataSpec(path=str(numeric_table(Path(folder))),
                                                  target="y", task="regression")}  # fmt: skip
        print("| table | round | learner-epochs/s | GFLOP/s | of the floor | training s |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, spec in tables.items():
            evaluator = TabularEvaluator(spec, settings, seed=0)
            for row in measure(evaluator, options.rounds):
                print(f"| {name} | {row['round']} | {row['learner_epochs_per_s']:.1f} | "
                      f"{row['gflops']:.1f} | 1/{floor / row['gflops']:.0f} | "
                      f"{row['seconds']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
