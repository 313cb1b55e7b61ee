"""What the user sees: a live panel during a run, and the accepted trajectory as a table."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from edas_agent.record import Cost, Record
from edas_agent.theory.mixture_gate import summary
from edas_agent.training.compute import describe
from edas_agent.training.costs import Spend

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
                f"{plus_minus(s.E_M, self.baseline.predicted)}  (k={s.k}"
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
            plus_minus(s.E_M, record.predicted),
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
            f"k = {p.k}{_chosen(p)}; validation)"
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
            f"E={s.E:.5f} rho={s.rho:.4f} E_M={plus_minus(s.E_M, record.predicted)}" if s else ""
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


def plus_minus(value: float, interval) -> str:
    """The estimate and its interval: "± half-width" when centred on it, the bounds when
    the run's winner's curse moved the interval off it (theory page)."""
    if interval is None:
        return f"{value:.5f}"
    if interval.shift:
        return f"{value:.5f} [{interval.lower:.5f}, {interval.upper:.5f}]"
    return f"{value:.5f} ± {interval.half_width:.5f}"


def _chosen(predicted) -> str:
    """How the winner's curse entered an interval, when it did."""
    if not predicted.selected:
        return ""
    return f", {predicted.selected} chosen by the gate, shifted {predicted.shift:+.2%}"
