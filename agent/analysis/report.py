"""`edas-agent report`: what happened in a run, as PNGs and one self-contained HTML page.

    trajectory.png   predicted E_M of the baseline over the steps, every proposal a point
    frontier.png     the (delta E, rho) plane: each baseline's acceptance frontier and the
                     proposals judged against it
    error_vs_disagreement.png   single-learner E against disagreement D for all candidates,
                     with lines of equal predicted E_M
    cost.png         learners trained, seconds, LLM tokens and money per step
    screening.png    multi-fidelity screening, when it was on: where candidates stopped,
                     and the fused predictor's rank correlation with realised E_M as the run
                     went (its cold-start curve)
    verify.png       predicted against realised ensemble error, when verify.json exists
    ensemble.png     the cost front of mixtures, when ensemble.json exists (edas-agent
                     ensemble), with realised errors from verify_mixture.json

The page embeds the images (base64), so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from edas_agent.analysis.ensemble import ENSEMBLE, EnsembleResult, read_ensemble
from edas_agent.analysis.verify import VERIFY
from edas_agent.analysis.verify_mixture import VERIFY_MIXTURE
from edas_agent.fidelity.audit import predictor_track
from edas_agent.record import Record, read_records
from edas_agent.theory.seed_noise import UNSTABLE_RATIO
from edas_agent.training.costs import Spend

COLOURS = {"accepted": "#2ca02c", "rejected": "#ff7f0e", "invalid": "#9467bd", "failed": "#d62728",
           "pruned": "#17becf"}  # fmt: skip
REPORT = "report.html"


def write_report(folder: Path) -> Path:
    records = read_records(folder)
    if not records:
        raise ValueError(f"{folder} has no records yet")
    images = {
        "trajectory.png": _trajectory(records),
        "frontier.png": _frontier(records),
        "error_vs_disagreement.png": _error_vs_disagreement(records),
        "cost.png": _cost(records),
    }
    if any(r.screening is not None for r in records):
        images["screening.png"] = _screening(records)
    verify_path = folder / VERIFY
    if verify_path.is_file():
        images["verify.png"] = _verify(json.loads(verify_path.read_text()))
    mixtures = read_ensemble(folder) if (folder / ENSEMBLE).is_file() else None
    verified_path = folder / VERIFY_MIXTURE
    verified = json.loads(verified_path.read_text()) if verified_path.is_file() else None
    if mixtures is not None:
        images["ensemble.png"] = _ensemble(mixtures, verified)
    for name, figure in images.items():
        figure.savefig(folder / name, dpi=110, bbox_inches="tight")
        plt.close(figure)
    page = folder / REPORT
    page.write_text(_html(folder, records, list(images), _mixture_section(mixtures, verified)))
    return page


def _evaluated(records: list[Record]) -> list[Record]:
    return [r for r in records if r.event == "proposal" and r.carried()[0] is not None]


def _trajectory(records: list[Record]):
    """The predicted error the search minimises (E_M, or E_mix in a mixture search) of the
    baseline and of every judged proposal had it been adopted."""
    name = "E_mix" if any(r.mixture() is not None for r in records) else "E_M"
    figure, axes = plt.subplots(figsize=(9, 4.5))
    steps, levels, current = [], [], None
    for record in records:
        if record.accepted:
            current = record.predicted_error()
        steps.append(record.step)
        levels.append(current)
    axes.step(
        steps,
        levels,
        where="post",
        color="black",
        linewidth=2,
        label=f"baseline (predicted {name})",
    )
    _scatter_by_status(
        axes, [((r.step, r.predicted_error()), r.status) for r in _evaluated(records)]
    )
    unjudged = [r.step for r in records if r.event == "proposal" and r.carried()[0] is None]
    if unjudged:
        bottom = min(v for v in levels if v is not None)
        axes.scatter(
            unjudged, [bottom] * len(unjudged), marker="x", color="grey", label="invalid / failed"
        )
    axes.set_xlabel("step")
    axes.set_ylabel(f"predicted {name} (M = {records[0].members})")
    axes.set_title("Predicted ensemble error: baseline and every proposal")
    axes.legend(fontsize=8)
    return figure


def _frontier(records: list[Record]):
    """Each baseline's frontier and the proposals judged against it share a colour; the
    marker says the outcome. A point below its own line wins (exactly so when its sigma2
    equals the baseline's)."""
    figure, axes = plt.subplots(figsize=(8, 5.5))
    judged = [r for r in _evaluated(records) if r.delta_E is not None and r.baseline is not None]
    if judged:
        low, high = min(r.delta_E for r in judged), max(r.delta_E for r in judged)
        span = [low - 0.1 * abs(low) - 1e-6, high + 0.1 * abs(high) + 1e-6]
        baselines = sorted({r.baseline.step: r.baseline.stats for r in judged}.items())
        colours = plt.get_cmap("viridis")
        members = records[0].members
        for index, (step, stats) in enumerate(baselines):
            colour = colours(index / max(1, len(baselines) - 1))
            rho = [stats.rho - members / (members - 1) * d / stats.sigma2 for d in span]
            axes.plot(span, rho, color=colour, linewidth=1, alpha=0.8)
            mine = [r for r in judged if r.baseline.step == step]
            # Accepted drawn above every rejected point, whichever baseline it belongs to
            for status, marker, layer in (("rejected", "x", 3), ("accepted", "o", 4)):
                points = [(r.delta_E, r.stats.rho) for r in mine if r.status == status]
                if points:
                    axes.scatter(*zip(*points, strict=True), marker=marker, s=30, color=colour,
                                 zorder=layer)  # fmt: skip
        axes.scatter([], [], marker="o", color="grey", label="accepted")
        axes.scatter([], [], marker="x", color="grey", label="rejected")
        axes.plot([], [], color="grey", label="frontier (colour: baseline, early to late)")
        axes.legend(fontsize=8)
    else:  # every proposal was invalid or failed: there is nothing to draw, say so
        axes.text(0.5, 0.5, "no proposal reached the gate", ha="center", transform=axes.transAxes)
    axes.axvline(0, color="grey", linewidth=0.5)
    axes.set_xlabel("delta E (candidate minus its baseline, single learner)")
    axes.set_ylabel("rho of the candidate")
    axes.set_title("Acceptance frontiers: below its own line a proposal wins")
    return figure


def _error_vs_disagreement(records: list[Record]):
    figure, axes = plt.subplots(figsize=(7, 5))
    points = [(r.carried()[0], r.status) for r in [records[0], *_evaluated(records)]]
    _scatter_by_status(axes, [((s.D, s.E), status) for s, status in points])
    if points:
        members = records[0].members
        d_values = [s.D for s, _ in points]
        span = [min(d_values) * 0.9, max(d_values) * 1.1]
        final = next(r for r in reversed(records) if r.accepted).carried()[0]
        level = final.E_M if final is not None else min(s.E_M for s, _ in points)
        axes.plot(
            span,
            [level + (members - 1) / members * d for d in span],
            "k--",
            linewidth=1,
            label=f"equal E_M = {level:.5f} (the final baseline)",
        )
    axes.set_xlabel("disagreement D")
    axes.set_ylabel("single-learner error E")
    axes.set_title("Accuracy and diversity: E_M = E - (M-1)/M D")
    axes.legend(fontsize=8)
    return figure


def _cost(records: list[Record]):
    steps = [r.step for r in records]
    tokens = [(r.llm.input_tokens + r.llm.output_tokens) if r.llm else 0 for r in records]
    money = [(r.llm.cost or 0.0) if r.llm else 0.0 for r in records]
    llm = any(tokens) or any(money)  # builtin, random, Optuna runs: no LLM panel
    if llm:
        figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    else:
        figure, top = plt.subplots(figsize=(9, 3))
        bottom = top
    top.bar(steps, [r.cost.learners_trained for r in records], color="#1f77b4", label="learners")
    twin = top.twinx()
    twin.plot(steps, [r.cost.train_seconds for r in records], color="black", linewidth=1)
    top.set_ylabel("learners trained")
    twin.set_ylabel("train seconds")
    if llm:
        bottom.bar(steps, tokens, color="#7f7f7f")
        bottom.set_ylabel("LLM tokens")
    if any(money):
        money_axis = bottom.twinx()
        money_axis.plot(steps, [sum(money[: i + 1]) for i in range(len(money))], color="#d62728")
        money_axis.set_ylabel("US dollars, cumulative")
    bottom.set_xlabel("step")
    top.set_title("Cost per step")
    return figure


def _screening(records: list[Record]):
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    traces = [r.screening for r in records if r.event == "proposal" and r.screening is not None]
    stages = Counter(
        "full training" if t.pruned_at is None else
        ("skipped" if t.pruned_at < 0 else f"stage {t.pruned_at + 1} ({t.pruned_by})")
        for t in traces
    )  # fmt: skip
    names = sorted(stages)
    left.barh(names, [stages[n] for n in names], color="#17becf")
    left.set_xlabel("candidates")
    left.set_title("Where screened candidates stopped")
    track = [(n, rho) for _, n, rho in predictor_track(records) if rho is not None]
    if track:
        right.plot(*zip(*track, strict=True), marker="o", color="#1f77b4")
        right.axhline(0, color="grey", linewidth=0.8)
        right.set_ylim(-1, 1)
    else:
        right.text(0.5, 0.5, "fewer than 3 full evaluations the warm predictor scored",
                   ha="center", va="center", transform=right.transAxes)  # fmt: skip
    right.set_xlabel("full evaluations scored before training")
    right.set_ylabel("Spearman rank correlation")
    right.set_title("Fused predictor vs realised E_M (cold start)")
    return figure


def _verify(result: dict):
    figure, axes = plt.subplots(figsize=(6, 5))
    M = str(result["members"])
    for split, marker in (("val", "o"), ("test", "s")):
        predicted = [e["predicted"][split][M] for e in result["architectures"].values()]
        realised = [e["realised"][split][M] for e in result["architectures"].values()]
        axes.scatter(realised, predicted, marker=marker, label=split)
    limits = axes.get_xlim()
    axes.plot(limits, limits, "k--", linewidth=1, label="predicted = realised")
    axes.set_xlabel(f"realised {M}-member ensemble error")
    axes.set_ylabel("predicted from the decision learners")
    axes.set_title("verify: predicted vs realised")
    axes.legend(fontsize=8)
    return figure


def _ensemble(result: EnsembleResult, verified: dict | None):
    figure, axes = plt.subplots(figsize=(7, 4.5))
    by_flops = result.front[-1].flops > 0
    front = result.front

    def cost(choice) -> float:
        return choice.flops if by_flops else choice.members

    for split, style in (("val", "-o"), ("test", "--s")):
        axes.plot([cost(c) for c in front], [getattr(c, split) for c in front], style,
                  markersize=3, label=f"front, predicted {split}")  # fmt: skip
    # Drawn bottom to top, each its own marker: the best mixture often sits on the best
    # homogeneous ensemble, and must stay visible
    marked = {"fewest FLOPs within tolerance": (result.pruned.flops, "^", 90),
              "best homogeneous": (result.homogeneous, "s", 70),
              "best mixture": (result.mixture, "D", 35)}  # fmt: skip
    for layer, (name, (choice, marker, size)) in enumerate(marked.items()):
        axes.scatter([cost(choice)], [choice.test], marker=marker, s=size, zorder=3 + layer,
                     label=f"{name} (test)")  # fmt: skip
    if verified is not None and verified["members"] == result.members:
        chosen = {"mixture": result.mixture, "homogeneous": result.homogeneous}
        for name, row in verified["ensembles"].items():
            axes.scatter([cost(chosen[name])], [row["test"]["realised"]], marker="*", s=120,
                         color="black", zorder=6)  # fmt: skip
        axes.scatter([], [], marker="*", color="black", label="realised test (verify --mixture)")
    axes.set_xscale("log")
    axes.set_xlabel("inference FLOPs per example" if by_flops else "members")
    axes.set_ylabel("ensemble error")
    axes.set_title(f"Mixtures of the run's architectures, up to {result.members} members")
    axes.legend(fontsize=7)
    return figure


def _mixture_section(result: EnsembleResult | None, verified: dict | None) -> str:
    if result is None:
        return ""
    realised = {}
    if verified is not None and verified["members"] == result.members:
        realised = {name: row["test"]["realised"] for name, row in verified["ensembles"].items()}
    rows = ""
    for name, key, choice in (
        ("best mixture", "mixture", result.mixture),
        ("best homogeneous", "homogeneous", result.homogeneous),
        ("fewest members within tolerance", "", result.pruned.members),
        ("fewest FLOPs within tolerance", "", result.pruned.flops),
    ):
        real = f"{realised[key]:.5f}" if key in realised else "-"
        rows += (
            f"<tr><td>{name}</td><td>{choice.members}</td><td>{choice.flops:,}</td>"
            f"<td>{choice.val:.5f}</td><td>{choice.test:.5f}</td><td>{real}</td>"
            f"<td>{html.escape(choice.summary())}</td></tr>"
        )
    return f"""<h2>Mixtures (edas-agent ensemble)</h2>
<p>From {result.candidates} architectures' stored learners; chosen on validation, so the
test column is the honest prediction. Tolerance {result.tolerance:.1%}.</p>
<table><tr><th>ensemble</th><th>members</th><th>FLOPs/example</th><th>predicted val</th>
<th>predicted test</th><th>realised test</th><th>composition (step x members)</th></tr>
{rows}</table>"""


def _html(folder: Path, records: list[Record], images: list[str], mixtures: str = "") -> str:
    counts = Counter(r.status for r in records if r.event == "proposal")
    accepted = [r for r in records if r.accepted]
    rows = "".join(
        f"<tr><td>{r.step}</td><td>{r.arch_hash}</td><td>{s.k}</td><td>{s.E:.5f}</td>"
        f"<td>{s.rho:.4f}</td><td>{s.D:.5f}</td><td>{s.E_M:.5f}</td><td>{_interval(r)}</td>"
        f"<td>{r.test.stats.E_M:.5f}</td><td>{html.escape(_edits(r))}</td></tr>"
        for r in accepted
        if (s := r.carried()[0]) is not None and r.test is not None
    )
    unstable = [r for r in records if r.unstable]
    warning = ""
    if unstable:
        steps = ", ".join(f"{r.step} (learners {str(r.unstable)[1:-1]})" for r in unstable)
        warning = (
            f"<p><b>Unstable learners</b>: at steps {html.escape(steps)} a learner's error was "
            f"over {UNSTABLE_RATIO:g} times its siblings'; deploying M copies of such an "
            "architecture, expect some seeds to train badly.</p>"
        )
    s = Spend.of(r.llm for r in records)
    spend = f"{s.calls} LLM calls, {s.input_tokens + s.output_tokens:,} tokens, ${s.cost:.4f}"
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{_base64(folder / name)}">'
        f"<figcaption>{name}</figcaption></figure>"
        for name in images
    )
    tally = ", ".join(f"{counts[s]} {s}" for s in COLOURS if s != "pruned" or counts[s])
    learners = sum(r.cost.learners_trained for r in records)
    partial = sum(r.cost.partial_learners for r in records)
    if partial:
        learners = f"{learners} (+{partial:.1f} in screening's partial training)"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>edas-agent report: {html.escape(folder.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; font-size: 0.9rem; }}
td, th {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
td:last-child {{ text-align: left; }}
figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>edas-agent report</h1>
<p><b>{html.escape(folder.name)}</b>: {sum(counts.values())} proposals ({tally}),
{learners} learners trained, {spend}.
Ensemble size M = {records[0].members}, rule {records[0].rule}.</p>
<h2>Accepted trajectory</h2>
<table><tr><th>step</th><th>arch</th><th>k</th><th>E</th><th>rho</th><th>D</th>
<th>E_M val</th><th>90% seed-noise interval</th><th>E_M test</th><th>edits</th></tr>{rows}</table>
{warning}
{mixtures}
{figures}
</body></html>
"""


def _interval(record: Record) -> str:
    """The predicted E_M's seed-noise interval, and where its spread came from."""
    predicted = record.predicted
    if predicted is None:
        return "-"
    return f"[{predicted.lower:.5f}, {predicted.upper:.5f}] ({predicted.source})"


def _scatter_by_status(axes, points: list[tuple[tuple[float, float], str]]) -> None:
    """One colour and legend entry per outcome."""
    for status, colour in COLOURS.items():
        chosen = [xy for xy, st in points if st == status]
        if chosen:
            layer = 4 if status == "accepted" else 3  # accepted points above the others
            axes.scatter(*zip(*chosen, strict=True), s=22, color=colour, label=status,
                         zorder=layer)  # fmt: skip


def _base64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _edits(record: Record) -> str:
    parts = [
        f"{e['op']} {e['path']}" + (f"={e['value']}" if "value" in e else "") for e in record.edits
    ]
    return "; ".join(parts) or "(start)"
