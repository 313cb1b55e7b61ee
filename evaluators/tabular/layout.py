"""How an architecture lays a table's fields out for its learners: embedded fields grouped
by dimension (one concatenated table per group), and the fields each learner's feature bag
keeps, drawn from its seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edas_agent.evaluators.tabular.data import EncodedDataset
from edas_agent.evaluators.tabular.space import Architecture


@dataclass(frozen=True)
class FeatureBag:
    """The fields one learner sees: indices into the dataset's categorical and numeric fields."""

    categorical: tuple[int, ...]
    numeric: tuple[int, ...]

    @classmethod
    def draw(cls, n_categorical: int, n_numeric: int, fraction: float, seed: int) -> FeatureBag:
        """Draw round(fraction * fields) fields (at least one) from the learner's seed.

        The draw depends only on the seed and the field counts, so learner j of every
        architecture with the same fraction sees the same fields (common random numbers).
        """
        n_fields = n_categorical + n_numeric
        keep = max(1, round(fraction * n_fields))
        chosen = np.sort(np.random.default_rng([seed, 0xBA6]).permutation(n_fields)[:keep])
        return cls(
            categorical=tuple(int(i) for i in chosen if i < n_categorical),
            numeric=tuple(int(i) - n_categorical for i in chosen if i >= n_categorical),
        )


@dataclass(frozen=True)
class Layout:
    """How an architecture lays a dataset's fields out: embedded fields grouped by dimension."""

    cardinalities: tuple[int, ...]  # per embedded field (categorical, then bucketised numeric)
    dims: tuple[int, ...]
    hashed: tuple[bool, ...]  # per categorical field
    n_numeric: int
    bucketize: bool
    width: int  # of the concatenated input x0
    tokens: int  # embedded fields, for FM and attention (equal dimensions there)

    @classmethod
    def of(cls, architecture: Architecture, data: EncodedDataset) -> Layout:
        emb = architecture.embeddings
        buckets = emb.hash_buckets
        hashed = tuple(buckets is not None and c > buckets for c in data.cardinalities)
        cards = [buckets if h else c for c, h in zip(data.cardinalities, hashed, strict=True)]
        dims = [emb.per_field.get(f, emb.dim) for f in data.categorical_fields]
        bucketize = architecture.numeric.transform == "bucketize"
        n_numeric = len(data.numeric_fields)
        if bucketize:
            cards += [architecture.numeric.buckets] * n_numeric
            dims += [emb.dim] * n_numeric
        width = sum(dims) + (0 if bucketize else n_numeric)
        return cls(tuple(cards), tuple(dims), hashed, n_numeric, bucketize, width, len(dims))

    def groups(self) -> dict[int, list[int]]:
        """Embedded field indices by dimension: one concatenated table per group."""
        grouped: dict[int, list[int]] = {}
        for field, dim in enumerate(self.dims):
            grouped.setdefault(dim, []).append(field)
        return grouped

    def field_masks(
        self, bags: list[FeatureBag], device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(k, embedded fields) and (k, numeric fields) 0/1 masks from the learners' bags;
        None where every learner sees every field (multiplying by ones changes nothing)."""
        if all(len(b.categorical) + len(b.numeric) == len(self.hashed) + self.n_numeric
               for b in bags):  # fmt: skip
            return None, None
        n_cat = len(self.hashed)
        embedded = torch.zeros(len(bags), self.tokens, device=device)
        numeric = torch.zeros(len(bags), self.n_numeric, device=device)
        for j, bag in enumerate(bags):
            embedded[j, list(bag.categorical)] = 1.0
            if self.bucketize:
                embedded[j, [n_cat + i for i in bag.numeric]] = 1.0
            numeric[j, list(bag.numeric)] = 1.0
        return embedded, numeric
