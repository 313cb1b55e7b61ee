"""The offline proposer: seeded mutations that an evaluator offers, guided by the statistics.

The gate rewards two orthogonal mechanisms: an accuracy gain (lower E) and a diversity
gain (higher D, lower rho). When the baseline's learners are highly correlated (rho near 1)
the ensemble gains little from averaging, so diversity edits are tried more often; when
rho is low, E dominates E_M and capacity or training edits are tried more often. Within a
family, mutations that were accepted before are preferred (a Beta(1, 1) success rate).

The mutations come from the evaluator (the tabular space's: evaluators/tabular/mutations.py);
an evaluator that offers none is searched by proposers/generic.py instead.
"""

from __future__ import annotations

import numpy as np

from edas_agent.evaluators.base import Mutation, Mutations, canonical_hash
from edas_agent.proposers.base import Check, Proposal, ProposalContext
from edas_agent.proposers.edits import Edit, apply_edits
from edas_agent.record import LLMUsage

_NOVELTY_TRIES = 50
# Mutations per proposal at most, once every nearer draw of _NOVELTY_TRIES has been seen: a
# baseline that stops moving exhausts its near neighbourhood, and a screening run, which
# asks for many proposals a round, gets there first. Farther steps replace repeats.
_FARTHEST = 4
_MAX_DRAWS = 200  # mutation draws for one proposal; few mutations apply to a tiny space


class BuiltinProposer:
    """Seeded, offline, and deterministic given the same sequence of contexts."""

    replays_deterministically = True  # seeded: resume re-runs the recorded batches

    def __init__(self, seed: int, mutations: Mutations):
        self.mutations = mutations
        self.rng = np.random.default_rng([seed, 0xED45])
        self.tried: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self._last: list[tuple[int, list[str]]] = []

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        """context.proposals distinct proposals (the loop judges them; `check` is for LLMs)."""
        self._learn(context)
        p_diversity = float(np.clip(context.stats.rho, 0.2, 0.8))
        seen = set(context.evaluated_hashes)
        proposals = []
        for offset in range(context.proposals):
            # With a reach, the round's proposals take 1, 2, ..., reach mutations in turn.
            near = None if context.reach is None else 1 + offset % context.reach
            names, edits = self._novel(context, p_diversity, seen, near)
            seen.add(canonical_hash(apply_edits(context.architecture, edits)))
            self._last.append((context.step + offset, names))
            rationale = (
                f"rho={context.stats.rho:.4f}: P(diversity edit)={p_diversity:.2f}; "
                f"tried {', '.join(names)}"
            )
            usage = LLMUsage(provider="builtin", model="builtin")
            proposals.append(Proposal(rationale=rationale, edits=edits, usage=usage))
        return proposals

    def forget(self, from_step: int) -> None:
        """Proposals from this step on were not used (search.explore put others in their
        place): their outcomes say nothing about these mutations."""
        self._last = [(step, names) for step, names in self._last if step < from_step]

    def _novel(
        self, context: ProposalContext, p_diversity: float, seen: set[str], near: int | None
    ) -> tuple[list[str], list[Edit]]:
        """A draw of `near` mutations (None: one or two) whose architecture is not in
        `seen`, farther ones when those are exhausted; the last draw when even the farthest
        tries find nothing new."""
        # One step farther at a time; a draw without `near` takes at most two mutations
        nearest = 2 if near is None else near
        for n_mutations in (near, *range(nearest + 1, _FARTHEST + 1)):
            for _ in range(_NOVELTY_TRIES):
                names, edits = self._sample(context, p_diversity, n_mutations)
                if canonical_hash(apply_edits(context.architecture, edits)) not in seen:
                    return names, edits
        return names, edits

    def _sample(
        self, context: ProposalContext, p_diversity: float, n_mutations: int | None = None
    ) -> tuple[list[str], list[Edit]]:
        """One or two mutations (`n_mutations`, when given: that many, or as many distinct
        ones as apply in a bounded number of draws)."""
        if n_mutations is None:
            n_mutations = 1 if self.rng.random() < 0.7 else 2
        names: list[str] = []
        edits: list[Edit] = []
        document = context.architecture
        for _ in range(_MAX_DRAWS):
            if len(names) == n_mutations:
                break
            diverse = self.rng.random() < p_diversity
            family = self.mutations.diversity if diverse else self.mutations.accuracy
            family = family or self.mutations.accuracy or self.mutations.diversity  # one empty
            name = self._pick(family)
            operations = family[name](document, self.rng, context.dataset)
            if operations is None or name in names:
                continue
            new = [Edit.model_validate(o) for o in operations]
            names.append(name)
            edits.extend(new)
            document = apply_edits(document, new)
        return names, edits

    def _pick(self, family: dict[str, Mutation]) -> str:
        names = list(family)
        # Posterior mean of a Beta(1, 1) success rate: untried mutations start at 1/2.
        weights = np.array(
            [(1 + self.accepted.get(n, 0)) / (2 + self.tried.get(n, 0)) for n in names]
        )
        return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]

    def _learn(self, context: ProposalContext) -> None:
        """Count the outcomes of the previous round's mutations."""
        outcomes = {h.step: h.status for h in context.history}
        for step, names in self._last:
            if step not in outcomes:
                continue
            for name in names:
                self.tried[name] = self.tried.get(name, 0) + 1
                if outcomes[step] == "accepted":
                    self.accepted[name] = self.accepted.get(name, 0) + 1
        self._last = []
