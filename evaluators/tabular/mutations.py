"""The tabular space's hand-written mutations, which the builtin proposer draws from.

Two families, for the gate's two orthogonal mechanisms: diversity edits (make learners of
one architecture disagree more: lower rho) and accuracy edits (capacity, interactions, the
training recipe: lower E). A mutation returns JSON Patch operations, or None where it does
not apply to this architecture or table.

Bounds here are tighter than the space's so that the default run stays within minutes on a
laptop; an LLM proposer may use the whole space.
"""

from __future__ import annotations

from typing import Any

import jsonpointer
import numpy as np

from edas_agent.evaluators.base import Dataset, Document, Mutation, Mutations, Operation

_MAX_EPOCHS = 8
_MAX_WIDTH = 512
_MIN_BATCH = 128
_MAX_CROSS = 4


def _replace(path: str, value: Any) -> Operation:
    return {"op": "replace", "path": path, "value": value}


def _nudge(block: str, key: str, step: float, low: float, high: float) -> Mutation:
    """Add `step` to a bounded number; no edit when the result would leave [low, high]."""

    def mutate(doc: Document, rng: np.random.Generator, _: Dataset) -> list[Operation] | None:
        value = doc[block][key] + step
        value = round(value, 2) if isinstance(value, float) else value
        return [_replace(f"/{block}/{key}", value)] if low <= value <= high else None

    return mutate


def _scale(block: str, key: str, factor: float, low: float, high: float) -> Mutation:
    """Multiply a bounded number by `factor` (integers stay integers, floats keep 3 digits)."""

    def mutate(doc: Document, rng: np.random.Generator, _: Dataset) -> list[Operation] | None:
        old = doc[block][key]
        value = int(old * factor) if isinstance(old, int) else float(f"{old * factor:.3g}")
        return [_replace(f"/{block}/{key}", value)] if low <= value <= high else None

    return mutate


def widen_layer(doc: Document, rng: np.random.Generator, _: Dataset):
    widths = doc["tower"]["widths"]
    candidates = [i for i, w in enumerate(widths) if w * 2 <= _MAX_WIDTH]
    if not candidates:
        return None
    i = int(rng.choice(candidates))
    return [_replace(f"/tower/widths/{i}", widths[i] * 2)]


def narrow_layer(doc: Document, rng: np.random.Generator, _: Dataset):
    widths = doc["tower"]["widths"]
    candidates = [i for i, w in enumerate(widths) if w // 2 >= 8]
    if not candidates:
        return None
    i = int(rng.choice(candidates))
    return [_replace(f"/tower/widths/{i}", widths[i] // 2)]


def add_layer(doc: Document, rng: np.random.Generator, _: Dataset):
    widths = doc["tower"]["widths"]
    if len(widths) >= 4:
        return None
    width = max(8, (widths[-1] if widths else 64) // 2)
    return [{"op": "add", "path": "/tower/widths/-", "value": width}]


def remove_layer(doc: Document, rng: np.random.Generator, _: Dataset):
    widths = doc["tower"]["widths"]
    return (
        [{"op": "remove", "path": f"/tower/widths/{len(widths) - 1}"}] if len(widths) > 1 else None
    )


def _embeds_nothing(doc: Document, dataset: Dataset) -> bool:
    """No categorical columns and numerics not bucketised: embeddings have no effect."""
    categorical = dataset.get("categorical_fields", {})
    return not categorical and doc["numeric"]["transform"] != "bucketize"


def resize_embeddings(doc: Document, rng: np.random.Generator, dataset: Dataset):
    if _embeds_nothing(doc, dataset):
        return None
    dim = doc["embeddings"]["dim"]
    new = int(rng.choice([d for d in (max(1, dim // 2), min(64, dim * 2)) if d != dim]))
    return [_replace("/embeddings/dim", new)]


def field_embedding(doc: Document, rng: np.random.Generator, dataset: Dataset):
    """Give one high-cardinality field its own, larger embedding."""
    fields = dataset.get("categorical_fields", {})
    overrides = doc["embeddings"]["per_field"]
    candidates = sorted((f for f in fields if f not in overrides), key=lambda f: -fields[f])[:4]
    if not candidates:
        return None
    field = str(rng.choice(candidates))
    dim = min(64, doc["embeddings"]["dim"] * 2)
    # RFC 6901: a '/' or '~' in the field name is written '~1' or '~0' in the path.
    path = f"/embeddings/per_field/{jsonpointer.escape(field)}"
    return [{"op": "add", "path": path, "value": dim}]


def toggle_numeric_transform(doc: Document, rng: np.random.Generator, dataset: Dataset):
    if not dataset.get("numeric_fields"):
        return None
    current = doc["numeric"]["transform"]
    new = "standard" if current == "log_standard" else "log_standard"
    return [_replace("/numeric/transform", new)]


def change_norm(doc: Document, rng: np.random.Generator, _: Dataset):
    options = [n for n in ("none", "batch", "layer") if n != doc["tower"]["norm"]]
    return [_replace("/tower/norm", str(rng.choice(options)))]


def change_activation(doc: Document, rng: np.random.Generator, _: Dataset):
    options = [a for a in ("relu", "gelu", "silu", "tanh") if a != doc["tower"]["activation"]]
    return [_replace("/tower/activation", str(rng.choice(options)))]


def _with_fields(mutation: Mutation, at_least: int) -> Mutation:
    """`mutation`, where the table has at least this many feature columns (bagging one
    column keeps it whatever the fraction)."""

    def mutate(doc: Document, rng: np.random.Generator, dataset: Dataset):
        fields = len(dataset.get("categorical_fields", {}))
        fields += len(dataset.get("numeric_fields", []))
        return mutation(doc, rng, dataset) if fields >= at_least else None

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


MUTATIONS = Mutations(diversity=DIVERSITY, accuracy=ACCURACY)
