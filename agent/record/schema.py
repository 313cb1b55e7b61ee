"""The run record: one line of trajectory.jsonl per starting baseline or proposal, and the
values a record is made of. The ground floor of the package: every reader of a run
(analysis, integrations, bench, a user's script) reads these without importing the search.

It imports only theory's value types (Stats, Judgement, Interval, ...), so the schema of
what a run logs is fixed here and nowhere else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, computed_field

from edas_agent.theory.gate import Judgement, Rule, Rules, Stats
from edas_agent.theory.logloss import LogLossStats
from edas_agent.theory.mixture_gate import MixtureJudgement, Part
from edas_agent.theory.seed_noise import PredictedError
from edas_agent.theory.uncertainty import Interval


class Cost(BaseModel):
    """What training a record's learners cost: learners, seconds, FLOPs."""

    learners_trained: int = 0  # fully trained
    train_seconds: float = 0.0
    # Multi-fidelity screening: learners trained part of their schedule, each counted as the
    # fraction it trained (two learners to 1/9 of it cost 2/9 of a learner)
    partial_learners: float = 0.0
    # Training FLOPs, full and partial training alike: 0 when the evaluator does not report
    # them (a plugin's or a command's, unless it says)
    train_flops: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            learners_trained=self.learners_trained + other.learners_trained,
            train_seconds=self.train_seconds + other.train_seconds,
            partial_learners=self.partial_learners + other.partial_learners,
            train_flops=self.train_flops + other.train_flops,
        )

    @property
    def learner_equivalents(self) -> float:
        """Full learners plus partial ones at their fraction: the compute, in learners."""
        return self.learners_trained + self.partial_learners


class LLMUsage(BaseModel):
    """What producing one proposal cost. For a round of several proposals the first one
    carries the round's usage and the others zero, so sums over records stay right."""

    provider: str
    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0  # US dollars; None when the model has no known price


Status = Literal["accepted", "rejected", "invalid", "failed", "pruned"]


class TestReport(BaseModel):
    """Test-split statistics and the task's metrics: reported, never used to decide."""

    stats: Stats
    metrics: dict[str, float]


class BaselineRef(BaseModel):
    """The baseline a proposal was compared with, as it stood (after its confirmation)."""

    step: int
    arch_hash: str
    stats: Stats
    logloss: LogLossStats | None = None
    mixture: list[Part] | None = None  # search.target mixture: the mixture it was judged against


class GateRound(Judgement):
    """One judgement of a proposal by the gate, and the learners trained for it. (Not to be
    confused with a batch: the proposals of one propose call, `Record.round` in the log.)

    kind "decision" uses the first k learners; "sequential" follows when the interval
    straddled zero or a learner was unstable, and two more learners were trained;
    "confirmation" follows an acceptance, on fresh learners plus all earlier ones (the
    winner's-curse guard).
    """

    kind: Literal["decision", "sequential", "confirmation"]
    cost: Cost = Cost()
    # a learner's error over 1.25 times its siblings' (theory/seed_noise.py): with
    # gate.sequential, two more learners follow, as when the interval straddles zero
    unstable: bool = False
    # search.target mixture: the judgement that decided (accepted, reason, interval,
    # confidence and min_effect above are its); stats, delta_E and rules describe the
    # candidate beside the baseline architecture, for the prompt and the report
    mixture: MixtureJudgement | None = None


class FreshCheck(BaseModel):
    """A confirmed candidate's decision learners beside its fresh confirmation learners
    alone, E_M of each group on each split: the winner's-curse sample that the run's
    `Selection` (theory/seed_noise.py) is measured from."""

    decision_learners: int
    fresh_learners: int
    val: tuple[float, float]  # (E_M of the decision learners, E_M of the fresh ones)
    test: tuple[float, float]

    def optimism(self, split: str) -> float:
        """Relative gap (fresh - decision) / decision: > 0 when selection flattered."""
        decision, fresh = getattr(self, split)
        return (fresh - decision) / decision


class Shrinkage(BaseModel):
    """Predicted gain at decision and after confirmation: the winner's curse, measured (of
    E_mix, the mixture's predicted error, in a mixture search)."""

    delta_E_M_at_decision: float
    delta_E_M_confirmed: float
    fresh: FreshCheck | None = None  # homogeneous candidates, runs since 2026-12-07


class StagePoint(BaseModel):
    """EDAS statistics of a candidate's k learners after `fraction` of their schedule."""

    fraction: float
    E: float
    D: float
    E_M: float


class CurvePrediction(BaseModel):
    """The early-curve model's forecast of full-training statistics (agent/fidelity/curves.py)."""

    E: float
    D: float
    E_M: float
    lower: float  # optimistic end of E_M at the screening level
    curves: int  # the run's full learning curves it was learned from


class StageResult(BaseModel):
    point: StagePoint
    prediction: CurvePrediction
    score: float  # what this stage ranked by (lower is more promising)
    ranked_by: Literal["curve", "predictor"]


class ScreeningTrace(BaseModel):
    """A candidate's multi-fidelity screening (agent/fidelity/staging.py), enough to
    re-derive it."""

    signals: dict[str, float] = {}  # the cheap signals the fused predictor saw
    predicted: float | None = None  # fused predictor's E_M before any training (None: cold)
    predicted_first: float | None = None  # ... with the lowest-fidelity E_M and D too
    bar: float | None = None  # E_M it had to reach to pass the gate (baseline minus floor)
    entered: list[int] = []  # candidates alive at the start of each stage, round-wide
    stages: list[StageResult] = []
    pruned_at: int | None = None  # stage index; -1: skipped by the predictor, untrained
    pruned_by: Literal["bound", "halving", "predictor"] | None = None
    curve: list[StagePoint] = []  # full training at the screening fractions and at 1


class Record(BaseModel):
    """One line of trajectory.jsonl: the starting baseline or one proposal's outcome."""

    event: Literal["baseline", "proposal"]
    step: int
    # First step of the record's batch (the proposals of one propose call, which share a
    # baseline). Logged as "round" since the first version of the format.
    round: int | None = None
    time: str
    status: Status
    reason: str
    rule: Rule
    members: int
    architecture: dict[str, Any] | None = None
    arch_hash: str | None = None
    edits: list[dict[str, Any]] = []
    rationale: str = ""
    stats: Stats | None = None  # at decision (first k learners); see rounds for the rest
    logloss: LogLossStats | None = None
    baseline: BaselineRef | None = None
    delta_E: float | None = None
    rules: Rules | None = None
    interval: Interval | None = None
    rounds: list[GateRound] = []  # every gate judgement in order; the last one decided
    shrinkage: Shrinkage | None = None
    test: TestReport | None = None
    parameters: int | None = None  # trainable parameters of one learner
    flops: int | None = None  # forward FLOPs per example of one learner
    learners: int | None = None  # learners of this architecture behind the final judgement
    cached_from: int | None = None  # step whose learners were reused instead of retraining
    outranked_by: int | None = None  # passed the gate, but a sibling in its round did better
    completion: int | None = None  # order its decision learners finished in within the round
    cost: Cost = Cost()
    llm: LLMUsage | None = None
    attempts: list[dict[str, Any]] | None = None  # the LLM's answers' problems, when repaired
    notes: list[str] = []  # baseline: what loading did to the data (rows dropped, ...)
    screening: ScreeningTrace | None = None  # multi-fidelity screening, when enabled
    # E_M of a fresh M-member ensemble with its seed-noise interval (validation), from the
    # learners behind the final judgement (theory/seed_noise.py)
    predicted: PredictedError | None = None
    # the start's learners split as a confirmed candidate's are: the seeds' own gap, with
    # nothing selected, that the run's winner's curse is measured against (runs since
    # 2026-12-07)
    reference: FreshCheck | None = None
    unstable: list[int] = []  # learners whose error is far from their siblings'

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accepted(self) -> bool:
        """Derived from status; logged beside it for readers of trajectory.jsonl."""
        return self.status == "accepted"

    def carried(self) -> tuple[Stats | None, LogLossStats | None]:
        """The statistics this architecture carries forward when it becomes the baseline."""
        if self.rounds:
            return self.rounds[-1].stats, self.rounds[-1].logloss
        return self.stats, self.logloss

    def mixture(self) -> MixtureJudgement | None:
        """The mixture judgement that decided, in a mixture search."""
        return self.rounds[-1].mixture if self.rounds else None

    def predicted_error(self) -> float | None:
        """What the search minimises, as this record predicts it if adopted: the mixture's
        E_mix in a mixture search, the architecture's E_M otherwise."""
        if (judged := self.mixture()) is not None:
            return judged.E_after
        stats = self.carried()[0]
        return stats.E_M if stats is not None else None
