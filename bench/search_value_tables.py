"""bench/search_value.py's tables and plot, from its results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from search_value_arms import arms
from search_value_judging import FRACTIONS, TRIALS_LEVEL, new_architectures

# The public API only, as a user's script would use it: edas_agent's names and those its
# subpackages export
from edas_agent import read_records
from edas_agent.theory import t_quantile


def tables(result: dict[str, Any]) -> str:
    rows, options = result["rows"], result["options"]
    arms_seen = list(dict.fromkeys(r["arm"] for r in rows))
    M = options["members"]
    unit = options.get("compute", "learner-epochs")  # results from before --compute
    lines = [
        f"Data `{data_path(options['data'])}`, seeds {options['seeds']}, "
        f"budget {options['budget']} (edas), equal compute in {unit}, "
        f"judge: {M} fresh members, squared error (Brier "
        "score for classification) of the averaged ensemble on the test split. Mean ± sd "
        "over seeds; improvement is relative to the starting architecture, paired by seed. "
        "The 90 % interval is of the mean paired difference (Student t over seeds): an arm "
        "is resolved better or worse than edas only where it excludes 0.",
        "",
        f"| arm | realised test error ({M} members) | improvement over start | minus edas, "
        "paired | 90 % interval | seeds better than edas | proposals | accepted | "
        f"{unit} (ratio to edas) | training TFLOP | learner-epochs | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    edas = {r["seed"]: r["final_error"] for r in rows if r["arm"] == "edas"}
    for arm in arms_seen:
        mine = [r for r in rows if r["arm"] == arm]
        final = np.array([r["final_error"] for r in mine])
        gain = np.array([(r["start_error"] - r["final_error"]) / r["start_error"] for r in mine])
        versus = np.array([r["final_error"] - edas[r["seed"]] for r in mine])
        paired = (
            "- | - | -" if arm == "edas"
            else f"{_mean_sd(versus, 5)} | {_interval(versus, 0.9)} | "
            f"{sum(v < 0 for v in versus)}/{len(versus)}"
        )  # fmt: skip
        lines.append(
            f"| {arm} | {_mean_sd(final, 5)} | {_mean_sd(gain * 100, 2)} % | {paired} | "
            f"{np.mean([r['proposals'] for r in mine]):.0f} | "
            f"{np.mean([r['accepted'] for r in mine]):.1f} | "
            f"{np.mean([r['compute'] for r in mine]):.4g} "
            f"({np.mean([r['compute_ratio'] for r in mine]):.2f}) | "
            f"{_mean_of(mine, 'train_tflop', '.3g')} | {_mean_of(mine, 'learner_epochs', '.0f')} | "
            f"{np.mean([r['wall_s'] for r in mine]):.0f} |"
        )
    starts = {r["seed"]: (r["start_error"], r["judge_noise"]) for r in rows}
    noise = np.mean([n for _, n in starts.values()])
    finals = [r["judge_noise_final"] for r in rows if "judge_noise_final" in r]
    lines += [
        "",
        f"Start: {_mean_sd(np.array([s for s, _ in starts.values()]), 5)}. Judge noise: two "
        f"independent {M}-member ensembles of the start differ by {noise:.5f} on average "
        "(differences between arms below that are not resolved)"
        + (
            f"; on the edas arm's final architectures they differ by {np.mean(finals):.5f}."
            if finals
            else "."
        ),
        *_sizes_differ(rows, M),
        *_reducible(rows, arms_seen, options.get("floor")),
        "",
        "Anytime: realised test error of each arm's incumbent after a share of the compute.",
        "",
        "| arm | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " |",
        "|---|" + "---:|" * len(FRACTIONS),
    ]
    for arm in arms_seen:
        mine = [r for r in rows if r["arm"] == arm]
        cells = [_mean_sd(np.array([r["anytime"][str(f)] for r in mine]), 5) for f in FRACTIONS]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    for arm in arms_seen:
        mixed = [r["architectures"] for r in rows if r["arm"] == arm and "architectures" in r]
        if not mixed:
            continue
        whose = " (proposals and accepted: the edas search it mixes)" if arms(8)[
            arm].mixes_reference else ""  # fmt: skip
        lines += ["", f"The {arm} arm's final mixtures hold {np.mean(mixed):.1f} architectures "
                  f"on average{whose}."]  # fmt: skip
    lines += _at_equal_table(rows, arms_seen, unit)
    lines += _trials_level(rows, arms_seen, unit)
    lines += _screening_table(rows, arms_seen)
    lines += _accepted_steps_table(rows, arms_seen, M)
    return "\n".join(lines) + "\n"


def _at_equal_table(rows: list[dict], arms_seen: list[str], unit: str) -> list[str]:
    """--also: the same arms judged at the edas arm's compute in a second currency."""
    judged = [r for r in rows if "also" in r]
    if not judged:
        return []
    also = judged[0]["also"]["unit"]
    edas = {r["seed"]: r["also"]["final_error"] for r in judged if r["arm"] == "edas"}
    lines = [
        "",
        f"At equal {also} (--also): every arm ran until it had spent the edas arm's {also} "
        f"as well as its {unit}, and is judged on its incumbent at the edas arm's {also}. "
        f"A ratio below 1 means the arm stopped before (its search ended), so its row is cut "
        "short.",
        "",
        f"| arm | realised test error | minus edas, paired | 90 % interval | seeds better than "
        f"edas | {also} spent / edas's | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(FRACTIONS),
    ]
    for arm in arms_seen:
        mine = [r["also"] | {"seed": r["seed"]} for r in judged if r["arm"] == arm]
        if not mine:
            continue
        final = np.array([r["final_error"] for r in mine])
        versus = np.array([r["final_error"] - edas[r["seed"]] for r in mine])
        paired = ("- | - | -" if arm == "edas"
                  else f"{_mean_sd(versus, 5)} | {_interval(versus, 0.9)} | "
                  f"{sum(v < 0 for v in versus)}/{len(versus)}")  # fmt: skip
        ratio = np.mean([r["compute_ratio"] for r in mine])
        curve = [_mean_sd(np.array([r["anytime"][str(f)] for r in mine]), 5) for f in FRACTIONS]
        lines.append(f"| {arm} | {_mean_sd(final, 5)} | {paired} | {ratio:.2f} | "
                     + " | ".join(curve) + " |")  # fmt: skip
    return lines


def _reducible(rows: list[dict], arms_seen: list[str], floor: float | None) -> list[str]:
    """With --floor: the share of the start's reducible error (start minus floor) each arm
    removed, so a flat anytime curve near the floor reads as what it is."""
    if floor is None:
        return []
    shares = []
    for arm in arms_seen:
        removed = np.array([(r["start_error"] - r["final_error"]) / (r["start_error"] - floor)
                            for r in rows if r["arm"] == arm])  # fmt: skip
        shares.append(f"{arm} {_mean_sd(removed * 100, 1)} %")
    return ["", f"Floor (given, --floor): {floor:.5g}. Share of the start's reducible error "
            f"removed: {'; '.join(shares)}."]  # fmt: skip


def _trials_level(rows: list[dict], arms_seen: list[str], unit: str) -> list[str]:
    """What an Optuna arm spent on its first TRIALS_LEVEL trials: the budget level of
    "about 50 TPE trials", to set another run's cap from (--set max_train_tflop=...)."""
    key = "compute_of_50_trials"
    spent = {arm: [r[key] for r in rows if r["arm"] == arm and key in r] for arm in arms_seen}
    found = {arm: np.array(values) for arm, values in spent.items() if values}
    if not found:
        return []
    lines = ["", f"Compute of the first {TRIALS_LEVEL} trials (a budget level: Optuna's usual "
             f"tens of trials), in {unit}:", "", "| arm | seeds | mean ± sd | least | most |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for arm, values in found.items():
        lines.append(f"| {arm} | {len(values)} | {_mean_sd(values, 4)} | {values.min():.4g} | "
                     f"{values.max():.4g} |")  # fmt: skip
    return lines


def _sizes_differ(rows: list[dict], members: int) -> list[str]:
    """A warning when the edas gate was asked about another ensemble size than the judge's."""
    asked = {r["gate_members"] for r in rows if r["arm"] == "edas" and "gate_members" in r}
    if not asked or asked == {members}:
        return []
    return ["", f"The gate predicted E_M at M = {', '.join(map(str, sorted(asked)))} and the "
            f"judge builds {members} members: a step accepted for a gain that exists only in "
            "larger ensembles is scored here as a loss, and an arm that judges more proposals "
            f"finds more such steps. `--set members={members}` asks the gate for the judge's "
            "size."]  # fmt: skip


def _accepted_steps_table(rows: list[dict], arms_seen: list[str], members: int) -> list[str]:
    """Per arm, its accepted steps whose realised ensemble beat their baseline's: how often
    the gate's acceptances were real (a low share means it adopted lucky seeds). Of those
    that were not, how many the gate itself predicted to be worse at the judge's M (a gain
    accepted for a larger ensemble than the judge builds, not only a lucky seed)."""
    cells = []
    for arm in arms_seen:
        mine = [r for r in rows if r["arm"] == arm and "accepted_improved" in r]
        if not mine:
            continue
        verdicts = [v for r in mine for v in r["accepted_improved"]]
        share = f" ({np.mean(verdicts):.0%})" if verdicts else ""
        cells.append(f"| {arm} | {sum(verdicts)}/{len(verdicts)}{share} | "
                     f"{_worse_at_judge(mine)} |")  # fmt: skip
    if not cells:
        return []
    return ["", f"Accepted steps whose realised {members}-member test error beat their "
            "baseline's:", "", "| arm | accepted steps that were real improvements | of the "
            f"others, predicted worse at {members} members by the gate's own statistics |",
            "|---|---:|---:|", *cells]  # fmt: skip


def _worse_at_judge(rows: list[dict]) -> str:
    if any("accepted_gain_at_judge" not in r for r in rows):
        return "-"  # results written before it was recorded
    unreal = [gain for r in rows
              for real, gain in zip(r["accepted_improved"], r["accepted_gain_at_judge"],
                                    strict=True) if not real]  # fmt: skip
    return f"{sum(g >= 0 for g in unreal)}/{len(unreal)}"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, floor = result["rows"], result["options"].get("floor")
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        # Relative to each seed's start: the seeds' splits differ more than the arms do.
        curve = np.array([[0.0] + [100 * (1 - r["anytime"][str(f)] / r["start_error"])
                                   for f in FRACTIONS] for r in mine])  # fmt: skip
        x = [0.0, *FRACTIONS]
        axes.errorbar(x, curve.mean(axis=0), yerr=curve.std(axis=0), label=arm, capsize=3,
                      marker="o")  # fmt: skip
    unit = result["options"].get("compute", "learner-epochs")
    axes.set_xlabel(f"share of the training compute ({unit} of the edas arm)")
    axes.set_ylabel(f"% lower realised test error than the start\n"
                    f"({result['options']['members']} fresh members)")  # fmt: skip
    axes.set_title("Incumbent improvement against compute (mean ± sd over seeds)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    judged = [r for r in rows if "also" in r]
    if judged:
        _plot_also(judged, result["options"]["members"], path.with_name("also.png"), floor)


def _plot_also(rows: list[dict], members: int, path: Path, floor: float | None) -> None:
    """--also: realised error against the second currency's compute, log axis (training
    seconds for hours), one curve per arm; x is the edas arm's mean spend at each share."""
    import matplotlib.pyplot as plt

    unit = rows[0]["also"]["unit"]
    scale, label = (3600, "training seconds") if unit == "hours" else (1, unit)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    spend = np.mean([r["also"]["reference_total"] for r in rows]) * scale
    for arm in dict.fromkeys(r["arm"] for r in rows):
        errors = np.array([[r["also"]["anytime"][str(f)] for f in FRACTIONS]
                           for r in rows if r["arm"] == arm])  # fmt: skip
        axes.errorbar([f * spend for f in FRACTIONS], errors.mean(axis=0),
                      yerr=errors.std(axis=0), label=arm, capsize=3, marker="o")  # fmt: skip
    if floor is not None:
        axes.axhline(floor, color="grey", linestyle="--", label="floor (irreducible noise)")
    axes.set_xscale("log")
    axes.set_xlabel(f"{label} (the edas arm's, mean over seeds)")
    axes.set_ylabel(f"realised test error ({members} fresh members)")
    axes.set_title(f"Incumbent error against {label} (mean ± sd over seeds)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


_SETUP = ("data", "sets", "seeds", "budget", "members", "honest_members", "compute", "also")


def _screening_table(rows: list[dict], arms_seen: list[str]) -> list[str]:
    """Screening arms: proposals per edas proposal, where they went, the audit of the pruned
    and the predictor's last rank correlation with realised E_M (per seed)."""
    screened = [a for a in arms_seen if any("full_evaluations" in r and r["pruned"]
                                            for r in rows if r["arm"] == a)]  # fmt: skip
    if not screened:
        return []
    edas = {r["seed"]: r for r in rows if r["arm"] == "edas"}
    lines = ["", "Screening: proposals per edas proposal at the same compute, and new "
             "architectures judged (trained to a stage or fully; repeats, invalid proposals "
             "and untrained skips not counted) per edas one; pruned, fully trained, pruned "
             "candidates an audit trained fully and the gate would have accepted (false "
             "negatives), and the fused predictor's Spearman rank correlation with realised "
             "full-training E_M at the end of each run.", "",
             "| arm | proposals / edas | new architectures / edas | pruned | fully trained | "
             "false negatives | predictor rank correlation |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for arm in screened:
        mine = [r for r in rows if r["arm"] == arm and "full_evaluations" in r]
        ratio = np.mean([r["proposals"] / edas[r["seed"]]["proposals"] for r in mine])
        counted = [(_new(r), _new(edas[r["seed"]])) for r in mine]
        new = (
            np.mean([a / b for a, b in counted if a and b])
            if all(all(c) for c in counted)
            else None
        )
        audits = [r["audit"] for r in mine if "audit" in r]
        audited = sum(a["audited"] for a in audits)
        missed = sum(len(a["would_accept"]) for a in audits)
        fn = f"{missed}/{audited} ({missed / audited:.0%})" if audited else "-"
        last = [r["predictor_track"][-1][2] for r in mine if r.get("predictor_track")]
        track = ", ".join("-" if c is None else f"{c:.2f}" for c in last) or "-"
        lines.append(
            f"| {arm} | {ratio:.1f}x | {'-' if new is None else f'{new:.1f}x'} | "
            f"{np.mean([r['pruned'] for r in mine]):.0f} | "
            f"{np.mean([r['full_evaluations'] for r in mine]):.0f} | {fn} | {track} |"
        )
    return lines


def _new(row: dict) -> int | None:
    """A row's new architectures, counted from its run's folder for rows written before
    the count was kept (None when that folder is not where it was)."""
    if "new_architectures" not in row:
        folder = Path(row["folder"])
        if not (folder / "trajectory.jsonl").is_file():
            return None
        row["new_architectures"] = new_architectures(read_records(folder))
    return row["new_architectures"]


def _with_earlier_arms(options: argparse.Namespace, rows: list[dict]) -> list[dict]:
    """Rows of arms an earlier invocation ran into the same --out with the same setup are
    kept, so arms can be added later; the edas arm is rerun each time (it sets the
    compute) and must have spent exactly what it spent before."""
    path = options.out / "results.json"
    if not path.is_file():
        return rows
    earlier = json.loads(path.read_text())
    mine = _jsonable(options)
    if any(earlier["options"].get(key) != mine[key] for key in _SETUP):
        return rows
    reference = {r["seed"]: r["compute"] for r in rows if r["arm"] == "edas"}
    if any(reference[r["seed"]] != r["compute"] for r in earlier["rows"] if r["arm"] == "edas"):
        sys.exit(f"the edas arm spent differently than in {path}: not merging; use a new --out")
    kept = [r for r in earlier["rows"] if r["arm"] not in options.arms]
    order = list(arms(options.honest_members))
    return sorted(kept + rows, key=lambda r: (r["seed"], order.index(r["arm"])))


def _mean_of(rows: list[dict], key: str, spec: str) -> str:
    """The rows' mean of `key`, or '-' for rows written before it was kept."""
    values = [r[key] for r in rows if key in r]
    return format(np.mean(values), spec) if values else "-"


def _mean_sd(values: np.ndarray, digits: int) -> str:
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _interval(values: np.ndarray, level: float) -> str:
    """Two-sided Student t interval of the mean; with three seeds it is wide, which is the
    point: paired differences smaller than it are not resolved."""
    if len(values) < 2:
        return "-"
    half = t_quantile(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"[{values.mean() - half:+.5f}, {values.mean() + half:+.5f}]"


def data_path(data: dict[str, Any]) -> str:
    """The table a run searched (results written before issue 44 keyed it data.path)."""
    return str(data.get("evaluator.data.path", data.get("data.path", "adult")))


def _jsonable(options: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()}


def write_tables_and_plot(result: dict[str, Any], out: Path) -> str:
    text = tables(result)
    (out / "tables.md").write_text(text)
    plot(result, out / "compute.png")
    return text
