"""Does the constrained optimiser's continuous step beat a random sample of the same knobs?
Realised ensembles, paired by run. Not a test: it trains learners.

For each finished search (a run folder: its records are the surrogate's observations),
from its final baseline B (the architecture the search would hand over):

    optimiser  search.continuous's constrained optimum (agent/continuous/surrogate.py),
               solved from the run's records with no floor, so it always moves when the
               surrogate sees a gain; 2 learners
    random-1   one draw of every continuous knob of the space, uniform within the same
               trust region around B (the region the optimiser may search); 2 learners:
               the optimiser's compute
    random-N   the best of N such draws by the gate's predicted E_M from their 2 learners:
               N times the compute

Then --members fresh learners (seeds no search or decision used) of B and of each arm's
choice give the realised M-member error on validation and test. Reported per table: the
realised test error of each arm minus B's and minus the optimiser's, paired by run, with a
90 % t interval over runs, and how often the optimiser moved at all.

    python bench/continuous_value.py --members 16 --draws 8 \\
        --group adult RUN... --group friedman RUN... --out continuous.json
"""

from __future__ import annotations

import copy
import sys
import zlib
from pathlib import Path

import jsonpointer
import numpy as np

from edas_agent import CandidateFailed, build_evaluator, document_of, load_config
from edas_agent.continuous import continuous_knobs, observations_of, solve
from edas_agent.record import read_records
from edas_agent.theory import residuals, statistics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from disagreements import each_run, group_options

DECISION_SEEDS = 20_000  # the arms' 2 decision learners: first index, one block per arm
FRESH_SEEDS = 40_000  # the realised members: seeds nothing else used


def realised(predictions: np.ndarray, y: np.ndarray) -> float:
    average = predictions.mean(axis=0, keepdims=True)
    return float(np.mean(np.sum(residuals(average, y) ** 2, axis=-1)))


def measure(folder: Path, members: int | None, draws: int, trust_region: float | None) -> dict:
    config = load_config(folder / "config.yaml", {})
    M = members or config.members
    region = trust_region or config.search.continuous.trust_region
    evaluator = build_evaluator(config)
    records = read_records(folder)
    adopted = [r for r in records if r.architecture and (r.accepted or r.event == "baseline")]
    baseline = adopted[-1].architecture
    knobs = continuous_knobs(evaluator.space().model_json_schema())
    solved = solve(observations_of(records), baseline, knobs, M, region, 0.0)
    rng = np.random.default_rng(zlib.crc32(folder.name.encode()))

    def with_knobs(values: dict[str, float]) -> dict:
        document = copy.deepcopy(baseline)
        for path, value in values.items():
            jsonpointer.set_pointer(document, path, value)
        return document_of(evaluator.parse(document))

    def movable(knob) -> bool:  # a knob that cannot act on this table stays put
        z0 = knob.encode(solved.baseline[knob.path])
        try:
            with_knobs({knob.path: knob.decode(1.0 if z0 < 0.5 else 0.0)})
        except ValueError:
            return False
        return True

    knobs = [knob for knob in knobs if movable(knob)]

    def draw() -> dict:
        values = {}
        for knob in knobs:
            z0 = knob.encode(solved.baseline[knob.path])
            z = rng.uniform(max(0.0, z0 - region), min(1.0, z0 + region))
            values[knob.path] = knob.decode(z)
        return with_knobs(values)

    def predicted(document: dict, block: int) -> float:
        try:
            trained = evaluator.evaluate(evaluator.parse(document), 2, DECISION_SEEDS + 2 * block)
        except CandidateFailed:
            return float("inf")  # a draw that fails is never chosen
        return statistics(trained.val_predictions, evaluator.y_val, M).E_M

    sampled = [draw() for _ in range(draws)]
    scores = [predicted(document, i) for i, document in enumerate(sampled)]
    chosen = {
        "baseline": baseline,
        "optimiser": with_knobs(solved.optimum),
        "random-1": sampled[0],
        f"random-{draws}": sampled[int(np.argmin(scores))],
    }
    moves = {path: [solved.baseline[path], value] for path, value in solved.optimum.items()
             if value != solved.baseline[path]}  # fmt: skip
    result: dict = {"members": M, "moved": bool(moves), "moves": moves,
                    "why_not": solved.why_not, "predicted_gain": solved.predicted_gain}  # fmt: skip
    for name, document in chosen.items():
        try:
            trained = evaluator.evaluate(evaluator.parse(document), M, FRESH_SEEDS)
        except CandidateFailed as exc:  # its members diverged: the arm's run is left out
            result[name] = {"failed": str(exc)}
            continue
        result[name] = {
            "val": realised(trained.val_predictions, evaluator.y_val),
            "test": realised(trained.test_predictions, evaluator.y_test),
        }
    return result


def interval(differences: list[float]) -> str:
    from edas_agent.theory import t_quantile

    d = np.asarray(differences)
    if len(d) < 2:
        return f"{d.mean():+.5f}"
    half = t_quantile(0.95, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.5f} [{d.mean() - half:+.5f}, {d.mean() + half:+.5f}]"


ARMS = ("baseline", "optimiser", "random-1")


def summary_row(name: str, runs: list[dict], best: str) -> str:
    """One table's row: realised test errors paired by run, failed runs left out."""
    arms = (*ARMS, best)
    runs = [r for r in runs if best in r and not any("failed" in r[arm] for arm in arms)]
    test = {arm: np.array([r[arm]["test"] for r in runs]) for arm in arms}
    pairs = [("optimiser", "baseline"), ("random-1", "baseline"), (best, "baseline"),
             ("optimiser", best)]  # fmt: skip
    cells = [interval(list(test[a] - test[b])) for a, b in pairs]
    return f"| {name} | {len(runs)} | {sum(r['moved'] for r in runs)} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = group_options(__doc__.splitlines()[0], "continuous.json")
    parser.add_argument("--draws", type=int, default=8, help="N of the random-N arm.")
    parser.add_argument("--trust-region", type=float, default=None,
                        help="Default: each run's search.continuous.trust_region.")  # fmt: skip
    options = parser.parse_args()

    def measured(folder: Path) -> dict:
        return measure(folder, options.members, options.draws, options.trust_region)

    results = each_run(options, measured)
    best = f"random-{options.draws}"
    print(f"\n| table | runs | optimiser moved | optimiser minus baseline [90 %] | random-1 minus "
          f"baseline | {best} minus baseline | optimiser minus {best} |")  # fmt: skip
    print("|---|---:|---:|---|---|---|---|")
    for name in dict.fromkeys(g[0] for g in options.group):
        runs = [v for k, v in results.items() if k.split(":", 1)[0] == name]
        print(summary_row(name, runs, best))


if __name__ == "__main__":
    main()
