"""`search.continuous`: after each accepted step, continuous steps on the new baseline.

The loop asks for them before the proposer. Right after an acceptance, with the bagging
fraction in the space (and `search.continuous.bagging: closed_form`), the closed form's
steps come first (bagging_steps.py: measurements of the baseline at a few fractions, one
proposal each, then f*(M)); then, once, the surrogate (surrogate.py) is fitted on every
architecture the run has judged and solved from the baseline under its constraints for the
other knobs. Each step whose predicted gain reaches the gate's floor is the round's one
proposal (judged like any other: learners, the gate, confirmation; counted in the budget).
Whether a step is taken depends only on the run's records, so a resumed run takes the
same ones, and `replay` re-derives each from what it logged (its transcript).
"""

from __future__ import annotations

from pathlib import Path

import edas_agent.continuous.bagging_steps as bagging_steps
from edas_agent.config import Config
from edas_agent.continuous.bagging_steps import MEASURE, OPTIMUM, BaggingStep
from edas_agent.continuous.surrogate import ContinuousStep, Observation, continuous_knobs, solve
from edas_agent.continuous.tuning import feature_fields
from edas_agent.evaluators.base import Evaluator, canonical_hash, document_of
from edas_agent.proposers.base import Proposal
from edas_agent.proposers.edits import Edit, apply_edits
from edas_agent.record import LLMUsage, Record
from edas_agent.search.state import RunState
from edas_agent.search.strategies import NoSteps, StepSource

PROVIDER = "continuous"  # the llm.provider of its records


def make_steps(config: Config, evaluator: Evaluator) -> StepSource:
    """The loop's StepSource (search/strategies.py): continuous steps, or NoSteps when
    `search.continuous` is off."""
    if not config.search.continuous.enabled:
        return NoSteps()
    return ContinuousSteps(config, evaluator)


class ContinuousSteps:
    """Continuous steps on each new baseline (`search.continuous`)."""

    def __init__(self, config: Config, evaluator: Evaluator):
        self.settings = config.search.continuous
        self.members = config.members
        knobs = continuous_knobs(evaluator.space().model_json_schema())
        self.bagging_fields: int | None = None  # the closed form's, when it takes the fraction
        if self.settings.bagging == "closed_form" and any(
            k.path == bagging_steps.PLACE for k in knobs
        ):
            fields = feature_fields(evaluator)
            if fields >= 2:  # one field has no fraction to choose: the surrogate keeps it
                self.bagging_fields = fields
                knobs = [k for k in knobs if k.path != bagging_steps.PLACE]
        self.knobs = knobs

    def propose(self, state: RunState, floor: float | None) -> Proposal | None:
        """The continuous step due now, or None (not after an acceptance, or nothing
        predicted to pass the gate)."""
        accepted, last = _just_accepted(state), _last_model(state)
        if self.bagging_fields and (accepted or last == MEASURE):
            proposal = self._bagging(state, floor)
            if proposal is not None:
                return proposal
        if not self.knobs or not (accepted or last in (MEASURE, OPTIMUM)):
            return None
        return self._surrogate(state, floor)

    def _bagging(self, state: RunState, floor: float | None) -> Proposal | None:
        assert self.bagging_fields is not None
        baseline = document_of(state.baseline.architecture)
        step = bagging_steps.plan(state.records, baseline, self.bagging_fields, self.members,
                                  floor or 0.0)  # fmt: skip
        if not step.proposed:
            return None
        edits = [Edit(op="replace", path=bagging_steps.PLACE, value=step.fraction)]
        if canonical_hash(apply_edits(baseline, edits)) in state.first_step:
            return None  # f* is a fraction already judged
        if step.purpose == "measure":
            what = f"measurement at bagging fraction {step.fraction:g} ({len(step.points)} so far)"
        else:
            what = f"f*(M) = {step.fraction:g}, predicted E_M gain {step.predicted_gain:.6f}"
        rationale = f"continuous step: the bagging closed form's {what}"
        model = MEASURE if step.purpose == "measure" else OPTIMUM
        usage = LLMUsage(provider=PROVIDER, model=model)
        return Proposal(rationale, edits, usage, transcript=step.model_dump(mode="json"))

    def _surrogate(self, state: RunState, floor: float | None) -> Proposal | None:
        solved = solve(
            observations(state), document_of(state.baseline.architecture), self.knobs,
            self.members, self.settings.trust_region, floor or 0.0,
        )  # fmt: skip
        if not solved.proposed:
            return None
        edits = edits_of(solved)
        document = apply_edits(document_of(state.baseline.architecture), edits)
        if canonical_hash(document) in state.first_step:
            return None
        rationale = (
            f"continuous step: the surrogate's constrained optimum of {len(edits)} knobs, "
            f"fitted on {len(solved.observations)} judged architectures (predicted E_M gain "
            f"{solved.predicted_gain:.6f})"
        )
        usage = LLMUsage(provider=PROVIDER, model="surrogate")
        return Proposal(rationale, edits, usage, transcript=solved.model_dump(mode="json"))


def observations(state: RunState) -> list[Observation]:
    return observations_of(state.records)


def observations_of(records: list[Record]) -> list[Observation]:
    """Every judged architecture once, with the statistics it was last judged on."""
    latest = {}
    for record in records:
        stats, _ = record.carried()
        if record.architecture is not None and record.arch_hash and stats is not None:
            latest[record.arch_hash] = Observation(architecture=record.architecture, E=stats.E,
                                                   D=stats.D)  # fmt: skip
    return list(latest.values())


def edits_of(solved: ContinuousStep) -> list[Edit]:
    return [
        Edit(op="replace", path=path, value=value)
        for path, value in solved.optimum.items()
        if value != solved.baseline[path]
    ]


def rederive_steps(folder: Path, records: list[Record]) -> tuple[int, list[str]]:
    """(continuous steps re-derived, mismatches): each step's optimum solved again from
    what it logged, its observations checked against the records before it."""
    checked, mismatches = 0, []
    by_step = {r.step: r for r in records}
    for index, record in enumerate(records):
        if record.llm is None or record.llm.provider != PROVIDER:
            continue
        path = folder / "llm" / f"step-{record.step:04d}.json"
        baseline = by_step.get(record.baseline.step) if record.baseline else None
        base_doc = baseline.architecture if baseline else records[0].architecture
        try:
            if record.llm.model in (MEASURE, OPTIMUM):
                problem = _rederive_bagging(path, record, records[:index], base_doc)
            else:
                problem = _rederive_surrogate(path, record, records[:index], base_doc)
        except (OSError, ValueError) as exc:
            problem = f"continuous step's log unreadable: {exc}"
        if problem:
            mismatches.append(f"step {record.step}: {problem}")
        checked += 1
    return checked, mismatches


def _rederive_surrogate(path: Path, record: Record, before: list[Record], base_doc) -> str | None:
    logged = ContinuousStep.model_validate_json(path.read_text())
    again = solve(observations_of(before), base_doc, logged.knobs, logged.members,
                  logged.trust_region, logged.floor)  # fmt: skip
    edits = [e.operation() for e in edits_of(again)]
    if again.optimum != logged.optimum or edits != record.edits:
        return f"the continuous optimum re-derives as {again.optimum}, logged {logged.optimum}"
    return None


def _rederive_bagging(path: Path, record: Record, before: list[Record], base_doc) -> str | None:
    logged = BaggingStep.model_validate_json(path.read_text())
    again = bagging_steps.plan(before, base_doc, logged.fields, logged.members, logged.floor)
    edit = Edit(op="replace", path=bagging_steps.PLACE, value=again.fraction).operation()
    if (again.purpose, again.fraction, [edit]) != (logged.purpose, logged.fraction, record.edits):
        return (f"the bagging step re-derives as {again.purpose} at {again.fraction}, logged "
                f"{logged.purpose} at {logged.fraction}")  # fmt: skip
    return None


def _just_accepted(state: RunState) -> bool:
    proposals = state.proposals()
    return not proposals or proposals[-1].accepted


def _last_model(state: RunState) -> str | None:
    """The llm.model of the last proposal, when a continuous step made it."""
    proposals = state.proposals()
    last = proposals[-1] if proposals else None
    if last is None or last.llm is None or last.llm.provider != PROVIDER:
        return None
    return last.llm.model
