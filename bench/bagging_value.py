"""Is the closed-form f*(M) right? Predicted against realised ensembles on a grid of bagging
fractions. Not a test: it trains `--members` learners at every grid fraction.

For one architecture (the built-in default) on one table, `tune_bagging` measures two
learners at its few fractions and predicts E_M(f) and f*(M). Then, at every whole number of
fields kept from the smallest measured fraction up to all of them (at most `--grid`
fractions, evenly spaced), `--members` fresh learners (seeds no prediction used) give the
realised M-member error for M in `--sizes`, on validation (where the prediction is made)
and test. Reported per M: predicted vs realised E_M at each grid fraction, the realised
error at the predicted f* (nearest grid point) minus the best grid point's (regret) and
minus f = 1's (the gain over not bagging; negative: bagging at f* helped).

    python bench/bagging_value.py --data adult --out bagging-adult.json
    python bench/bagging_value.py --data synthetic:50000 --out bagging-synthetic.json
    python bench/bagging_value.py --data rare.csv --target label --out bagging-rare.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edas_agent import build_evaluator, load_config
from edas_agent.continuous import BaggingFit, tune_bagging
from edas_agent.theory import residuals

FRESH = 10_000  # first learner index of the realised members: no prediction used these


def realised(predictions: np.ndarray, y: np.ndarray, M: int) -> float:
    """Mean over disjoint M-member groups of the averaged ensemble's squared error."""
    groups = predictions.shape[0] // M
    errors = [np.mean(np.sum(residuals(predictions[g * M:(g + 1) * M].mean(axis=0, keepdims=True),
                                       y) ** 2, axis=-1)) for g in range(groups)]  # fmt: skip
    return float(np.mean(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="adult")
    parser.add_argument("--target", default=None)
    parser.add_argument("--task", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=50, help="Fresh learners per fraction.")
    parser.add_argument("--sizes", default="4,16,50", help="Ensemble sizes M to judge.")
    parser.add_argument("--grid", type=int, default=6, help="Grid fractions at most.")
    parser.add_argument("--out", type=Path, default=Path("bagging.json"))
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    overrides = {"data.path": options.data, "data.target": options.target,
                 "data.task": options.task, "seed": options.seed}  # fmt: skip
    config = load_config(None, {k: v for k, v in overrides.items() if v is not None})
    evaluator = build_evaluator(config)
    architecture = evaluator.default_architecture()
    started = time.perf_counter()
    results: dict = {"data": options.data, "sizes": sizes, "members": options.members}
    report = tune_bagging(evaluator, architecture, max(sizes))  # optima for every size
    results["predicted"] = report.model_dump()
    fields = report.fields
    lowest = min(m.fields_kept for m in report.measured)
    counts = sorted({round(float(c)) for c in np.linspace(lowest, fields, options.grid)})
    grid = {}
    for kept in counts:
        fraction = kept / fields
        bagged = architecture.model_copy(
            update={"bagging": architecture.bagging.model_copy(update={"fraction": fraction})}
        )
        trained = evaluator.evaluate(bagged, options.members, FRESH)
        grid[kept] = {
            split: {M: realised(p, y, M) for M in sizes}
            for split, p, y in (("val", trained.val_predictions, evaluator.y_val),
                                ("test", trained.test_predictions, evaluator.y_test))
        }  # fmt: skip
        print(f"{kept}/{fields} fields: {grid[kept]}", flush=True)
    results["grid"] = grid
    results["seconds"] = time.perf_counter() - started
    options.out.write_text(json.dumps(results, indent=1))
    print(table(results, fields))


def table(results: dict, fields: int) -> str:
    lines = [f"Data {results['data']}: {results['members']} fresh learners per fraction, "
             f"{fields} fields; {results['seconds'] / 60:.1f} min.", "",
             "| M | f* predicted [90 %] | grid f, realised best (test) | regret at f* (test) | "
             "f* minus f = 1 (test) | predicted vs realised E_M, val, median abs rel error |",
             "|---:|---|---|---:|---:|---:|"]  # fmt: skip
    grid = results["grid"]
    predicted = results["predicted"]
    fit = BaggingFit(fields=fields, E_coef=predicted["E_coef"], D_coef=predicted["D_coef"],
                     lowest_overlap=0.0)  # fmt: skip
    for M in results["sizes"]:
        optimum = next(o for o in predicted["optima"] if o["members"] == M)
        curve = {k: fit.E_M(k / fields, M) for k in grid}
        at = min(grid, key=lambda k: abs(k - optimum["fields_kept"]))
        test = {k: grid[k]["test"][M] for k in grid}
        best = min(test, key=test.get)
        misses = [abs(curve[k] - grid[k]["val"][M]) / grid[k]["val"][M] for k in grid]
        low, high = optimum["overlap_interval"]
        lines.append(
            f"| {M} | {optimum['fraction']:.2f} [{low:.2f}, {high:.2f}] | {best / fields:.2f} "
            f"({test[best]:.5f}) | {test[at] - test[best]:+.5f} | {test[at] - test[fields]:+.5f} "
            f"| {np.median(misses):.2%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
