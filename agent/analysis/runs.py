"""`edas-agent runs`: every run folder with its state, progress, best E_M and cost."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from edas_agent.errors import UserError
from edas_agent.record import CONFIG, LOCK, TRAJECTORY, Record, read_records
from edas_agent.record.folder import _alive, _pid_in
from edas_agent.training.costs import Spend


class RunSummary(BaseModel):
    folder: str
    state: str  # running, finished, stopped, failed
    steps: int
    budget: int | None
    best_step: int | None
    best_E_M: float | None  # E_mix, the mixture's, in a mixture search
    # half the width of best_E_M's 90 % seed-noise interval (none for a mixture's E_mix),
    # and where the run's winner's curse moved its centre, that centre
    best_E_M_plus_minus: float | None = None
    best_E_M_centre: float | None = None
    accepted: int
    learners: int
    llm_cost: float
    pruned: int = 0  # proposals multi-fidelity screening stopped before full training
    train_tflop: float = 0.0  # training compute, as the evaluator reports it (0: it does not)
    train_hours: float = 0.0  # measured, summed over learners trained in parallel


def list_runs(runs_dir: Path) -> list[RunSummary]:
    if not runs_dir.is_dir():
        raise UserError(f"no runs folder at {runs_dir}")
    summaries = []
    for folder in sorted(p for p in runs_dir.iterdir() if (p / TRAJECTORY).is_file()):
        try:
            records = read_records(folder)
        except UserError:
            summaries.append(_unreadable(folder))
            continue
        summaries.append(_summary(folder, records))
    return summaries


def _summary(folder: Path, records) -> RunSummary:
    budget = _budget(folder)
    steps = max((r.step for r in records), default=0)
    best = next((r for r in reversed(records) if r.accepted), None)
    owner = _pid_in(folder / LOCK)
    if owner is not None and _alive(owner):
        state = "running"
    elif not records and (folder / "calibration.json").is_file():
        state = "calibration"
    elif not records or (records[0].status == "failed"):
        state = "failed"
    elif budget is not None and steps >= budget:
        state = "finished"
    else:
        state = "stopped"
    return RunSummary(
        folder=folder.name,
        state=state,
        steps=steps,
        budget=budget,
        best_step=best.step if best else None,
        best_E_M=best.predicted_error() if best else None,
        best_E_M_plus_minus=_half_width(best),
        best_E_M_centre=_moved_centre(best),
        accepted=sum(r.accepted for r in records if r.event == "proposal"),
        learners=sum(r.cost.learners_trained for r in records),
        llm_cost=Spend.of(r.llm for r in records).cost,
        pruned=sum(r.status == "pruned" for r in records),
        train_tflop=sum(r.cost.train_flops for r in records) / 1e12,
        train_hours=sum(r.cost.train_seconds for r in records) / 3600,
    )


def _half_width(best: Record | None) -> float | None:
    if best is None or best.predicted is None or best.mixture() is not None:
        return None
    return best.predicted.half_width


def _moved_centre(best: Record | None) -> float | None:
    if _half_width(best) is None or not best.predicted.shift:
        return None
    return best.predicted.centre


def _budget(folder: Path) -> int | None:
    try:
        return int(yaml.safe_load((folder / CONFIG).read_text()).get("budget"))
    except (OSError, AttributeError, TypeError, ValueError, yaml.YAMLError):
        return None


def _unreadable(folder: Path) -> RunSummary:
    return RunSummary(
        folder=folder.name, state="unreadable", steps=0, budget=_budget(folder), best_step=None,
        best_E_M=None, accepted=0, learners=0, llm_cost=0.0,
    )  # fmt: skip
