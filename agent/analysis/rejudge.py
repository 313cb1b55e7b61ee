"""The gate's full judgement of logged candidates, trained again after the run: what the
search would have decided about a candidate it stopped (pruned in screening), against the
baseline it was screened against. An audit of the pruning, as bench/search_value.py's
`--audit` runs it; the run folder is not changed beyond its learner store."""

from __future__ import annotations

from pathlib import Path

from edas_agent.config import load_config
from edas_agent.evaluators.base import Evaluator
from edas_agent.outcome import Outcome
from edas_agent.record import CONFIG, Record
from edas_agent.search.judging import Judge, Judged, make_gate, noise_floor
from edas_agent.search.state import Baseline
from edas_agent.training.learners import LearnerStore


def rejudge(
    folder: Path, records: list[Record], steps: list[int], evaluator: Evaluator
) -> dict[int, Judged | Outcome]:
    """Decision and the rounds after it, as the run's config plans them, for each step."""
    config = load_config(folder / CONFIG, {})
    gate = make_gate(config)
    judge = Judge.for_run(config, gate, evaluator, LearnerStore(evaluator, folder / "learners"))
    by_step = {r.step: r for r in records}
    judged: dict[int, Judged | Outcome] = {}
    for step in steps:
        record = by_step[step]
        assert record.baseline is not None and record.architecture is not None
        baseline = Baseline.of(by_step[record.baseline.step], evaluator.parse)
        # the floor as the run had it: from what was logged before the step's round
        seen = [r for r in records if r.step < step and r.round != record.round]
        floor = noise_floor(config, seen or records[:1], baseline.stats)
        architecture = evaluator.parse(record.architecture)
        judged[step] = judge.rounds(
            baseline, step, architecture, judge.plan.decision_learners(), floor
        )
    return judged
