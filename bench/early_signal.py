"""Is there an early signal to screen on? Measured on a finished run, before you screen.

For every proposal a run judged at full fidelity, the candidate and the baseline it was
judged against are trained again to fractions of their schedules (k learners, the run's
seeds, so each stage is a prefix of what the run trained). The candidate's E_M minus the
baseline's at each fraction is then compared with the same difference at full training
(the gate's decision round): their Spearman rank correlation, and what keeping the best
share of proposals by the early difference would keep of those the gate accepted. A
benchmark that prints measurements, not a test.

    python bench/early_signal.py runs/search_value/adult/runs/*-edas-*
    python bench/early_signal.py RUN_DIR --fractions 0.0625 0.25 --keep 0.25 0.5

Multi-fidelity screening (`screening.enabled`) pays only when a cheap stage's precision
(accepted among kept) rises enough to cover what the stage costs: with a stage at f and a
share q kept, a full evaluation costs 1 + f / q - f learners' worth per learner instead of
1 (a survivor goes on from its stage).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edas_agent import build_evaluator, load_config, read_records
from edas_agent.fidelity import spearman
from edas_agent.theory import statistics


def early_and_final_deltas(
    folder: Path, fractions: tuple[float, ...], retest: bool = False
) -> list[tuple]:
    """(early deltas per fraction, final delta, accepted at decision) per judged proposal.
    With `retest`, the early deltas end with a full training of k other learners (seeds the
    run did not use): how well the gate's own measurement repeats, the ceiling for any
    cheap signal."""
    config = load_config(folder / "config.yaml", {})
    evaluator = build_evaluator(config)
    records = read_records(folder)
    documents = {r.arch_hash: r.architecture for r in records if r.architecture}
    k = config.evaluator.learners
    staged: dict[str, list[float]] = {}

    def stages(arch_hash: str) -> list[float]:
        if arch_hash not in staged:
            architecture = evaluator.parse(documents[arch_hash])
            trained = evaluator.evaluate_staged(architecture, k, 0, fractions)
            predictions = list(trained.val_predictions)
            if retest:
                predictions.append(evaluator.evaluate(architecture, k, first=k).val_predictions)
            staged[arch_hash] = [
                statistics(v, evaluator.y_val, config.members).E_M for v in predictions
            ]
        return staged[arch_hash]

    rows = []
    for record in records:
        if record.event != "proposal" or not record.rounds or record.cached_from is not None:
            continue
        assert record.baseline is not None and record.arch_hash is not None
        base, mine = stages(record.baseline.arch_hash), stages(record.arch_hash)
        decision = record.rounds[0]
        final = decision.stats.E_M - record.baseline.stats.E_M
        rows.append(([m - b for m, b in zip(mine, base, strict=True)], final, decision.accepted))
    return rows


def summary(
    rows: list[tuple], fractions: tuple[float, ...], keeps: tuple[float, ...], retest: bool = False
) -> str:
    """The table; with `retest`, each row's early deltas end with the other seeds' full one."""
    if len(rows) < 3:
        return f"{len(rows)} proposals judged at full fidelity: too few to measure anything"
    early = np.array([r[0] for r in rows])
    final = np.array([r[1] for r in rows])
    accepted = np.array([r[2] for r in rows])
    labels = [f"{fraction:.3g}" for fraction in fractions]
    if retest:
        # against a full training that shares none of its seeds: the architecture's signal
        # without the seed luck an early stage shares with the gate's learners
        for column, label in enumerate(labels):
            apart = spearman(list(zip(early[:, column], early[:, -1], strict=True)))
            labels[column] = f"{label} (vs other seeds: {apart:.2f})"
        labels.append("1, other seeds")
    lines = [
        f"{len(rows)} proposals judged at full fidelity, {accepted.sum()} accepted at decision "
        f"(base rate {accepted.mean():.2f})",
        "",
        "| fraction | Spearman(early dE_M, final dE_M) | kept share | accepted kept | precision |",
        "|---:|---:|---:|---:|---:|",
    ]
    for column, label in enumerate(labels):
        rho = spearman(list(zip(early[:, column], final, strict=True)))
        for keep in keeps:
            kept = early[:, column] <= np.quantile(early[:, column], keep)
            lines.append(
                f"| {label} | {rho:.2f} | {keep:.0%} | "
                f"{accepted[kept].sum()}/{accepted.sum()} | {accepted[kept].mean():.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="Finished run folders.")
    parser.add_argument("--fractions", nargs="+", type=float, default=[1 / 9, 1 / 3])
    parser.add_argument("--keep", nargs="+", type=float, default=[1 / 3, 1 / 2])
    parser.add_argument(
        "--retest",
        action="store_true",
        help="Also train every architecture fully with k other seeds: the ceiling.",
    )
    options = parser.parse_args(argv)
    fractions = tuple(options.fractions)
    rows = []
    for folder in options.runs:
        rows += early_and_final_deltas(folder, fractions, options.retest)
        print(f"{folder}: {len(rows)} proposals so far", flush=True)
    print(summary(rows, fractions, tuple(options.keep), options.retest))


if __name__ == "__main__":
    main()
