"""Random search: every proposal is an architecture drawn from the space, not an edit of the
baseline. It is the baseline every search method must beat (bench/search_value.py's
`random` arm); the gate still decides which draw is kept, so the incumbent is the best
draw by predicted E_M.

A draw is a random walk from the starting architecture: as many steps as the space has
editable places, each a place and a value chosen uniformly among every single edit the
space allows (agent/proposers/edit_schema.py, the list an LLM's typed answer offers). It reaches
every architecture of any bounded space, pydantic or JSON Schema, with no code per space.
The proposal replaces the whole document (one JSON Patch `replace` at the root).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edas_agent.outcome import Outcome
from edas_agent.proposers.base import Check, Proposal, ProposalContext
from edas_agent.proposers.edit_schema import edit_variants, edits_of
from edas_agent.proposers.edits import Edit, ProposedEdits, apply_edits
from edas_agent.record import LLMUsage

_DRAWS = 50  # tries per proposal before giving up on finding a valid, new architecture


class RandomProposer:
    replays_deterministically = True

    def __init__(self, seed: int, draws: int = _DRAWS):
        self.draws = draws
        self.rng = np.random.default_rng([seed, 0x5A4D])
        self.origin: dict[str, Any] | None = None

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        if self.origin is None:  # the first context shows the starting architecture
            self.origin = context.architecture
        proposals = []
        for _ in range(context.proposals):
            edit = self._valid_draw(context, check)
            if edit is None:
                break
            proposals.append(Proposal(rationale="a random draw from the space", edits=[edit],
                                      usage=_USAGE))  # fmt: skip
        if proposals:
            return proposals
        problem = f"no valid new architecture in {self.draws} random draws"
        return [Proposal(rationale="", edits=[], usage=_USAGE, refused=Outcome("invalid", problem))]

    def _valid_draw(self, context: ProposalContext, check: Check | None) -> Edit | None:
        for _ in range(self.draws):
            edit = Edit(op="replace", path="", value=self._draw(context.space_schema))
            if check is None or check([ProposedEdits(rationale="draw", edits=[edit])]) == [None]:
                return edit
        return None

    def _draw(self, space: dict[str, Any]) -> dict[str, Any]:
        assert self.origin is not None
        document = self.origin
        for _ in range(len(edit_variants(space, self.origin))):
            variants = edit_variants(space, document)
            if not variants:
                break
            edits = edits_of(variants[int(self.rng.integers(len(variants)))])
            document = apply_edits(document, [edits[int(self.rng.integers(len(edits)))]])
        return document


_USAGE = LLMUsage(provider="builtin", model="random")
