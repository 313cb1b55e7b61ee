"""Print the gate's evidence from a run folder: winner's-curse shrinkage measured by
confirmation, and, when present, verify.json and a calibration.json. Not a test.

    python bench/gate_evidence.py runs/<run> [runs/<calibration folder>]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edas_agent import read_records


def shrinkage(folder: Path) -> None:
    rows = [r for r in read_records(folder) if r.shrinkage is not None]
    print(f"## Confirmation ({len(rows)} winners at decision)\n")
    print("| step | outcome | dE_M at decision | dE_M confirmed | P(better) decision | confirmed |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        s, first, last = r.shrinkage, r.rounds[0].interval, r.rounds[-1].interval
        print(
            f"| {r.step} | {r.status} | {s.delta_E_M_at_decision:+.6f} | "
            f"{s.delta_E_M_confirmed:+.6f} | {first.p_improve:.2f} | {last.p_improve:.2f} |"
        )
    if rows:
        decided = np.array([r.shrinkage.delta_E_M_at_decision for r in rows])
        confirmed = np.array([r.shrinkage.delta_E_M_confirmed for r in rows])
        kept = [r.status == "accepted" for r in rows]
        print(
            f"\nSummed predicted gain: {decided.sum():+.6f} at decision, {confirmed.sum():+.6f} "
            f"after confirmation (ratio {confirmed.sum() / decided.sum():.2f}); "
            f"{sum(kept)} of {len(rows)} confirmed.\n"
        )


def verified(folder: Path) -> None:
    path = folder / "verify.json"
    if not path.is_file():
        return
    result = json.loads(path.read_text())
    M = str(result["members"])
    print(f"## verify: predicted vs realised {M}-member ensembles\n")
    print("| steps | decision learners | val rel. error | test rel. error |")
    print("|---|---:|---:|---:|")
    for entry in result["architectures"].values():
        err = entry["relative_error"]
        steps = ",".join(str(s) for s in entry["steps"])
        k = entry["decision_learners"]
        print(f"| {steps} | {k} | {err['val'][M]:+.2%} | {err['test'][M]:+.2%} |")
    agree = [d["agrees_test"] for d in result["decisions"]]
    print(f"\n{sum(agree)}/{len(agree)} logged decisions agree with the realised test ensembles.\n")


def calibration(folder: Path) -> None:
    result = json.loads((folder / "calibration.json").read_text())
    print(f"## calibrate: {len(result['architectures'])} architectures, M = {result['members']}\n")
    methods = ("exact", "paper", "confident", "single")
    print("| true relative difference | n | " + " | ".join(methods) + " |")
    print("|---|---:|" + "---:|" * len(methods))
    for stratum, scores in result["agreement"].items():
        cells = []
        for m in methods:
            s = scores.get(m)
            kappa = "n/a" if not s or s["kappa"] is None else f"{s['kappa']:.2f}"
            cells.append(f"{s['agreement']:.1%} / {s['false_accepts']:.1%} / {kappa}" if s else "-")
        print(f"| {stratum} | {scores['comparisons']} | " + " | ".join(cells) + " |")
    print("\nMedian |relative error| of E_m predicted from 2 learners vs realised:\n")
    for split, values in result["prediction_error"].items():
        print(f"- {split}: " + ", ".join(f"m={m}: {v:.2%}" for m, v in values.items()))


if __name__ == "__main__":
    shrinkage(Path(sys.argv[1]))
    verified(Path(sys.argv[1]))
    if len(sys.argv) > 2:
        calibration(Path(sys.argv[2]))
