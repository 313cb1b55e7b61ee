"""An Optuna sampler as the proposer (`llm.provider: optuna`, `--llm optuna:tpe`).

Each proposal is a whole architecture the sampler asks for, over the space's parameters
(edas_agent.integrations.optuna: the same encoding `edas-agent export` writes), replacing
the baseline's document like a random draw does. The gate judges it as any proposal, and
the sampler is told each outcome when the next round's context shows it: the predicted
ensemble error (E_M; E_mix in a mixture search) of a judged candidate, a failed trial for
an invalid or failed one, a pruned trial for one screening stopped. So TPE learns the
ensemble objective, not one model's accuracy. A draw the space refuses is told as failed
at once and drawn again. The starting baseline is the study's first trial.

Samplers (the model name): tpe (default), cmaes, qmc, random, each seeded with the run
seed, and nsga2, NSGA-II on two objectives, the predicted ensemble error and the forward
FLOPs per example (what serving M members costs): it searches the front of the two, while
the gate still accepts only a lower E_M. Given the same outcomes a seeded sampler asks for
the same trials, so a run replays and resumes like one with the builtin proposer. The
sampler learns from the outcomes the context's history shows (`llm.history`, 12 by
default): keep it at least the round size.
"""

from __future__ import annotations

from typing import Any

from edas_agent.integrations.optuna import distributions, params_of, suggest
from edas_agent.outcome import Outcome
from edas_agent.proposers.base import Check, HistoryEntry, Proposal, ProposalContext
from edas_agent.proposers.edits import Edit, ProposedEdits
from edas_agent.record import LLMUsage

SAMPLERS = ("tpe", "cmaes", "qmc", "random", "nsga2")
_DRAWS = 50  # asks per proposal before giving up on a draw the space accepts


class OptunaProposer:
    replays_deterministically = True

    def __init__(self, seed: int, sampler: str = "tpe"):
        import optuna

        if sampler not in SAMPLERS:
            raise ValueError(f"unknown Optuna sampler {sampler!r}: one of {', '.join(SAMPLERS)}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.name = sampler
        self.objectives = 2 if sampler == "nsga2" else 1  # E_M, and FLOPs per example
        directions = ["minimize"] * self.objectives
        self.study = optuna.create_study(
            sampler=_sampler(optuna, sampler, seed), directions=directions
        )
        self.pending: dict[int, Any] = {}  # step -> its trial, until its outcome is known
        self.start: dict[str, Any] | None = None
        self.schema: dict[str, Any] | None = None

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        self.begin(context)
        for entry in context.history:
            self._tell(entry)
        proposals = []
        for offset in range(context.proposals):
            drawn = self._valid_draw(context, check)
            if drawn is None:
                break
            trial, edit = drawn
            self.pending[context.step + offset] = trial
            rationale = f"Optuna {self.name} trial {trial.number}"
            proposals.append(Proposal(rationale=rationale, edits=[edit], usage=self._usage()))
        if proposals:
            return proposals
        problem = f"the {self.name} sampler drew nothing the space accepts in {_DRAWS} tries"
        return [Proposal(rationale="", edits=[], usage=self._usage(),
                         refused=Outcome("invalid", problem))]  # fmt: skip

    def observe(self, document: dict[str, Any], error: float, flops: int | None) -> None:
        """A candidate someone else proposed (search.explore's local proposer) and its
        judged error, as a finished trial: the sampler's model learns from every candidate
        the search judged, not only from its own draws. Before `begin`, and for a document
        outside the encoded space, nothing."""
        if self.schema is None:
            return
        params = params_of(document, self.schema)
        try:
            trial = self.optuna.trial.create_trial(
                params=params, distributions=distributions(self.schema, params),
                values=self._values(error, flops),
            )  # fmt: skip
        except ValueError:  # a value its distribution does not contain
            return
        self.study.add_trial(trial)

    def begin(self, context: ProposalContext) -> None:
        """The study's first trial, the starting baseline, from the first context it sees
        (search.explore shows it every context, so that observe works before any draw)."""
        if self.start is None:
            self._add_start(context)

    def _add_start(self, context: ProposalContext) -> None:
        self.start, self.schema = context.architecture, context.space_schema
        params = params_of(self.start, context.space_schema)
        self.study.add_trial(self.optuna.trial.create_trial(
            params=params, distributions=distributions(context.space_schema, params),
            values=self._values(context.stats.E_M, context.baseline_flops),
        ))  # fmt: skip

    def _valid_draw(self, context: ProposalContext, check: Check | None):
        assert self.start is not None
        for _ in range(_DRAWS):
            trial = self.study.ask()
            edit = Edit(
                op="replace", path="", value=suggest(trial, context.space_schema, self.start)
            )
            if check is None or check([ProposedEdits(rationale="draw", edits=[edit])]) == [None]:
                return trial, edit
            self._refuse(trial, context)
        return None

    def _refuse(self, trial, context: ProposalContext) -> None:
        """A draw the check refused (the space, or search.explore's cost bound). For TPE
        where Optuna has constraints (5.0 on), an infeasible finished trial, which TPE ranks
        below every feasible one and so learns to draw elsewhere; the value is the
        baseline's, infeasibility decides. Otherwise a failed trial, which samplers ignore:
        CMA-ES knows no constraints and would take the stand-in value as measured."""
        set_constraint = getattr(trial, "set_constraint", None)
        if set_constraint is None or self.name != "tpe":
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            return
        set_constraint("refused", 1.0)
        self.study.tell(trial, self._values(context.stats.E_M, context.baseline_flops))

    def _tell(self, entry: HistoryEntry) -> None:
        trial = self.pending.pop(entry.step, None)
        if trial is None:
            return
        states = self.optuna.trial.TrialState
        value = entry.E_mix if entry.E_mix is not None else entry.E_M
        if entry.status == "pruned":
            self.study.tell(trial, state=states.PRUNED)
        elif value is None:  # invalid or failed: nothing was measured
            self.study.tell(trial, state=states.FAIL)
        else:
            self.study.tell(trial, self._values(value, entry.flops))

    def _values(self, error: float, flops: int | None) -> list[float]:
        # An evaluator that reports no FLOPs leaves NSGA-II one objective that varies
        return [error, float(flops or 0)][: self.objectives]

    def _usage(self) -> LLMUsage:
        return LLMUsage(provider="optuna", model=self.name)


def _sampler(optuna, name: str, seed: int):
    samplers = optuna.samplers
    if name == "cmaes":  # categorical places fall back to independent sampling
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    return samplers.TPESampler(seed=seed)
