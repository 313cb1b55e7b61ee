"""The tables of the commands that measure a run: verify, calibrate, ensemble."""

from __future__ import annotations

import numpy as np
from rich.table import Table

from edas_agent.analysis.verify import sided_with
from edas_agent.cli.display import plus_minus
from edas_agent.theory.mixture_gate import summary


def verify_table(result: dict) -> Table:
    M = result["members"]
    table = Table(title=f"Predicted (from the decision learners) vs realised {M}-member ensembles")
    for column in (
        "steps",
        "k",
        "val pred",
        "val real",
        "rel err",
        "test pred",
        "test real",
        "rel err",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    for entry in result["architectures"].values():
        real, err = entry["realised"], entry["relative_error"]
        val, test = (_with_interval(entry, split, M) for split in ("val", "test"))
        table.add_row(
            ",".join(str(s) for s in entry["steps"]),
            str(entry["decision_learners"]),
            val, f"{real['val'][M]:.5f}", f"{err['val'][M]:+.2%}",
            test, f"{real['test'][M]:.5f}", f"{err['test'][M]:+.2%}",
        )  # fmt: skip
    agree = [d["agrees_test"] for d in result["decisions"]]
    captions = []
    covered = result.get("coverage", {})
    if covered.get("val", {}).get("of"):
        val, test = covered["val"], covered["test"]
        captions.append(
            f"± the {val['level']:.0%} seed-noise interval, or its bounds where the run's "
            f"winner's curse moved it ({', '.join(val['sources'])}; "
            f"theory/seed_noise.py); it covered the realised error {val['covered']}/{val['of']} "
            f"times on val, {test['covered']}/{test['of']} on test (✗: missed; "
            f"{_sides(val)} on val, {_sides(test)} on test)"
        )
    if agree:
        captions.append(
            f"{sum(agree)}/{len(agree)} logged decisions agree with the realised test ensembles"
        )
    sides = sided_with(result["decisions"])
    if sides["disagreements"]:
        captions.append(
            f"where the ensemble and single-learner rules disagreed ({sides['disagreements']}), "
            f"the realised test ensembles sided with the ensemble rule {sides['exact']} times, "
            f"with the single-learner rule {sides['single']} times"
        )
    table.caption = "\n".join(captions) or None
    return table


def _sides(coverage: dict) -> str:
    """Which side the misses fell on (absent from results written before 2026-12-07)."""
    if "above" not in coverage:
        return "sides not recorded"
    return f"{coverage['above']} above it, {coverage['below']} below"


def _with_interval(entry: dict, split: str, M: int) -> str:
    """The predicted error with its seed-noise interval's half-width (✗: it missed)."""
    predicted, interval = entry["predicted"][split][M], entry.get("interval", {}).get(split)
    if interval is None:
        return f"{predicted:.5f}"
    missed = "" if interval["covered"] else " ✗"
    if interval.get("shift"):  # moved off the prediction by the run's winner's curse
        return f"{predicted:.5f} [{interval['lower']:.5f}, {interval['upper']:.5f}]{missed}"
    half = (interval["upper"] - interval["lower"]) / 2
    return f"{predicted:.5f} ±{half:.5f}{missed}"


def verify_sizes_table(result: dict) -> Table:
    """Realised test error by ensemble size m = 1, 2, 4, ..., M, predicted in brackets:
    how far averaging more members still helps, architecture by architecture."""
    sizes = result["sizes"]
    table = Table(title="Realised (predicted) test error by ensemble size m")
    table.add_column("steps", justify="right", no_wrap=True)
    for m in sizes:
        table.add_column(f"m={m}", justify="right", no_wrap=True)
    for entry in result["architectures"].values():
        pred, real = entry["predicted"]["test"], entry["realised"]["test"]
        cells = [f"{real[m]:.5f} ({pred[m]:.5f})" if m in pred else f"{real[m]:.5f}"
                 for m in sizes]  # fmt: skip
        table.add_row(",".join(str(s) for s in entry["steps"]), *cells)
    return table


def calibration_tables(result: dict) -> list[Table]:
    M = result["members"]
    agreement = Table(
        title=f"2-learner gate vs realised {M}-member test ordering "
        f"({result['pairs_per_comparison']} learner pairs per comparison)"
    )
    agreement.add_column("true |difference|")
    agreement.add_column("n", justify="right")
    for method in ("exact", "paper", "confident", "single"):
        agreement.add_column(f"{method} agree / false acc / kappa", justify="right")
    for stratum, scores in result["agreement"].items():
        cells = []
        for method in ("exact", "paper", "confident", "single"):
            s = scores.get(method)
            kappa = "-" if not s or s["kappa"] is None else f"{s['kappa']:.2f}"
            cells.append(f"{s['agreement']:.1%} / {s['false_accepts']:.1%} / {kappa}" if s else "-")
        agreement.add_row(stratum, str(scores["comparisons"]), *cells)
    errors = Table(title="Median |relative error| of E_m predicted from 2 learners vs realised")
    errors.add_column("split")
    sizes = list(next(iter(result["prediction_error"].values())))
    for m in sizes:
        errors.add_column(f"m={m}", justify="right")
    for split, values in result["prediction_error"].items():
        errors.add_row(split, *(f"{values[m]:.2%}" for m in sizes))
    coverage = result.get("coverage")
    if coverage:
        errors.caption = "; ".join(
            f"{split}: the {c['level']:.0%} seed-noise interval from 2 learners covered the "
            f"realised {M}-member error {c['covered']}/{c['of']} ({_sides(c)})"
            for split, c in coverage.items()
        )
    return [agreement, errors]


def ensemble_tables(result) -> list[Table]:
    """`edas-agent ensemble`: the chosen ensembles, the pruned ones and the cost front."""
    M = result.members
    chosen = Table(
        title=f"Ensembles of {M} members from {result.candidates} architectures of the run "
        "(predicted; chosen on validation, test is the honest number)"
    )
    for column in ("ensemble", "composition (step x members)", "archs", "FLOPs/example",
                   "val E", "test E"):  # fmt: skip
        chosen.add_column(column, justify="left" if column[0] in "ec" else "right")
    intervals = [c.val_interval for c in (result.mixture, result.homogeneous) if c.val_interval]
    rows = [("best mixture", result.mixture), ("best homogeneous", result.homogeneous)]
    if result.incumbent is not None:
        rows.append(("run's final baseline", result.incumbent))
    tolerance = f"{result.tolerance:.1%}"
    rows += [
        (f"fewest members (within {tolerance})", result.pruned.members),
        (f"fewest architectures (within {tolerance})", result.pruned.architectures),
        (f"fewest FLOPs (within {tolerance})", result.pruned.flops),
    ]
    for name, choice in rows:
        chosen.add_row(name, choice.summary(), str(choice.architectures), f"{choice.flops:,}",
                       plus_minus(choice.val, choice.val_interval),
                       plus_minus(choice.test, choice.test_interval))  # fmt: skip
    chosen.caption = "optimisers (validation E of their mixture): " + ", ".join(
        f"{name} {error:.6f}" for name, error in result.optimisers.items()
    )
    if intervals:
        chosen.caption += (
            f"; ± the {intervals[0].level:.0%} seed-noise interval of the realised "
            f"error ({_interval_source(intervals[0])})"
        )
    front = Table(title="Cost front: predicted validation error against inference cost")
    for column in ("members", "archs", "FLOPs/example", "val E", "test E"):
        front.add_column(column, justify="right")
    shown = sorted(set(np.linspace(0, len(result.front) - 1, 15).round().astype(int)))
    if len(shown) < len(result.front):
        front.caption = f"{len(shown)} of its {len(result.front)} points; all in ensemble.json"
    for choice in (result.front[i] for i in shown):
        front.add_row(str(choice.members), str(choice.architectures), f"{choice.flops:,}",
                      f"{choice.val:.5f}", f"{choice.test:.5f}")  # fmt: skip
    return [chosen, front]


def verify_mixture_table(result: dict) -> Table:
    from edas_agent.analysis.ensemble import Member

    M = result["members"]
    table = Table(title=f"Predicted vs realised {M}-member ensembles, members with fresh seeds")
    for column in ("ensemble", "composition (step x members)", "val pred", "val real",
                   "rel err", "test pred", "test real", "rel err"):  # fmt: skip
        table.add_column(column, justify="left" if column[0] in "ec" else "right")
    for name, row in result["ensembles"].items():
        cells = [name, summary([Member.model_validate(m) for m in row["composition"]])]
        for split in ("val", "test"):
            s = row[split]
            cells += [
                f"{s['predicted']:.5f}",
                f"{s['realised']:.5f}",
                f"{s['relative_error']:+.2%}",
            ]
        table.add_row(*cells)
    covered = [
        row[split]["covered"] for row in result["ensembles"].values() for split in ("val", "test")
        if row[split].get("covered") is not None
    ]  # fmt: skip
    if covered:
        table.caption = (
            f"the seed-noise intervals of ensemble.json covered {sum(covered)} of "
            f"{len(covered)} realised errors"
        )
    return table


def _interval_source(interval) -> str:
    if interval.source == "learners":
        return "from each architecture's own learners"
    return (
        "each architecture's own learners where it has three or more, else a spread pooled "
        f"over {interval.pooled_over} of the run's architectures"
    )
