"""Exploration: global proposals mixed into a local proposer's edits of the baseline.

A local proposer (the builtin mutations, an LLM) edits the baseline. When its steps stop
being accepted it is stuck in a neighbourhood, and once every near edit has been evaluated
it can only repeat one. `search.explore` puts global proposals, architectures drawn from
the whole space (random walks, or Optuna's TPE told each draw's E_M), in their place:

- a share of each round, at most `global_share` times the rate at which the last `window`
  local proposals were not accepted (a Beta(1, 1) posterior mean): a local search that
  keeps improving is left alone, a stuck one explores;
- every local proposal that repeats an evaluated architecture (`on_repeat: global`).

A global sampler that learns (TPE) is told every judged candidate, the local ones too: its
model of where the error is low then starts from the hundreds of candidates the local
search has judged, not from its own few draws, and its draws concentrate around the best.

A global draw may cost at most `max_growth` times the baseline's training FLOPs, where the
evaluator can tell before training (the tabular one can). Without that bound a draw from
the whole space costs, on average, more than a small budget's whole search; with it,
capacity grows with the incumbent, step by accepted step. A global draw is a proposal like
any other: the same gate, confirmation and budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edas_agent.config import Config
from edas_agent.evaluators.base import Evaluator, canonical_hash, optional
from edas_agent.proposers.base import Check, HistoryEntry, Proposal, ProposalContext, Proposer
from edas_agent.proposers.edits import ProposedEdits, apply_edits

_BOUNDED_DRAWS = 500  # tries for a random draw within the cost bound (a check is milliseconds)
PlannedFlops = Callable[[dict[str, Any]], float | None]  # a document's training FLOPs


class ExploringProposer:
    def __init__(
        self,
        local: Proposer,
        global_: Proposer,
        config: Config,
        planned_flops: PlannedFlops | None = None,
    ):
        self.local, self.global_ = local, global_
        self.settings = config.search.explore
        self.rng = np.random.default_rng([config.seed, 0xE8])
        self.planned_flops = planned_flops
        self.kind: dict[int, str] = {}  # step -> "local" or "global", until its outcome
        self.local_accepted: list[bool] = []  # the local proposals' outcomes, in order
        self.documents: dict[int, dict[str, Any]] = {}  # step -> a local proposal's document
        # A global sampler that learns from the local proposals' outcomes (OptunaProposer)
        self.begin = getattr(global_, "begin", None)
        self.observe = getattr(global_, "observe", None)
        self.replays_deterministically = (
            local.replays_deterministically and global_.replays_deterministically
        )

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        if self.begin is not None:  # a learning sampler starts its model at the start
            self.begin(context)
        self._learn(context.history)
        wanted = context.proposals
        local = self._local(context, wanted - int(self.rng.binomial(wanted, self.share())), check)
        keep = self._before_first_repeat(context, local)
        drawn = self._global(context, keep, wanted - keep, check) if keep < wanted else []
        if not drawn and keep < len(local):  # nothing to put in the repeats' place
            keep = len(local)
        if not keep and not drawn:  # a global round that drew nothing: a local one instead
            local = self._local(context, wanted, check)
            keep = len(local)
        forget = getattr(self.local, "forget", None)
        if forget is not None and keep < len(local):
            forget(context.step + keep)
        for offset in range(keep + len(drawn)):
            self.kind[context.step + offset] = "local" if offset < keep else "global"
        self._remember(context, local[:keep])
        return local[:keep] + drawn

    def share(self) -> float:
        recent = self.local_accepted[-self.settings.window :]
        not_accepted = (1 + recent.count(False)) / (2 + len(recent))
        return self.settings.global_share * not_accepted

    def _learn(self, history: list[HistoryEntry]) -> None:
        for entry in history:
            if self.kind.pop(entry.step, None) != "local":
                continue
            self.local_accepted.append(entry.status == "accepted")
            document = self.documents.pop(entry.step, None)
            error = entry.E_mix if entry.E_mix is not None else entry.E_M
            if self.observe is not None and document is not None and error is not None:
                self.observe(document, error, entry.flops)

    def _remember(self, context: ProposalContext, local: list[Proposal]) -> None:
        """Each local proposal's document, for the global sampler to learn its outcome."""
        if self.observe is None:
            return
        for offset, proposal in enumerate(local):
            if proposal.refused is None:
                try:
                    document = apply_edits(context.architecture, proposal.edits)
                except Exception:  # an edit that does not apply is the check's to report
                    continue
                self.documents[context.step + offset] = document

    def _local(self, context: ProposalContext, n: int, check: Check | None) -> list[Proposal]:
        if n <= 0:
            return []
        return self.local.propose(context.model_copy(update={"proposals": n}), check)[:n]

    def _before_first_repeat(self, context: ProposalContext, local: list[Proposal]) -> int:
        if self.settings.on_repeat == "repeat":
            return len(local)
        seen = context.evaluated_hashes
        for index, proposal in enumerate(local):
            if proposal.refused is None and _document_hash(context, proposal) in seen:
                return index
        return len(local)

    def _global(
        self, context: ProposalContext, offset: int, n: int, check: Check | None
    ) -> list[Proposal]:
        shifted = context.model_copy(update={"step": context.step + offset, "proposals": n})
        drawn = self.global_.propose(shifted, self._bounded(context, check))
        return [p for p in drawn[:n] if p.refused is None]

    def _bounded(self, context: ProposalContext, check: Check | None) -> Check:
        """`check`, and a global draw's cost within max_growth times the baseline's."""
        growth, planned = self.settings.max_growth, self.planned_flops
        limit = None
        if growth is not None and planned is not None:
            baseline = planned(context.architecture)
            limit = None if baseline is None else growth * baseline

        def bounded(answers: list[ProposedEdits]) -> list[str | None]:
            problems = check(answers) if check is not None else [None] * len(answers)
            if limit is None or planned is None:
                return problems
            for i, answer in enumerate(answers):
                cost = planned(apply_edits(context.architecture, answer.edits))
                if problems[i] is None and cost is not None and cost > limit:
                    problems[i] = f"costs more than {growth:g}x the baseline's training FLOPs"
            return problems

        return bounded


def with_exploration(proposer: Proposer, config: Config, evaluator: Evaluator) -> Proposer:
    """`proposer`, with global proposals mixed in as `search.explore` says (unchanged when
    it says none)."""
    settings = config.search.explore
    if not settings.enabled:
        return proposer
    if settings.sampler == "tpe":
        from edas_agent.proposers.sampler import OptunaProposer

        global_: Proposer = OptunaProposer(config.seed, "tpe")
    else:
        from edas_agent.proposers.random import RandomProposer

        # Most draws from the whole space cost more than max_growth allows: try many
        global_ = RandomProposer(config.seed, draws=_BOUNDED_DRAWS)
    return ExploringProposer(proposer, global_, config, _planned_flops(evaluator))


def _planned_flops(evaluator: Evaluator) -> PlannedFlops | None:
    """A document's training FLOPs per learner before training, where the evaluator can
    tell (`planned_train_flops`); None for a document the space refuses."""
    planned = optional(evaluator, "planned_train_flops")
    if planned is None:
        return None

    def of(document: dict[str, Any]) -> float | None:
        try:
            return float(planned(evaluator.parse(document)))
        except Exception:  # the space's refusal is the check's to report, not ours
            return None

    return of


def _document_hash(context: ProposalContext, proposal: Proposal) -> str | None:
    try:
        return canonical_hash(apply_edits(context.architecture, proposal.edits))
    except Exception:  # an edit that does not apply is the check's to report
        return None
