"""The offline proposer: seeded mutations of the tabular space, guided by the statistics.

The gate rewards two orthogonal mechanisms: an accuracy gain (lower E) and a diversity
gain (higher D, lower rho). When the baseline's learners are highly correlated (rho near 1)
the ensemble gains little from averaging, so diversity edits are tried more often; when
rho is low, E dominates E_M and capacity or training edits are tried more often. Within a
family, mutations that were accepted before are preferred (a Beta(1, 1) success rate).

Bounds here are tighter than the space's so that the default run stays within minutes on a
laptop; an LLM proposer may use the whole space.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonpointer
import numpy as np

from edas_agent.edits import Edit, apply_edits
from edas_agent.evaluators.base import canonical_hash
from edas_agent.proposers.base import Check, LLMUsage, Proposal, ProposalContext

Document = dict[str, Any]
Mutation = Callable[[Document, np.random.Generator, ProposalContext], list[Edit] | None]

_MAX_EPOCHS = 8
_MAX_WIDTH = 512
_MIN_BATCH = 128
_MAX_CROSS = 4
_NOVELTY_TRIES = 50
# Mutations per proposal at most, once every nearer draw of _NOVELTY_TRIES has been seen: a
# baseline that stops moving exhausts its near neighbourhood, and a screening run, which
# asks for many proposals a round, gets there first. Farther steps replace repeats.
_FARTHEST = 4
_MAX_DRAWS = 200  # mutation draws for one proposal; few mutations apply to a tiny space


def _replace(path: str, value: Any) -> Edit:
    return Edit(op="replace", path=path, value=value)


def _nudge(block: str, key: str, step: float, low: float, high: float) -> Mutation:
    """Add `step` to a bounded number; no edit when the result would leave [low, high]."""

    def mutate(doc: Document, rng: np.random.Generator, _: ProposalContext) -> list[Edit] | None:
        value = doc[block][key] + step
        value = round(value, 2) if isinstance(value, float) else value
        return [_replace(f"/{block}/{key}", value)] if low <= value <= high else None

    return mutate


def _scale(block: str, key: str, factor: float, low: float, high: float) -> Mutation:
    """Multiply a bounded number by `factor` (integers stay integers, floats keep 3 digits)."""

    def mutate(doc: Document, rng: np.random.Generator, _: ProposalContext) -> list[Edit] | None:
        old = doc[block][key]
        value = int(old * factor) if isinstance(old, int) else float(f"{old * factor:.3g}")
        return [_replace(f"/{block}/{key}", value)] if low <= value <= high else None

    return mutate


def widen_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    widths = doc["tower"]["widths"]
    candidates = [i for i, w in enumerate(widths) if w * 2 <= _MAX_WIDTH]
    if not candidates:
        return None
    i = int(rng.choice(candidates))
    return [_replace(f"/tower/widths/{i}", widths[i] * 2)]


def narrow_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    widths = doc["tower"]["widths"]
    candidates = [i for i, w in enumerate(widths) if w // 2 >= 8]
    if not candidates:
        return None
    i = int(rng.choice(candidates))
    return [_replace(f"/tower/widths/{i}", widths[i] // 2)]


def add_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    widths = doc["tower"]["widths"]
    if len(widths) >= 4:
        return None
    width = max(8, (widths[-1] if widths else 64) // 2)
    return [Edit(op="add", path="/tower/widths/-", value=width)]


def remove_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    widths = doc["tower"]["widths"]
    return [Edit(op="remove", path=f"/tower/widths/{len(widths) - 1}")] if len(widths) > 1 else None


def _embeds_nothing(doc: Document, context: ProposalContext) -> bool:
    """No categorical columns and numerics not bucketised: embeddings have no effect."""
    categorical = context.dataset.get("categorical_fields", {})
    return not categorical and doc["numeric"]["transform"] != "bucketize"


def resize_embeddings(doc: Document, rng: np.random.Generator, context: ProposalContext):
    if _embeds_nothing(doc, context):
        return None
    dim = doc["embeddings"]["dim"]
    new = int(rng.choice([d for d in (max(1, dim // 2), min(64, dim * 2)) if d != dim]))
    return [_replace("/embeddings/dim", new)]


def field_embedding(doc: Document, rng: np.random.Generator, context: ProposalContext):
    """Give one high-cardinality field its own, larger embedding."""
    fields = context.dataset.get("categorical_fields", {})
    overrides = doc["embeddings"]["per_field"]
    candidates = sorted((f for f in fields if f not in overrides), key=lambda f: -fields[f])[:4]
    if not candidates:
        return None
    field = str(rng.choice(candidates))
    dim = min(64, doc["embeddings"]["dim"] * 2)
    # RFC 6901: a '/' or '~' in the field name is written '~1' or '~0' in the path.
    path = f"/embeddings/per_field/{jsonpointer.escape(field)}"
    return [Edit(op="add", path=path, value=dim)]


def toggle_numeric_transform(doc: Document, rng: np.random.Generator, context: ProposalContext):
    if not context.dataset.get("numeric_fields"):
        return None
    current = doc["numeric"]["transform"]
    new = "standard" if current == "log_standard" else "log_standard"
    return [_replace("/numeric/transform", new)]


def change_norm(doc: Document, rng: np.random.Generator, _: ProposalContext):
    options = [n for n in ("none", "batch", "layer") if n != doc["tower"]["norm"]]
    return [_replace("/tower/norm", str(rng.choice(options)))]


def change_activation(doc: Document, rng: np.random.Generator, _: ProposalContext):
    options = [a for a in ("relu", "gelu", "silu", "tanh") if a != doc["tower"]["activation"]]
    return [_replace("/tower/activation", str(rng.choice(options)))]


def _with_fields(mutation: Mutation, at_least: int) -> Mutation:
    """`mutation`, where the table has at least this many feature columns (bagging one
    column keeps it whatever the fraction)."""

    def mutate(doc: Document, rng: np.random.Generator, context: ProposalContext):
        fields = len(context.dataset.get("categorical_fields", {}))
        fields += len(context.dataset.get("numeric_fields", []))
        return mutation(doc, rng, context) if fields >= at_least else None

    return mutate


# Diversity: make learners of one architecture disagree more.
DIVERSITY: dict[str, Mutation] = {
    "bag_fewer_fields": _with_fields(_nudge("bagging", "fraction", -0.1, 0.2, 1.0), 2),
    "more_dropout": _nudge("tower", "dropout", 0.1, 0.0, 0.5),
    "smaller_batch": _scale("training", "batch_size", 0.5, _MIN_BATCH, 4096),
    "higher_lr": _scale("training", "lr", 2.0, 1e-4, 0.03),
    "fewer_epochs": _nudge("training", "epochs", -1, 1, _MAX_EPOCHS),
}
# Accuracy: capacity, interactions and the training recipe.
ACCURACY: dict[str, Mutation] = {
    "widen_layer": widen_layer,
    "narrow_layer": narrow_layer,
    "add_layer": add_layer,
    "remove_layer": remove_layer,
    "add_cross_layer": _nudge("cross", "layers", 1, 0, _MAX_CROSS),
    "remove_cross_layer": _nudge("cross", "layers", -1, 0, _MAX_CROSS),
    "resize_embeddings": resize_embeddings,
    "field_embedding": field_embedding,
    "more_epochs": _nudge("training", "epochs", 1, 1, _MAX_EPOCHS),
    "lower_lr": _scale("training", "lr", 0.5, 2e-4, 0.1),
    "toggle_numeric_transform": toggle_numeric_transform,
    "change_norm": change_norm,
    "change_activation": change_activation,
    "less_dropout": _nudge("tower", "dropout", -0.1, 0.0, 0.5),
    "bag_more_fields": _with_fields(_nudge("bagging", "fraction", 0.1, 0.2, 1.0), 2),
}


class BuiltinProposer:
    """Seeded, offline, and deterministic given the same sequence of contexts."""

    replays_deterministically = True  # seeded: resume re-runs the recorded batches

    def __init__(self, seed: int):
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
            family = DIVERSITY if self.rng.random() < p_diversity else ACCURACY
            name = self._pick(family)
            new = family[name](document, self.rng, context)
            if new is None or name in names:
                continue
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
