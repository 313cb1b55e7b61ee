"""The tabular space's hand-written mutations, which the builtin proposer draws from.

Two families, for the gate's two orthogonal mechanisms: diversity edits (make learners of
one architecture disagree more: lower rho) and accuracy edits (capacity, interactions, the
training recipe: lower E). A mutation returns JSON Patch operations, or None where it does
not apply to this architecture or table.

By default the bounds here are tighter than the space's, so that a run without a compute
budget stays within minutes on a laptop; `MUTATIONS.uncapped` has the same mutations bounded
by the space alone, for a run whose compute budget bounds the time instead
(`search.explore.lift_caps`). An LLM proposer may use the whole space either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonpointer
import numpy as np

from edas_agent.evaluators.base import Dataset, Document, Mutation, Mutations, Operation

_MIN_BATCH = 128


@dataclass(frozen=True)
class Caps:
    epochs: int
    width: int
    layers: int
    cross: int


SMALL = Caps(epochs=8, width=512, layers=4, cross=4)  # a run within minutes
SPACE = Caps(epochs=20, width=1024, layers=6, cross=6)  # the space's own bounds


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


def _widen_layer(max_width: int) -> Mutation:
    def widen_layer(doc: Document, rng: np.random.Generator, _: Dataset):
        widths = doc["tower"]["widths"]
        candidates = [i for i, w in enumerate(widths) if w * 2 <= max_width]
        if not candidates:
            return None
        i = int(rng.choice(candidates))
        return [_replace(f"/tower/widths/{i}", widths[i] * 2)]

    return widen_layer


def narrow_layer(doc: Document, rng: np.random.Generator, _: Dataset):
    widths = doc["tower"]["widths"]
    candidates = [i for i, w in enumerate(widths) if w // 2 >= 8]
    if not candidates:
        return None
    i = int(rng.choice(candidates))
    return [_replace(f"/tower/widths/{i}", widths[i] // 2)]


def _add_layer(max_layers: int) -> Mutation:
    def add_layer(doc: Document, rng: np.random.Generator, _: Dataset):
        widths = doc["tower"]["widths"]
        if len(widths) >= max_layers:
            return None
        width = max(8, (widths[-1] if widths else 64) // 2)
        return [{"op": "add", "path": "/tower/widths/-", "value": width}]

    return add_layer


def remove_layer(doc: Document, rng: np.random.Generator, _: Dataset):
    widths = doc["tower"]["widths"]
    return (
        [{"op": "remove", "path": f"/tower/widths/{len(widths) - 1}"}] if len(widths) > 1 else None
    )


def _embeds_nothing(doc: Document, dataset: Dataset) -> bool:
    """No categorical columns and numerics not bucketised: embeddings have no effect."""
    categorical = dataset.get("categorical_fields", {})
    return not categorical and doc["numeric"]["transform"] != "bucketize"


def _shared_dim_unused(doc: Document, dataset: Dataset) -> bool:
    """Every categorical field has its own dimension and no numeric field is bucketised:
    /embeddings/dim sizes no table, so changing it trains the same model again."""
    categorical = dataset.get("categorical_fields", {})
    overridden = set(categorical) <= set(doc["embeddings"]["per_field"])
    return overridden and doc["numeric"]["transform"] != "bucketize"


def resize_embeddings(doc: Document, rng: np.random.Generator, dataset: Dataset):
    # Seen on a click table once `user` and `item` had their own sizes: 5 to 12 % of a
    # search's proposals resized nothing, and each was trained and judged like a real edit.
    if _embeds_nothing(doc, dataset) or _shared_dim_unused(doc, dataset):
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


def tabular_mutations(caps: Caps) -> Mutations:
    """The two families within `caps`."""
    diversity: dict[str, Mutation] = {
        "bag_fewer_fields": _with_fields(_nudge("bagging", "fraction", -0.1, 0.2, 1.0), 2),
        "more_dropout": _nudge("tower", "dropout", 0.1, 0.0, 0.5),
        "smaller_batch": _scale("training", "batch_size", 0.5, _MIN_BATCH, 4096),
        "higher_lr": _scale("training", "lr", 2.0, 1e-4, 0.03),
        "fewer_epochs": _nudge("training", "epochs", -1, 1, caps.epochs),
    }
    accuracy: dict[str, Mutation] = {
        "widen_layer": _widen_layer(caps.width),
        "narrow_layer": narrow_layer,
        "add_layer": _add_layer(caps.layers),
        "remove_layer": remove_layer,
        "add_cross_layer": _nudge("cross", "layers", 1, 0, caps.cross),
        "remove_cross_layer": _nudge("cross", "layers", -1, 0, caps.cross),
        "resize_embeddings": resize_embeddings,
        "field_embedding": field_embedding,
        "more_epochs": _nudge("training", "epochs", 1, 1, caps.epochs),
        "lower_lr": _scale("training", "lr", 0.5, 2e-4, 0.1),
        "toggle_numeric_transform": toggle_numeric_transform,
        "change_norm": change_norm,
        "change_activation": change_activation,
        "less_dropout": _nudge("tower", "dropout", -0.1, 0.0, 0.5),
        "bag_more_fields": _with_fields(_nudge("bagging", "fraction", 0.1, 0.2, 1.0), 2),
    }
    return Mutations(diversity=diversity, accuracy=accuracy)


MUTATIONS = Mutations(
    diversity=tabular_mutations(SMALL).diversity,
    accuracy=tabular_mutations(SMALL).accuracy,
    uncapped=tabular_mutations(SPACE),
)
DIVERSITY, ACCURACY = MUTATIONS.diversity, MUTATIONS.accuracy
