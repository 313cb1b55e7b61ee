"""bf16 autocast against float32: its effect on E, D and the gate's decisions.

Prints measured numbers; it is a benchmark, not a test. Takes the decisions of a finished
float32 run (each proposal against its baseline), trains both architectures' learners
again under each precision (same seeds, same data) and compares: E and D per architecture
(relative difference), E_M at the run's M, and whether the exact rule (E_M of the
candidate below the baseline's) decides the same way. The floor and confirmation are left
out: what is measured is what the precision does to the statistics.

    python bench/precision_effect.py RUN_FOLDER [--proposals 20] [--device cuda]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edas_agent import build_evaluator, load_config
from edas_agent.record import read_records
from edas_agent.theory import statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--proposals", type=int, default=20, help="the run's first N proposals")
    parser.add_argument("--learners", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()
    config = load_config(options.run / "config.yaml", {})
    records = read_records(options.run)
    proposals = [r for r in records if r.event == "proposal" and r.stats and r.baseline]
    proposals = proposals[: options.proposals]
    by_step = {r.step: r for r in records}

    def with_precision(precision: str):
        settings = {"precision": precision, "device": options.device}
        evaluator_settings = config.evaluator.model_copy(update=settings)
        return build_evaluator(config.model_copy(update={"evaluator": evaluator_settings}))

    evaluators = {precision: with_precision(precision) for precision in ("fp32", "bf16")}
    stats: dict[tuple[str, str], object] = {}

    def judged(precision: str, record) -> object:
        key = (precision, record.arch_hash)
        if key not in stats:
            evaluator = evaluators[precision]
            evaluation = evaluator.evaluate(evaluator.parse(record.architecture), options.learners)
            stats[key] = statistics(evaluation.val_predictions, evaluator.y_val, config.members)
        return stats[key]

    agree, relative_e, relative_d, relative_em = 0, [], [], []
    print("| step | E fp32 | E bf16 | D fp32 | D bf16 | decision fp32 | decision bf16 |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for record in proposals:
        baseline = by_step[record.baseline.step]
        decisions = []
        for precision in ("fp32", "bf16"):
            candidate, base = judged(precision, record), judged(precision, baseline)
            decisions.append(candidate.E_M < base.E_M)
        a, b = judged("fp32", record), judged("bf16", record)
        relative_e.append(abs(b.E - a.E) / a.E)
        relative_d.append(abs(b.D - a.D) / max(a.D, 1e-12))
        relative_em.append(abs(b.E_M - a.E_M) / a.E_M)
        agree += decisions[0] == decisions[1]
        print(f"| {record.step} | {a.E:.5f} | {b.E:.5f} | {a.D:.5f} | {b.D:.5f} | "
              f"{'accept' if decisions[0] else 'reject'} | "
              f"{'accept' if decisions[1] else 'reject'} |", flush=True)  # fmt: skip
    print(f"\n{len(proposals)} decisions, {len(stats) // 2} architectures, k = {options.learners}, "
          f"device {options.device}, data {config.evaluator.data.path}")  # fmt: skip
    for name, values in (("E", relative_e), ("D", relative_d), ("E_M", relative_em)):
        print(f"|bf16 - fp32| / fp32 of {name}: median {np.median(values):.4f}, "
              f"max {np.max(values):.4f}")  # fmt: skip
    print(f"same decision (exact rule, no floor): {agree} of {len(proposals)}")


if __name__ == "__main__":
    main()
