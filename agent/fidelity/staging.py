"""Multi-fidelity screening of a round's candidates (`screening.enabled`).

    order the round's new candidates by the fused predictor (predictor.py), once it is warm
    for each partial fraction f of the schedule (eta^-stages, ..., eta^-1):
        train every candidate still alive to f (k learners, as the gate would)
        forecast its full-training E, D, E_M from its stages (curves.py)
        prune it if even the optimistic end of its forecast fails the gate's bar
        keep the best ceil(entered / eta) of the rest by forecast E_M (successive halving)
    the survivors are trained fully and judged by the gate as usual

Only full-training statistics ever reach the gate, so acceptance and the monotonic
trajectory are unchanged; screening only decides which candidates are worth full
training. The screened quantity is the predicted ensemble error E_M with its diversity
term, not one model's accuracy. Every stage's statistics, forecasts and ranks are logged
in the record's `screening` trace, and `stage_decisions` (the one place that decides) is
re-run by `replay` from them. The models learn from every full evaluation the run logs
(`observe`), including on resume, since they are rebuilt from the records.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from edas_agent.config import Config, ScreeningSettings
from edas_agent.evaluators.base import Evaluator, document_of, optional
from edas_agent.fidelity.curves import CurveModel
from edas_agent.fidelity.predictor import DISTANCE, NEAREST, FusedPredictor
from edas_agent.outcome import Outcome
from edas_agent.record import Record, ScreeningTrace, StagePoint, StageResult
from edas_agent.search.checks import Candidate
from edas_agent.search.strategies import ScreeningResult
from edas_agent.theory.gate import statistics
from edas_agent.training.learners import LearnerStore

FIRST_SIGNALS = ("first_E_M", "first_D")  # known only after the lowest-fidelity stage
# Seed index of the first learner a stage trains with screening.stage_seeds "independent":
# far from the gate's learners (0, 1, ... and confirmation's next ones)
INDEPENDENT_FIRST = 500_000


@dataclass(frozen=True)
class Stop:
    """Why a candidate goes no further: the early-stopping bound, or successive halving."""

    rule: Literal["bound", "halving"]
    reason: str


class Models:
    """What screening has learned from the run's full evaluations: the early-curve model,
    the fused predictor and the evaluated architectures (for distances). Rebuilt from the
    records alone, so a resumed run and `replay` have exactly the live run's."""

    def __init__(self, settings: ScreeningSettings):
        self.use_predictor = settings.predictor
        self.curves = CurveModel(settings.level)
        self.predictor = FusedPredictor(settings.warm)
        self.evaluated: list[tuple[dict[str, Any], float]] = []  # flattened document, E_M

    def observe(self, record: Record) -> None:
        """Learn from a logged full evaluation: its curve, its signals, its realised E_M."""
        trace = record.screening
        if trace is None or not trace.curve or record.architecture is None:
            return
        realised = trace.curve[-1].E_M
        self.curves.add(trace.curve)
        if self.use_predictor:
            self.predictor.add(trace.signals, realised)
        self.evaluated.append((_flatten(record.architecture), realised))

    def predict(self, signals: dict[str, float]) -> float | None:
        return self.predictor.predict(signals) if self.use_predictor else None

    def nearest(self, document: dict[str, Any]) -> dict[str, float]:
        """Distance to the closest evaluated architecture, and its realised E_M."""
        if not self.evaluated:
            return {}
        flat = _flatten(document)
        distance, realised = min((_distance(flat, seen), e) for seen, e in self.evaluated)
        return {DISTANCE: float(distance), NEAREST: realised}


class Stager:
    def __init__(
        self,
        config: Config,
        evaluator: Evaluator,
        store: LearnerStore,
        on_progress: Callable[[str], None] = lambda text: None,
    ):
        self.on_progress = on_progress
        self.settings = config.screening
        self.proposals_per_round = self.settings.proposals
        self.reach = self.settings.reach
        self.fractions = self.settings.fractions()
        self.learners = config.evaluator.learners
        independent = self.settings.stage_seeds == "independent"
        self.stage_first = INDEPENDENT_FIRST if independent else 0
        self.members = config.members
        self.evaluator = evaluator
        self.store = store
        self.models = Models(self.settings)

    @property
    def full_fractions(self) -> tuple[float, ...]:
        """Where a fully trained candidate's curve is looked at."""
        return (*self.fractions, 1.0)

    def observe(self, record: Record) -> None:
        self.models.observe(record)

    def trace_of_full(self, architecture: BaseModel, arch_hash: str, trace: ScreeningTrace | None):
        """The trace of a fully trained architecture (the starting baseline, a survivor),
        with its curve from the store; None when it was not trained with one."""
        staged = self.store.curves.get(arch_hash)
        if staged is None:
            return trace
        k, y = self.learners, self.evaluator.y_val
        points = [
            _point(fraction, statistics(predictions[:k], y, self.members))
            for fraction, predictions in zip(staged.fractions, staged.val_predictions, strict=True)
        ]
        trace = trace or ScreeningTrace(signals=self.signals(architecture))
        if not any(name in trace.signals for name in FIRST_SIGNALS):
            trace.signals.update(first_E_M=points[0].E_M, first_D=points[0].D)
        trace.curve = points
        return trace

    def screen(self, candidates: list[Candidate], bar: float) -> dict[str, ScreeningResult]:
        """Screen the round's candidates that have no learners yet; the others (learners
        reused from an earlier step) go straight to the gate."""
        fresh = [
            c for c in candidates
            if self.store.get(c.arch_hash) is None and c.arch_hash not in self.store.failed
        ]  # fmt: skip
        screened = {c.arch_hash: ScreeningResult(self._opening_trace(c, bar)) for c in fresh}
        alive = sorted(fresh, key=lambda c: or_inf(screened[c.arch_hash].trace.predicted))
        alive = self._skip_least_promising(alive, screened)
        for stage, fraction in enumerate(self.fractions):
            if not alive:
                break
            self.on_progress(
                f"stage {stage + 1} of {len(self.fractions) + 1}: training {len(alive)} "
                f"candidates to {fraction:.3g} of the schedule ({len(fresh) - len(alive)} stopped)"
            )
            self._train_stage(alive, stage, fraction, screened)
            alive = [c for c in alive if screened[c.arch_hash].stopped is None]
            for c in alive:
                screened[c.arch_hash].trace.entered.append(len(alive))
            entries = [(c.arch_hash, screened[c.arch_hash].trace.stages[-1]) for c in alive]
            decisions = stage_decisions(entries, len(alive), bar, stage, self.settings)
            for arch_hash, stop in decisions.items():
                if stop is not None:
                    self.store.drop_stages(arch_hash)
                    screened[arch_hash].stopped = Outcome("pruned", stop.reason)
                    screened[arch_hash].trace.pruned_at = stage
                    screened[arch_hash].trace.pruned_by = stop.rule
            alive = [c for c in alive if decisions[c.arch_hash] is None]
        self.on_progress(
            f"{len(alive)} of {len(fresh)} candidates go to full training and the gate"
        )
        return screened

    def signals(self, architecture: BaseModel) -> dict[str, float]:
        """What is known of an architecture before any training."""
        signals: dict[str, float] = {}
        size = optional(self.evaluator, "size")
        if size is not None:
            measured = size(architecture)
            signals["log_parameters"] = math.log10(max(measured.parameters, 1))
            signals["log_flops"] = math.log10(max(measured.flops, 1))
        zero_cost = optional(self.evaluator, "zero_cost")
        if zero_cost is not None:
            signals["zero_cost"] = float(zero_cost(architecture))
        return signals | self.models.nearest(document_of(architecture))

    def _opening_trace(self, candidate: Candidate, bar: float) -> ScreeningTrace:
        signals = self.signals(candidate.architecture)
        predicted = self.models.predict(signals)
        return ScreeningTrace(signals=signals, predicted=predicted, bar=bar)

    def _skip_least_promising(
        self, ordered: list[Candidate], screened: dict[str, ScreeningResult]
    ) -> list[Candidate]:
        """The warm predictor's worst `screening.skip` share, pruned untrained."""
        skip = math.floor(self.settings.skip * len(ordered))
        if not skip or not self.models.predictor.warm or not self.settings.predictor:
            return ordered
        for rank, c in enumerate(ordered[len(ordered) - skip :], start=len(ordered) - skip + 1):
            trace = screened[c.arch_hash].trace
            trace.pruned_at, trace.pruned_by = -1, "predictor"
            screened[c.arch_hash].stopped = Outcome(
                "pruned",
                f"not trained: the fused predictor ranks it {rank} of {len(ordered)} "
                f"(E_M {trace.predicted:.5f}), in the {self.settings.skip:.0%} it skips",
            )
        return ordered[: len(ordered) - skip]

    def _train_stage(
        self,
        alive: list[Candidate],
        stage: int,
        fraction: float,
        screened: dict[str, ScreeningResult],
    ) -> None:
        wants = [(c.architecture, self.learners) for c in alive]
        results = self.store.train_stage(wants, fraction, self.stage_first)
        for c in alive:
            result, outcome = results[c.arch_hash], screened[c.arch_hash]
            if isinstance(result, Outcome):
                outcome.stopped = result
                continue
            point = _point(fraction, statistics(result, self.evaluator.y_val, self.members))
            trace = outcome.trace
            prediction = self.models.curves.predict([s.point for s in trace.stages] + [point])
            score, ranked_by = prediction.E_M, "curve"
            if stage == 0:
                trace.signals.update(first_E_M=point.E_M, first_D=point.D)
                trace.predicted_first = self.models.predict(trace.signals)
                if trace.predicted_first is not None:
                    score, ranked_by = trace.predicted_first, "predictor"
            trace.stages.append(
                StageResult(point=point, prediction=prediction, score=score, ranked_by=ranked_by)
            )


def stage_decisions(
    entries: list[tuple[str, StageResult]],
    entered: int,
    bar: float,
    stage: int,
    settings: ScreeningSettings,
) -> dict[str, Stop | None]:
    """Who stops after a stage, and why (None: goes on). First the early-stopping rule
    (even the optimistic forecast fails the gate's bar), then successive halving: the best
    ceil(entered / eta) by score go on. Entries in the round's order, which breaks ties."""
    fraction = settings.fractions()[stage]
    where = f"stage {stage + 1} ({fraction:.3g} of the schedule)"
    decisions: dict[str, Stop | None] = {}
    rest = []
    for position, (key, result) in enumerate(entries):
        forecast = result.prediction
        if settings.prune and forecast.lower > bar:
            decisions[key] = Stop(
                "bound",
                f"stopped at {where}: forecast E_M {forecast.E_M:.5f}, at best "
                f"{forecast.lower:.5f} ({settings.level:.0%}, {forecast.curves} curves), "
                f"cannot reach the gate's bar {bar:.5f}",
            )
        else:
            rest.append((result.score, position, key, result))
    keep = math.ceil(entered / settings.eta)
    for rank, (score, _, key, result) in enumerate(sorted(rest), start=1):
        if rank <= keep:
            decisions[key] = None
        else:
            decisions[key] = Stop(
                "halving",
                f"halved at {where}: ranked {rank} of {len(rest)} by forecast E_M {score:.5f} "
                f"({result.ranked_by}); {keep} go on",
            )
    return decisions


def _point(fraction: float, stats) -> StagePoint:
    return StagePoint(fraction=fraction, E=stats.E, D=stats.D, E_M=stats.E_M)


def or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def _flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by JSON path: architectures compared leaf by leaf."""
    if isinstance(document, dict):
        flat: dict[str, Any] = {}
        for key, value in document.items():
            flat.update(_flatten(value, f"{prefix}/{key}"))
        return flat
    if isinstance(document, list):
        flat = {f"{prefix}/#": len(document)}
        for i, item in enumerate(document):
            flat.update(_flatten(item, f"{prefix}/{i}"))
        return flat
    return {prefix: document}


def _distance(a: dict[str, Any], b: dict[str, Any]) -> int:
    """Leaves that differ (present in one only, or with another value)."""
    return sum(a.get(key) != b.get(key) for key in a.keys() | b.keys())
