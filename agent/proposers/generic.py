"""The offline proposer for any bounded pydantic space (a plugin's, a command's JSON Schema).

The built-in tabular space has hand-written mutations (builtin.py); a user's space has only
its schema. Every single edit the schema allows comes from agent/proposers/edit_schema.py, the same
list an LLM's typed answer schema offers: one place of the document (a field, a list item,
an append or a removal) and a value from its bounded grid. A round picks a place, weighting
places whose edits were accepted before (a Beta(1, 1) success rate per place, as builtin.py
does per mutation), then a value: for an ordered numeric grid usually a neighbour of the
current value (a local step), otherwise any value on offer. Seeded and deterministic given
the same contexts.
"""

from __future__ import annotations

from typing import Any

import jsonpointer
import numpy as np

from edas_agent.outcome import Outcome
from edas_agent.proposers.base import Check, Proposal, ProposalContext
from edas_agent.proposers.edit_schema import Keep, checked, edit_variants, edits_of, novel
from edas_agent.proposers.edits import Edit
from edas_agent.record import LLMUsage

_LOCAL_STEP = 0.7  # chance of a neighbouring grid value rather than any value


class GenericProposer:
    replays_deterministically = True

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([seed, 0x6E6E])
        self.tried: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self._last: list[tuple[int, str]] = []

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        self._learn(context)
        # The loop's check knows what trains the same model (settings that cannot act)
        keep = checked(check) if check else novel(context.architecture, context.evaluated_hashes)
        chosen: set[str] = set()  # this answer's edits, as JSON
        proposals = []
        for offset in range(context.proposals):
            edit = self._sample(context, lambda e: e.model_dump_json() not in chosen and keep(e))
            if edit is None:
                break  # every single edit leads somewhere already evaluated
            chosen.add(edit.model_dump_json())
            self._last.append((context.step + offset, edit.path))
            proposals.append(
                Proposal(
                    rationale=f"one step on {edit.path}",
                    edits=[edit],
                    usage=LLMUsage(provider="builtin", model="generic"),
                )
            )
        if not proposals:
            return [
                Proposal(
                    rationale="",
                    edits=[],
                    usage=LLMUsage(provider="builtin", model="generic"),
                    refused=Outcome(
                        "invalid", "every single edit of the baseline was evaluated before"
                    ),
                )
            ]
        return proposals

    def _sample(self, context: ProposalContext, keep: Keep) -> Edit | None:
        places = []
        for variant in edit_variants(context.space_schema, context.architecture):
            edits = [e for e in edits_of(variant) if keep(e)]
            if edits:
                places.append((variant["properties"]["path"]["const"], edits))
        if not places:
            return None
        weights = np.array(
            [(1 + self.accepted.get(p, 0)) / (2 + self.tried.get(p, 0)) for p, _ in places]
        )
        path, edits = places[int(self.rng.choice(len(places), p=weights / weights.sum()))]
        return edits[self._value_index(edits, context.architecture, path)]

    def _value_index(self, edits: list[Edit], document: dict[str, Any], path: str) -> int:
        values = [e.value for e in edits]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        current = _at(document, path)
        if numeric and isinstance(current, int | float) and self.rng.random() < _LOCAL_STEP:
            # The nearest value below and above the current one.
            below = [i for i, v in enumerate(values) if v < current]
            above = [i for i, v in enumerate(values) if v > current]
            nearest = [max(below, key=lambda i: values[i])] if below else []
            nearest += [min(above, key=lambda i: values[i])] if above else []
            return int(self.rng.choice(nearest))
        return int(self.rng.integers(len(edits)))

    def _learn(self, context: ProposalContext) -> None:
        outcomes = {h.step: h.status for h in context.history}
        for step, path in self._last:
            if step in outcomes:
                self.tried[path] = self.tried.get(path, 0) + 1
                if outcomes[step] == "accepted":
                    self.accepted[path] = self.accepted.get(path, 0) + 1
        self._last = [(s, p) for s, p in self._last if s not in outcomes]


def _at(document: dict[str, Any], path: str) -> Any:
    try:
        return jsonpointer.resolve_pointer(document, path, None)
    except jsonpointer.JsonPointerException:
        return None
