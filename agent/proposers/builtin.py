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

import numpy as np

from agent.edits import Edit, apply_edits
from agent.proposers.base import LLMUsage, Proposal, ProposalContext
from evaluators.tabular.space import canonical_hash

Document = dict[str, Any]
Mutation = Callable[[Document, np.random.Generator, ProposalContext], list[Edit] | None]

_MAX_EPOCHS = 8
_MAX_WIDTH = 512
_MIN_BATCH = 128
_MAX_CROSS = 4
_NOVELTY_TRIES = 50


def _replace(path: str, value: Any) -> Edit:
    return Edit(op="replace", path=path, value=value)


# Diversity: make learners of one architecture disagree more.


def bag_fewer_fields(doc: Document, rng: np.random.Generator, _: ProposalContext):
    fraction = doc["bagging"]["fraction"]
    return [_replace("/bagging/fraction", round(fraction - 0.1, 2))] if fraction >= 0.3 else None


def more_dropout(doc: Document, rng: np.random.Generator, _: ProposalContext):
    dropout = doc["tower"]["dropout"]
    return [_replace("/tower/dropout", round(dropout + 0.1, 2))] if dropout <= 0.4 else None


def smaller_batch(doc: Document, rng: np.random.Generator, _: ProposalContext):
    batch = doc["training"]["batch_size"]
    return [_replace("/training/batch_size", batch // 2)] if batch // 2 >= _MIN_BATCH else None


def higher_lr(doc: Document, rng: np.random.Generator, _: ProposalContext):
    lr = doc["training"]["lr"]
    return [_replace("/training/lr", float(f"{lr * 2:.3g}"))] if lr * 2 <= 0.03 else None


# Accuracy: capacity and training.


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
    return [
        Edit(op="add", path="/tower/widths/-", value=max(8, (widths[-1] if widths else 64) // 2))
    ]


def remove_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    widths = doc["tower"]["widths"]
    return [Edit(op="remove", path=f"/tower/widths/{len(widths) - 1}")] if len(widths) > 1 else None


def add_cross_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    layers = doc["cross"]["layers"]
    return [_replace("/cross/layers", layers + 1)] if layers < _MAX_CROSS else None


def remove_cross_layer(doc: Document, rng: np.random.Generator, _: ProposalContext):
    layers = doc["cross"]["layers"]
    return [_replace("/cross/layers", layers - 1)] if layers > 0 else None


def resize_embeddings(doc: Document, rng: np.random.Generator, _: ProposalContext):
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
    return [
        Edit(
            op="add",
            path=f"/embeddings/per_field/{field}",
            value=min(64, doc["embeddings"]["dim"] * 2),
        )
    ]


def more_epochs(doc: Document, rng: np.random.Generator, _: ProposalContext):
    epochs = doc["training"]["epochs"]
    return [_replace("/training/epochs", epochs + 1)] if epochs < _MAX_EPOCHS else None


def fewer_epochs(doc: Document, rng: np.random.Generator, _: ProposalContext):
    epochs = doc["training"]["epochs"]
    return [_replace("/training/epochs", epochs - 1)] if epochs > 1 else None


def lower_lr(doc: Document, rng: np.random.Generator, _: ProposalContext):
    lr = doc["training"]["lr"]
    return [_replace("/training/lr", float(f"{lr / 2:.3g}"))] if lr / 2 >= 2e-4 else None


def toggle_numeric_transform(doc: Document, rng: np.random.Generator, _: ProposalContext):
    current = doc["numeric"]["transform"]
    return [
        _replace("/numeric/transform", "standard" if current == "log_standard" else "log_standard")
    ]


def change_norm(doc: Document, rng: np.random.Generator, _: ProposalContext):
    options = [n for n in ("none", "batch", "layer") if n != doc["tower"]["norm"]]
    return [_replace("/tower/norm", str(rng.choice(options)))]


def change_activation(doc: Document, rng: np.random.Generator, _: ProposalContext):
    options = [a for a in ("relu", "gelu", "silu", "tanh") if a != doc["tower"]["activation"]]
    return [_replace("/tower/activation", str(rng.choice(options)))]


def less_dropout(doc: Document, rng: np.random.Generator, _: ProposalContext):
    dropout = doc["tower"]["dropout"]
    return [_replace("/tower/dropout", round(dropout - 0.1, 2))] if dropout >= 0.1 else None


def bag_more_fields(doc: Document, rng: np.random.Generator, _: ProposalContext):
    fraction = doc["bagging"]["fraction"]
    return (
        [_replace("/bagging/fraction", round(min(1.0, fraction + 0.1), 2))]
        if fraction < 1
        else None
    )


DIVERSITY: dict[str, Mutation] = {
    f.__name__: f for f in (bag_fewer_fields, more_dropout, smaller_batch, higher_lr, fewer_epochs)
}
ACCURACY: dict[str, Mutation] = {
    f.__name__: f
    for f in (
        widen_layer, narrow_layer, add_layer, remove_layer, add_cross_layer, remove_cross_layer,
        resize_embeddings, field_embedding, more_epochs, lower_lr, toggle_numeric_transform,
        change_norm, change_activation, less_dropout, bag_more_fields,
    )
}  # fmt: skip


class BuiltinProposer:
    """Seeded, offline, and deterministic given the same sequence of contexts."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([seed, 0xED45])
        self.tried: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self._last: tuple[int, list[str]] | None = None

    def propose(self, context: ProposalContext) -> Proposal:
        self._learn(context)
        p_diversity = float(np.clip(context.stats.rho, 0.2, 0.8))
        for _ in range(_NOVELTY_TRIES):
            names, edits = self._sample(context, p_diversity)
            edited = apply_edits(context.architecture, edits)
            if canonical_hash(edited) not in context.evaluated_hashes:
                break
        self._last = (context.step, names)
        rationale = (
            f"rho={context.stats.rho:.4f}: P(diversity edit)={p_diversity:.2f}; "
            f"tried {', '.join(names)}"
        )
        return Proposal(
            rationale=rationale, edits=edits, usage=LLMUsage(provider="builtin", model="builtin")
        )

    def _sample(self, context: ProposalContext, p_diversity: float) -> tuple[list[str], list[Edit]]:
        n_mutations = 1 if self.rng.random() < 0.7 else 2
        names: list[str] = []
        edits: list[Edit] = []
        document = context.architecture
        while len(names) < n_mutations:
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
        if self._last is None:
            return
        step, names = self._last
        outcome = next((h for h in context.history if h.step == step), None)
        if outcome is None:
            return
        for name in names:
            self.tried[name] = self.tried.get(name, 0) + 1
            if outcome.status == "accepted":
                self.accepted[name] = self.accepted.get(name, 0) + 1
