"""`search.continuous`: after each accepted step, a continuous step on the new baseline.

The loop asks for it before the proposer: right after an acceptance, the surrogate
(surrogate.py) is fitted on every architecture the run has judged and solved from the new
baseline under its constraints; when it predicts a gain that reaches the gate's floor, its
optimum is the round's one proposal (judged like any other: learners, the gate,
confirmation; counted in the budget). Whether a step is taken depends only on the run's
records, so a resumed run takes the same ones, and `replay` re-derives each optimum from
what the step logged (its transcript: observations, knobs, the optimum).
"""

from __future__ import annotations

from pathlib import Path

from edas_agent.config import Config
from edas_agent.continuous.surrogate import ContinuousStep, Observation, continuous_knobs, solve
from edas_agent.evaluators.base import Evaluator, canonical_hash, document_of
from edas_agent.proposers.base import LLMUsage, Proposal
from edas_agent.proposers.edits import Edit, apply_edits
from edas_agent.search.journal import Record
from edas_agent.search.state import RunState

PROVIDER = "continuous"  # the llm.provider of its records


class ContinuousSteps:
    def __init__(self, config: Config, evaluator: Evaluator):
        self.settings = config.search.continuous
        self.members = config.members
        # Read from the space only when steps are on: every run builds this object
        enabled = self.settings.enabled
        self.knobs = continuous_knobs(evaluator.space().model_json_schema()) if enabled else []

    def propose(self, state: RunState, floor: float | None) -> Proposal | None:
        """The continuous step due now, or None (off, not right after an acceptance, or
        nothing predicted to pass the gate)."""
        if not self.settings.enabled or not self.knobs or not _just_accepted(state):
            return None
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


def rederive(folder: Path, records: list[Record]) -> tuple[int, list[str]]:
    """(continuous steps re-derived, mismatches): each step's optimum solved again from
    what it logged, its observations checked against the records before it."""
    checked, mismatches = 0, []
    by_step = {r.step: r for r in records}
    for index, record in enumerate(records):
        if record.llm is None or record.llm.provider != PROVIDER:
            continue
        path = folder / "llm" / f"step-{record.step:04d}.json"
        try:
            logged = ContinuousStep.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            mismatches.append(f"step {record.step}: continuous step's log unreadable: {exc}")
            continue
        baseline = by_step.get(record.baseline.step) if record.baseline else None
        base_doc = baseline.architecture if baseline else records[0].architecture
        again = solve(observations_of(records[:index]), base_doc, logged.knobs, logged.members,
                      logged.trust_region, logged.floor)  # fmt: skip
        edits = [e.operation() for e in edits_of(again)]
        if again.optimum != logged.optimum or edits != record.edits:
            mismatches.append(f"step {record.step}: the continuous optimum re-derives as "
                              f"{again.optimum}, logged {logged.optimum}")  # fmt: skip
        checked += 1
    return checked, mismatches


def _just_accepted(state: RunState) -> bool:
    proposals = state.proposals()
    return not proposals or proposals[-1].accepted
