"""A synthetic CTR dataset: skewed categorical fields, numeric fields, pairwise
interactions, label noise. Seeded, for benchmarks and scale tests (`--data synthetic:ROWS`).

The label is drawn from a logistic model with a bias giving about 20 % clicks, per-category
effects, log-linear numeric effects and hashed effects of random field pairs (the structure
FM, cross layers and attention exist to find); `label_noise` flips that share of labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

_PAIR_TABLE = 4096  # hashed (category a, category b) effects per interacting pair


class SyntheticSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(100_000, ge=100, le=100_000_000)
    categorical: int = Field(26, ge=0, le=200)
    numeric: int = Field(13, ge=0, le=200)
    max_cardinality: int = Field(10_000, ge=2, le=10_000_000)
    interactions: int = Field(8, ge=0, le=1000, description="Interacting field pairs.")
    label_noise: float = Field(0.05, ge=0.0, le=0.5, description="Share of labels flipped.")
    seed: int = 0


def generate(spec: SyntheticSpec) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The table, its categorical column names and its numeric column names; target 'label'."""
    rng = np.random.default_rng([spec.seed, 0x5C7])
    n = spec.rows
    categorical_names = [f"C{i + 1}" for i in range(spec.categorical)]
    numeric_names = [f"I{i + 1}" for i in range(spec.numeric)]
    cardinalities = np.exp(rng.uniform(np.log(2), np.log(spec.max_cardinality), spec.categorical))
    columns: dict[str, np.ndarray] = {}
    logit = np.full(n, -1.6)  # about 20 % positives before effects
    codes = []
    for name, cardinality in zip(categorical_names, cardinalities.astype(int), strict=True):
        # Zipf-like popularity: a few categories dominate, as in click logs.
        weights = 1.0 / np.arange(1, cardinality + 1) ** 1.1
        ids = rng.choice(cardinality, n, p=weights / weights.sum()).astype(np.int32)
        columns[name] = ids
        codes.append(ids)
        logit += rng.normal(0, 0.3, cardinality)[ids]
    for name in numeric_names:
        values = rng.lognormal(0.0, 1.0, n).astype(np.float32)
        columns[name] = values
        logit += rng.normal(0, 0.2) * np.log(values)
    for _ in range(spec.interactions if spec.categorical >= 2 else 0):
        a, b = rng.choice(spec.categorical, 2, replace=False)
        table = rng.normal(0, 0.5, _PAIR_TABLE)
        logit += table[(codes[a].astype(np.int64) * 1_000_003 + codes[b]) % _PAIR_TABLE]
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    flip = rng.random(n) < spec.label_noise
    columns["label"] = np.where(flip, 1 - label, label)
    return pd.DataFrame(columns), categorical_names, numeric_names
