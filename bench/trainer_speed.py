"""Trainer throughput: batched k learners vs one learner vs sequential, and vs DeepCTR-Torch.

Prints measured numbers; it is a benchmark, not a test. DeepCTR-Torch is only needed here:

    pip install deepctr-torch requests scikit-learn tqdm "torch==2.13.0"
    python bench/trainer_speed.py [--quick]

On a GPU (`--device cuda --learners-table`, what bench/gpu_check.sh runs): k = 1, 2, 4, 8
learners per candidate, float32 and bf16 autocast, on Adult and on 1,000,000 synthetic
rows, throughput in training rows x learners per second (CUDA synchronised before each
clock read), with the peak GPU memory.

Adult timings are the fastest of 5 runs, the larger sets single runs. Both libraries train the
same model on the same encoded data: DeepFM (FM + tower 256-128)
and DCN-v2 (two full-rank cross layers + tower 128-128), embedding size 8, one epoch, batch
512, Adam; DeepCTR's own linear part and regularisers are left at their defaults (they add
a little work on its side). Throughput is training rows x learners per second.
"""

from __future__ import annotations

import argparse
import time

import torch

from edas_agent.evaluators.tabular import (
    Architecture,
    DataSpec,
    EncodedDataset,
    load,
    train_learners,
)

DEVICE = torch.device("cpu")
MODELS = {
    "DeepFM": {"fm": {"enabled": True}, "tower": {"widths": [256, 128]}},
    "DCN-v2": {"cross": {"layers": 2}, "tower": {"widths": [128, 128]}},
}
RECIPE = {"optimizer": "adam", "lr": 1e-3, "epochs": 1, "batch_size": 512, "weight_decay": 0.0}


def architecture(model: str) -> Architecture:
    return Architecture.model_validate(
        {**MODELS[model], "training": RECIPE, "embeddings": {"dim": 8}}
    )


REPEATS = 5


def best_seconds(run, repeats: int = REPEATS) -> float:
    """Fastest of `repeats` runs. On a shared 2-core machine identical runs differ by up to
    2x; the fastest is the cost with the least interference, for both libraries alike."""
    return min(run() for _ in range(repeats))


def ours(
    arch: Architecture, data: EncodedDataset, k: int, repeats: int = REPEATS,
    precision: str = "fp32",
) -> float:  # fmt: skip
    def run() -> float:
        _synchronise()
        started = time.perf_counter()
        train_learners(arch, data, list(range(k)), DEVICE, precision=precision)
        _synchronise()
        return time.perf_counter() - started

    return best_seconds(run, repeats)


def deepctr(model: str, data: EncodedDataset, repeats: int = REPEATS) -> float:
    return best_seconds(lambda: _deepctr_once(model, data), repeats)


def _deepctr_once(model: str, data: EncodedDataset) -> float:
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import DCN, DeepFM

    columns = [
        SparseFeat(name, vocabulary_size=card, embedding_dim=8)
        for name, card in zip(data.categorical_fields, data.cardinalities, strict=True)
    ] + [DenseFeat(name, 1) for name in data.numeric_fields]
    train = data.train
    x = {name: train.categorical[:, i].numpy() for i, name in enumerate(data.categorical_fields)}
    numeric = train.numeric["standard"].numpy()
    x.update({name: numeric[:, i] for i, name in enumerate(data.numeric_fields)})
    y = train.y.numpy()
    if model == "DeepFM":
        net = DeepFM(columns, columns, dnn_hidden_units=(256, 128), device="cpu")
    else:
        net = DCN(columns, columns, cross_num=2, cross_parameterization="matrix",
                  dnn_hidden_units=(128, 128), device="cpu")  # fmt: skip
    net.compile("adam", "binary_crossentropy")
    started = time.perf_counter()
    net.fit(x, y, batch_size=512, epochs=1, verbose=0)
    return time.perf_counter() - started


def rate(rows: int, learners: int, seconds: float) -> str:
    return f"{rows * learners / seconds:>12,.0f} rows*learners/s"


def candidate_costs(data: EncodedDataset) -> None:
    print(f"\n## Per candidate on {data.name}: k = 2 batched vs one learner vs two in sequence")
    for model in MODELS:
        arch = architecture(model)
        ours(arch, data, 1)  # warm-up
        one = ours(arch, data, 1)
        both = ours(arch, data, 2)
        print(
            f"{model:7s} one learner {one:6.2f} s | k=2 batched {both:6.2f} s "
            f"({both / one:.2f}x one) | two sequential {2 * one:6.2f} s"
        )


def against_deepctr(data: EncodedDataset) -> None:
    rows = len(data.train)
    repeats = REPEATS if rows < 100_000 else 1
    print(f"\n## Throughput vs DeepCTR-Torch on {data.name} ({rows:,} training rows, 1 epoch)")
    for model in MODELS:
        arch = architecture(model)
        mine1, mine2 = ours(arch, data, 1, repeats), ours(arch, data, 2, repeats)
        theirs = deepctr(model, data, repeats)
        print(f"{model:7s} DeepCTR-Torch 1 learner  {theirs:7.2f} s {rate(rows, 1, theirs)}")
        print(f"{model:7s} ours          1 learner  {mine1:7.2f} s {rate(rows, 1, mine1)}  "
              f"{theirs / mine1:.1f}x")  # fmt: skip
        print(f"{model:7s} ours          2 learners {mine2:7.2f} s {rate(rows, 2, mine2)}  "
              f"{2 * theirs / mine2:.1f}x per learner")  # fmt: skip


def scaling(quick: bool) -> None:
    print("\n## How the cost grows (DeepFM, synthetic data, 1 epoch)")
    arch = architecture("DeepFM")
    sizes = (50_000, 200_000) if quick else (100_000, 300_000, 1_000_000)
    for rows in sizes:
        data = load(DataSpec(path=f"synthetic:{rows}"), seed=0)
        seconds = ours(arch, data, 2, repeats=1)
        print(f"rows {rows:>9,}  k=2  {seconds:7.2f} s {rate(len(data.train), 2, seconds)}")
    base = load(DataSpec(path=f"synthetic:{sizes[0]}"), seed=0)
    for k in (1, 2, 4, 8):
        seconds = ours(arch, base, k, repeats=1)
        print(f"k {k}  rows {sizes[0]:,}  {seconds:7.2f} s {rate(len(base.train), k, seconds)}")
    for fields in (10, 20, 39):
        subset = load(DataSpec(path=f"synthetic:{sizes[0]}:{fields}"), seed=0)
        seconds = ours(arch, subset, 2, repeats=1)
        print(f"fields {fields:>2}  rows {sizes[0]:,}  k=2  {seconds:7.2f} s")


def _synchronise() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def learners_table(rows: int) -> None:
    """Rows x learners per second for k = 1, 2, 4, 8, float32 and bf16, two models."""
    print("\n## Learners per candidate (1 epoch, batch 512; fastest of 3 after a warm-up)")
    print("| data | model | precision | k | seconds | rows x learners / s | peak GPU GB |")
    print("|---|---|---|---:|---:|---:|---:|")
    for data in (load(DataSpec(), seed=0), load(DataSpec(path=f"synthetic:{rows}"), seed=0)):
        for model in MODELS:
            arch = architecture(model)
            for precision in ("fp32", "bf16"):
                ours(arch, data, 1, repeats=1, precision=precision)  # warm-up, kernels chosen
                for k in (1, 2, 4, 8):
                    if DEVICE.type == "cuda":
                        torch.cuda.reset_peak_memory_stats()
                    seconds = ours(arch, data, k, repeats=3, precision=precision)
                    peak = torch.cuda.max_memory_allocated() / 1e9 if DEVICE.type == "cuda" else 0
                    throughput = len(data.train) * k / seconds
                    print(f"| {data.name} | {model} | {precision} | {k} | {seconds:.2f} | "
                          f"{throughput:,.0f} | {peak:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    global DEVICE
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller synthetic sets")
    parser.add_argument("--no-deepctr", action="store_true")
    parser.add_argument("--adult-only", action="store_true", help="skip the synthetic sets")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--learners-table", type=int, metavar="ROWS", nargs="?", const=1_000_000,
        help="only the k x precision table, on Adult and ROWS synthetic rows",
    )  # fmt: skip
    args = parser.parse_args()
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cpu":
        torch.set_num_threads(2)
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {name}")
    if args.learners_table:
        learners_table(args.learners_table)
        return
    adult = load(DataSpec(), seed=0)
    candidate_costs(adult)
    if not args.no_deepctr:
        against_deepctr(adult)
    if args.adult_only:
        return
    if not args.no_deepctr:
        big = load(DataSpec(path="synthetic:200000" if args.quick else "synthetic:1000000"), seed=0)
        against_deepctr(big)
    scaling(args.quick)


if __name__ == "__main__":
    main()
