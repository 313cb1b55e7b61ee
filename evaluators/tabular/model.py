"""Build a torch module from an `Architecture` for one learner's feature bag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evaluators.tabular.space import Architecture, Cross, Tower

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


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


class CrossNetwork(nn.Module):
    """DCN-v2 cross layers: x_{l+1} = x0 * (W x_l + b) + x_l, W full or low rank."""

    def __init__(self, width: int, spec: Cross):
        super().__init__()

        def layer() -> nn.Module:
            if spec.rank and spec.rank < width:
                return nn.Sequential(
                    nn.Linear(width, spec.rank, bias=False), nn.Linear(spec.rank, width)
                )
            return nn.Linear(width, width)

        self.layers = nn.ModuleList(layer() for _ in range(spec.layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


def mlp(width: int, spec: Tower) -> tuple[nn.Module, int]:
    """The tower and its output width."""
    layers: list[nn.Module] = []
    for hidden in spec.widths:
        layers.append(nn.Linear(width, hidden))
        if spec.norm == "batch":
            layers.append(nn.BatchNorm1d(hidden))
        elif spec.norm == "layer":
            layers.append(nn.LayerNorm(hidden))
        layers.append(_ACTIVATIONS[spec.activation]())
        if spec.dropout > 0:
            layers.append(nn.Dropout(spec.dropout))
        width = hidden
    return nn.Sequential(*layers), width


class TabularNet(nn.Module):
    """Embeddings + numeric features -> optional cross network -> MLP tower -> head."""

    def __init__(
        self,
        architecture: Architecture,
        categorical_fields: list[str],
        cardinalities: list[int],
        bag: FeatureBag,
        n_outputs: int,
    ):
        super().__init__()
        dims = architecture.embeddings.per_field
        self.register_buffer("cat_idx", torch.tensor(bag.categorical, dtype=torch.long))
        self.register_buffer("num_idx", torch.tensor(bag.numeric, dtype=torch.long))
        self.embeddings = nn.ModuleList(
            nn.Embedding(
                cardinalities[i], dims.get(categorical_fields[i], architecture.embeddings.dim)
            )
            for i in bag.categorical
        )
        width = sum(e.embedding_dim for e in self.embeddings) + len(bag.numeric)
        self.cross = CrossNetwork(width, architecture.cross)
        self.tower, tower_width = mlp(width, architecture.tower)
        self.head = nn.Linear(tower_width, n_outputs)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        cat = categorical.index_select(1, self.cat_idx)
        parts = [emb(cat[:, i]) for i, emb in enumerate(self.embeddings)]
        parts.append(numeric.index_select(1, self.num_idx))
        x = self.cross(torch.cat(parts, dim=1))
        return self.head(self.tower(x)).squeeze(-1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
