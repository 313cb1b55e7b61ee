"""How the search decides and spends: the gate, the target (one architecture or a
mixture) and multi-fidelity screening."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator

from edas_agent.config.section import Section
from edas_agent.theory.gate import Rule


class GateSettings(Section):
    rule: Rule = Field(
        "exact",
        description="Which rule decides (all are logged): exact or paper on squared loss, or "
        "logloss, the approximate log-loss E_M with logit averaging (classification); single "
        "judges by single-learner error alone (the gate at M = 1, for comparison).",
    )
    confidence: float | None = Field(
        None,
        ge=0.5,
        lt=1.0,
        description="Also require the paired-bootstrap upper bound of delta E_M at this "
        "confidence to be below zero; unset: the point estimate decides.",
    )
    min_effect: float | None = Field(
        0.5,
        ge=0,
        le=10,
        description="Also require the deciding loss to fall by at least this many times the "
        "seed noise measured on the starting baseline (sqrt(2) times the jackknife standard "
        "error of its E_M over its learners), so gains below what reseeding alone moves are "
        "not taken. A multiple, not an error: the error it makes is each round's logged "
        "`floor`. The starting baseline then gets at least 3 learners. 0.5 by default "
        "(docs: benchmarks/search-value.md); null turns it off.",
    )
    floor_from: Literal["start", "pooled"] = Field(
        "start",
        description="Where min_effect's seed noise comes from: the starting baseline's own "
        "learners, fixed for the run (start), or the run's seed-noise model pooled over every "
        "architecture with 3 or more learners so far, at the current baseline's E_M "
        "(pooled; the start's until something is pooled).",
    )
    interval_level: float = Field(
        0.9, ge=0.5, lt=1.0, description="Level of the logged interval when confidence is unset."
    )
    resamples: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples.")
    sequential: bool = Field(
        False, description="Train two more learners while the interval straddles zero."
    )
    max_learners: int = Field(
        8, ge=2, le=64, description="Cap on a candidate's learners in sequential mode."
    )
    confirm: bool = Field(
        True, description="Train fresh learners of an accepted candidate and judge again."
    )
    confirm_learners: int = Field(2, ge=1, le=64, description="Fresh learners per confirmation.")
    budget_learners: int | None = Field(
        4,
        ge=2,
        le=64,
        description="In a run with a compute budget (max_train_tflop or max_train_hours): the "
        "learners per decision and the fresh learners per confirmation, wherever "
        "evaluator.learners and gate.confirm_learners are not set. Twice the default's "
        "evidence per decision resolves smaller gains, for half the proposals (docs: "
        "benchmarks/search-value.md); null: 2 and 2, as in a run without one.",
    )
    selection_aware: bool = Field(
        False,
        description="Decide on selection-corrected numbers: before confirmation, the floor a "
        "candidate must clear is lowered by the baseline's own measured winner's curse (the "
        "share of its learners a gate chose, times the run's Selection shift; "
        "theory/seed_noise.py). Off by default: at equal compute it did not pay (search-value "
        "page).",
    )


class ExploreSettings(Section):
    """Exploration beyond the baseline's neighbourhood (agent/proposers/explore.py)."""

    lift_caps: bool = Field(
        False,
        description="Builtin proposer: mutations bounded by the space alone, not by the "
        "small caps (epochs, widths, layers) that keep a run without a compute budget to "
        "minutes; meant for a run with max_train_tflop or max_train_hours.",
    )
    on_repeat: Literal["repeat", "global"] = Field(
        "repeat",
        description="When the proposer offers an architecture already evaluated (an "
        "exhausted neighbourhood): repeat, recorded with its learners reused (nothing "
        "trained); or global, a draw from the whole space in its place.",
    )
    global_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Most share of proposals drawn from the whole space instead of edited "
        "from the baseline. The share used adapts: this times the rate at which the last "
        "`window` local proposals were not accepted (a Beta(1, 1) posterior mean).",
    )
    window: int = Field(10, ge=1, le=1000, description="Local proposals the share looks at.")
    sampler: Literal["random", "tpe"] = Field(
        "random",
        description="Who draws global proposals: random walks over the space, or Optuna's "
        "TPE told every judged candidate's predicted E_M, the local proposals' too, and each "
        "draw the cost bound refused as infeasible (needs the optuna extra).",
    )
    max_growth: float | None = Field(
        4.0,
        gt=1.0,
        description="A global draw may cost at most this many times the baseline's "
        "training FLOPs per learner (where the evaluator can tell before training); "
        "capacity then grows with each accepted step. null: no bound.",
    )

    @property
    def enabled(self) -> bool:
        return self.on_repeat == "global" or self.global_share > 0


class ContinuousSettings(Section):
    """Continuous steps (agent/continuous/steps.py)."""

    enabled: bool = Field(
        False,
        description="After each accepted step, propose the optimum of the space's bounded "
        "real numbers (dropout, learning rate, weight decay, l2, bagging fraction) under a "
        "surrogate of E and D fitted on every judged architecture, when it predicts a gain "
        "that reaches the gate's floor.",
    )
    bagging: Literal["closed_form", "surrogate"] = Field(
        "closed_form",
        description="How the bagging fraction (where the space has /bagging/fraction) is "
        "stepped: closed_form measures the baseline at a few fractions (one proposal each) "
        "and proposes f*(M) from the fitted quadratics (docs: guides/bagging.md); surrogate "
        "moves it with the other knobs.",
    )
    trust_region: float = Field(
        0.15,
        gt=0.0,
        le=1.0,
        description="Most change of each knob, as a share of its range (log range where "
        "log-scaled): the surrogate is trusted only near the baseline.",
    )


class SearchSettings(Section):
    target: Literal["single", "mixture"] = Field(
        "single",
        description="What the search improves. single: one architecture, deployed as M "
        "copies (the gate compares E_M). mixture: an ensemble of several architectures; a "
        "candidate is accepted when the best mixture of the current mixture's architectures "
        "plus the candidate predicts a lower M-member error (agent/theory/mixture_gate.py).",
    )
    max_architectures: int | None = Field(
        None,
        ge=1,
        le=64,
        description="search.target mixture: most different architectures in the mixture "
        "(each one is a model to build and serve); unset: no limit.",
    )
    explore: ExploreSettings = Field(default_factory=ExploreSettings)
    continuous: ContinuousSettings = Field(default_factory=ContinuousSettings)


class ScreeningSettings(Section):
    enabled: bool = Field(
        False,
        description="Multi-fidelity screening (agent/fidelity/staging.py): each round asks for "
        "screening.proposals proposals, trains them all to a small fraction of their "
        "schedule, drops those that cannot beat the baseline and keeps the best 1/eta at "
        "each stage; only the survivors are fully trained and judged by the gate.",
    )
    proposals: int = Field(9, ge=2, le=64, description="Proposals per screened round.")
    eta: int = Field(
        3,
        ge=1,
        le=16,
        description="Successive halving: each stage keeps the best ceil(n / eta) by predicted "
        "E_M; 1 keeps all (only the early-stopping rule prunes).",
    )
    stages: int = Field(
        2,
        ge=1,
        le=4,
        description="Partial-fidelity stages before full training, at fractions "
        "eta^-stages, ..., eta^-1 of the schedule (with eta 1: 1/3, 2/3, ...).",
    )
    prune: bool = Field(
        True,
        description="Stop a candidate when the optimistic end of its predicted final E_M "
        "(early-curve model, screening.level) still fails the gate's bar.",
    )
    level: float = Field(
        0.95, ge=0.5, le=0.99, description="One-sided confidence of that optimistic bound."
    )
    predictor: bool = Field(
        True,
        description="A fused predictor of full-fidelity E_M from cheap signals (size, FLOPs, "
        "a zero-cost proxy, lowest-fidelity E_M and D, distance to evaluated architectures), "
        "refitted after every full evaluation; it orders a round's proposals and, once warm, "
        "ranks the first stage.",
    )
    warm: int = Field(
        6, ge=3, le=1000, description="Full evaluations before the predictor ranks anything."
    )
    skip: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of a round's proposals the warm predictor skips before any "
        "training (recorded as pruned at stage 0); 0 only orders them.",
    )

    stage_seeds: Literal["shared", "independent"] = Field(
        "shared",
        description="shared: stages train the gate's own learners and a survivor goes on "
        "from its last stage to full training; independent: stages train learners of their "
        "own seeds, which the gate never sees, and a survivor's full training starts again "
        "on the gate's seeds (costs that stage's share of a full training more, but the luck "
        "that made a candidate look good early does not also decide its judgement, and an "
        "audit of pruned candidates is unbiased).",
    )
    survivor_learners: int | None = Field(
        None,
        ge=2,
        le=64,
        description="Learners a survivor's decision round uses; unset: evaluator.learners. "
        "More make the gate's judgement of the few survivors less noisy, paid from what "
        "screening saves; with shared stage seeds the extra ones are fresh seeds, which "
        "the early selection did not pick for their luck.",
    )
    reach: int | None = Field(
        None,
        ge=1,
        le=6,
        description="Builtin proposer: a screened round's proposals combine 1, 2, ... up to "
        "this many mutations, in equal shares; unset: one or two, as without screening. "
        "Screening looks at a proposal cheaply, so it can afford farther steps, whose gains "
        "and losses are larger than the seed noise a cheap stage must see through.",
    )
    stage_fractions: list[float] | None = Field(
        None,
        description="Explicit partial fractions of the schedule, increasing, in (0, 1), "
        "instead of eta^-stages ... (e.g. [0.111] with eta 3: one stage at 1/9 keeping a "
        "third); screening.stages is then ignored.",
    )

    @field_validator("stage_fractions")
    @classmethod
    def _increasing(cls, fractions: list[float] | None) -> list[float] | None:
        if fractions is not None and (
            not fractions
            or any(not 0 < f < 1 for f in fractions)
            or any(b <= a for a, b in itertools.pairwise(fractions))
        ):
            raise ValueError("must be increasing fractions strictly between 0 and 1")
        return fractions

    def fractions(self) -> tuple[float, ...]:
        """The partial fractions of the schedule, increasing (full training follows)."""
        if self.stage_fractions is not None:
            return tuple(self.stage_fractions)
        if self.eta == 1:
            return tuple((s + 1) / (self.stages + 1) for s in range(self.stages))
        return tuple(float(self.eta) ** -(self.stages - s) for s in range(self.stages))
