"""What the user sees: a live panel during a run, and the accepted trajectory as a table."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from edas_agent.analysis.verify import sided_with
from edas_agent.search.journal import Record
from edas_agent.theory.mixture_gate import summary
from edas_agent.training.compute import describe
from edas_agent.training.costs import Spend
from edas_agent.training.learners import Cost

STATUS_STYLE = {
    "accepted": "bold green",
    "rejected": "yellow",
    "invalid": "magenta",
    "failed": "red",
    "pruned": "cyan",
}


class LiveDisplay:
    """A rich Live panel on a terminal; one plain line per record otherwise (CI logs, pipes)."""

    def __init__(self, console: Console, budget: int, members: int, folder: Path):
        self.console = console
        self.budget = budget
        self.members = members
        self.folder = folder
        self.started = time.monotonic()
        self.baseline: Record | None = None
        self.last: Record | None = None
        self.counts: Counter[str] = Counter()
        self.llm_records: list[Record] = []
        self.spent = Cost()  # the training compute of every record so far
        self.progress = ""  # what the current round is doing (screening stages)
        # Live re-renders `self` (see __rich__) on every refresh, so the clock keeps moving
        # while a long candidate trains.
        self.live = Live(self, console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveDisplay:
        if self.console.is_terminal:
            self.live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.console.is_terminal:
            self.live.__exit__(*exc_info)

    def on_record(self, record: Record) -> None:
        self.spent += record.cost
        if record.event == "proposal":
            self.last = record
            self.counts[record.status] += 1
            if record.llm is not None and record.llm.calls:
                self.llm_records.append(record)
        if record.accepted:
            self.baseline = record
        if self.console.is_terminal:
            self.live.refresh()
        else:
            self.console.print(_one_line(record), markup=False, highlight=False, soft_wrap=True)

    def on_progress(self, text: str) -> None:
        """Work inside a round (a screening stage): shown live; printed once off a terminal."""
        self.progress = text
        if self.console.is_terminal:
            self.live.refresh()
        else:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __rich__(self) -> Panel:
        done = sum(self.counts.values())
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row(
            f"proposal {done}/{self.budget}",
            ProgressBar(total=self.budget, completed=done, width=40),
        )
        carried = self.baseline.carried()[0] if self.baseline is not None else None
        if self.baseline is not None and carried is not None:
            s = carried
            grid.add_row(
                f"baseline (step {self.baseline.step})",
                f"E={s.E:.5f}  rho={s.rho:.4f}  predicted E_M(M={self.members})="
                f"{_plus_minus(s.E_M, self.baseline.predicted)}  (k={s.k}"
                f"{'; ± 90 % seed noise' if self.baseline.predicted else ''})",
            )
        if self.baseline is not None and (judged := self.baseline.mixture()) is not None:
            grid.add_row(
                "mixture", f"{summary(judged.after)}  predicted E_mix={judged.E_after:.5f}"
            )
        if self.last is not None:
            grid.add_row("last decision", _decision_text(self.last))
        tally = "  ".join(f"{status} {self.counts[status]}" for status in STATUS_STYLE)
        grid.add_row("outcomes", tally)
        if self.progress:
            grid.add_row("screening", self.progress)
        grid.add_row("compute", describe(self.spent))
        if self.llm_records:
            grid.add_row("LLM", llm_spend(self.llm_records))
        grid.add_row(
            "elapsed", f"{time.monotonic() - self.started:.0f} s    run folder {self.folder}"
        )
        return Panel(grid, title="edas-agent run", border_style="blue")


def trajectory_table(records: list[Record], title: str = "Accepted trajectory") -> Table:
    """The accepted records; in a mixture search, with the mixture each one left (step x
    members) and its predicted error, since that is what was accepted."""
    mixtures = any(r.mixture() is not None for r in records)
    table = Table(title=title)
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("arch", no_wrap=True, min_width=12)
    table.add_column("k", justify="right", no_wrap=True)
    for column in ("E", "rho", "D", "E_M val", "E_M test", "params"):
        table.add_column(column, justify="right", no_wrap=True, min_width=7)
    if mixtures:
        table.add_column("mixture", overflow="fold")
        for column in ("E_mix val", "E_mix test"):
            table.add_column(column, justify="right", no_wrap=True, min_width=7)
    table.add_column("edits", overflow="fold", ratio=1)
    for record in records:
        s = record.carried()[0]
        if not record.accepted or s is None:
            continue
        cells = [
            str(record.step),
            record.arch_hash or "",
            str(s.k),
            f"{s.E:.5f}",
            f"{s.rho:.4f}",
            f"{s.D:.5f}",
            _plus_minus(s.E_M, record.predicted),
            f"{record.test.stats.E_M:.5f}" if record.test else "",
            str(record.parameters or ""),
        ]
        if mixtures:
            judged = record.mixture()
            cells += (
                [summary(judged.after), f"{judged.E_after:.5f}", f"{judged.test_after:.5f}"]
                if judged is not None
                else [f"{record.step}x{record.members}", f"{s.E_M:.5f}", cells[7]]
            )
        table.add_row(*cells, _edits_summary(record) or "(start)")
    if any(r.predicted is not None for r in records if r.accepted):
        table.caption = "E_M val ± its 90 % seed-noise interval (theory page)"
    return table


def wall_seconds(records: list[Record]) -> float:
    """From the run's start to its last record. The first record is written once the
    starting baseline has trained, so that training is added; the pause of a stopped and
    resumed run is included."""
    if not records:
        return 0.0
    first, last = (
        datetime.fromisoformat(r.time.replace("Z", "+00:00")) for r in (records[0], records[-1])
    )
    return (last - first).total_seconds() + records[0].cost.train_seconds


def print_summary(console: Console, records: list[Record], folder: Path, seconds: float) -> None:
    counts = Counter(r.status for r in records if r.event == "proposal")
    trained = sum(r.cost.learners_trained for r in records)
    partial = sum(r.cost.partial_learners for r in records)
    screened = f" (+{partial:.1f} in partial training)" if partial else ""
    console.print(trajectory_table(records))
    console.print(
        f"{sum(counts.values())} proposals: "
        + ", ".join(f"{counts[s]} {s}" for s in STATUS_STYLE if s != "pruned" or counts[s])
        + f"; {trained} learners trained{screened}; {seconds:.0f} s wall time"
    )
    console.print(f"Compute: {describe(sum((r.cost for r in records), Cost()))}")
    final = next((r for r in reversed(records) if r.accepted and r.predicted), None)
    if final is not None:
        p = final.predicted
        console.print(
            f"Final baseline (step {final.step}): predicted {p.members}-member E_M {p.E_M:.5f}, "
            f"{p.level:.0%} seed-noise interval [{p.lower:.5f}, {p.upper:.5f}] ({p.source}, "
            f"k = {p.k}; validation)"
        )
        if final.unstable:
            console.print(f"  unstable learners at that step: {final.unstable}", style="yellow")
    if any(r.llm is not None and r.llm.calls for r in records):
        console.print(f"LLM: {llm_spend(records)}")
    console.print(f"Run folder: [bold]{folder}[/bold]")


def llm_spend(records: list[Record]) -> str:
    s = Spend.of(r.llm for r in records)
    money = f"${s.cost:.4f}" if s.priced else "cost unknown (no price)"
    return f"{s.calls} calls, {s.input_tokens:,} input + {s.output_tokens:,} output tokens, {money}"


def _decision_text(record: Record) -> Text:
    text = Text(f"step {record.step} ")
    text.append(record.status, style=STATUS_STYLE[record.status])
    text.append(f": {record.reason}")
    return text


def _one_line(record: Record) -> str:
    if record.event == "baseline":
        s = record.carried()[0]
        stats = (
            f"E={s.E:.5f} rho={s.rho:.4f} E_M={_plus_minus(s.E_M, record.predicted)}" if s else ""
        )
        return f"[baseline] {record.status} {stats} {record.reason}"
    return f"[{record.step}] {record.status}: {_edits_summary(record)} -- {record.reason}"


def _edits_summary(record: Record) -> str:
    parts = []
    for edit in record.edits:
        if edit["path"] == "" and record.arch_hash:  # a whole architecture (random, optuna)
            parts.append(f"{edit['op']} the whole architecture with {record.arch_hash[:12]}")
            continue
        value = f"={edit['value']}" if "value" in edit else ""
        parts.append(f"{edit['op']} {edit['path']}{value}")
    return "; ".join(parts)


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
            f"± the {val['level']:.0%} seed-noise interval ({', '.join(val['sources'])}; "
            f"theory/seed_noise.py); it covered the realised error {val['covered']}/{val['of']} "
            f"times on val, {test['covered']}/{test['of']} on test (✗: missed)"
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


def _with_interval(entry: dict, split: str, M: int) -> str:
    """The predicted error with its seed-noise interval's half-width (✗: it missed)."""
    predicted, interval = entry["predicted"][split][M], entry.get("interval", {}).get(split)
    if interval is None:
        return f"{predicted:.5f}"
    half = (interval["upper"] - interval["lower"]) / 2
    return f"{predicted:.5f} ±{half:.5f}{'' if interval['covered'] else ' ✗'}"


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
            f"realised {M}-member error {c['covered']}/{c['of']}"
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
                       _plus_minus(choice.val, choice.val_interval),
                       _plus_minus(choice.test, choice.test_interval))  # fmt: skip
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


def _plus_minus(value: float, interval) -> str:
    if interval is None:
        return f"{value:.5f}"
    return f"{value:.5f} ± {(interval.upper - interval.lower) / 2:.5f}"


def _interval_source(interval) -> str:
    if interval.source == "learners":
        return "from each architecture's own learners"
    return (
        "each architecture's own learners where it has three or more, else a spread pooled "
        f"over {interval.pooled_over} of the run's architectures"
    )
