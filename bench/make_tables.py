"""Write the generated tables that bench/search_value.py was measured on besides Adult and
the synthetic CTR data (docs/pages/benchmarks/search-value.md): shapes none of our tests
use, from scikit-learn's generators with fixed seeds.

    python bench/make_tables.py OUT_FOLDER     # writes the four tables below

friedman.csv  20,000 rows, 10 numeric features, regression (Friedman #1: a nonlinear
              function of 5 of them, noise 1.0), target `y`
rare.csv      20,000 rows, 40 numeric features (12 informative, 8 redundant), binary with
              5 % positives and 1 % flipped labels, target `label`
waves.csv     20,000 rows, 12 numeric features, regression: interactions of pairs and
              triples that a small tower underfits (room for capacity and schedule),
              noise 0.2 of a signal of variance about 1.5, target `y`
clicks.csv    40,000 rows: a user id (3,000 levels), an item id (800), 4 numeric context
              fields; a click drawn from a low-rank user x item affinity plus biases and
              the context, about 20 % positives, target `click`
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_friedman1


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    X, y = make_friedman1(n_samples=20_000, n_features=10, noise=1.0, random_state=0)
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).assign(y=y)
    table.to_csv(folder / "friedman.csv", index=False)
    print(f"friedman.csv: floor {1.0 / y.var():.4f} (noise variance over the target's: "
          "bench/search_value.py --floor)")  # fmt: skip
    X, y = make_classification(
        n_samples=20_000, n_features=40, n_informative=12, n_redundant=8, weights=[0.95],
        flip_y=0.01, class_sep=0.8, random_state=0,
    )  # fmt: skip
    table = pd.DataFrame(X, columns=[f"f{i}" for i in range(40)]).assign(label=y)
    table.to_csv(folder / "rare.csv", index=False)
    wavy = waves()
    wavy.to_csv(folder / "waves.csv", index=False)
    print(f"waves.csv: floor {0.2**2 / wavy['y'].var():.4f}")
    table, floor = clicks()
    table.to_csv(folder / "clicks.csv", index=False)
    print(f"clicks.csv: floor {floor:.4f} (the Brier score of the true click probabilities)")


def waves(rows: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(rows, 12))
    y = (np.sin(3 * x[:, 0] * x[:, 1]) + x[:, 2] ** 2 * x[:, 3] + np.abs(x[:, 4] - x[:, 5])
         + np.tanh(4 * x[:, 6]) * x[:, 7] + 2 * x[:, 8] * x[:, 9] * x[:, 10]
         + 0.2 * rng.standard_normal(rows))  # fmt: skip
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(12)]).assign(y=y)


def clicks(rows: int = 40_000, users: int = 3_000, items: int = 800) -> tuple[pd.DataFrame, float]:
    rng = np.random.default_rng(1)
    rank = 4
    user_factor = rng.normal(0, 0.8, (users, rank))
    item_factor = rng.normal(0, 0.8, (items, rank))
    user_bias, item_bias = rng.normal(0, 0.5, users), rng.normal(0, 0.5, items)
    user = rng.zipf(1.3, rows) % users  # a few heavy users, a long tail
    item = rng.integers(0, items, rows)
    context = rng.normal(size=(rows, 4))
    logit = (np.sum(user_factor[user] * item_factor[item], axis=1) + user_bias[user]
             + item_bias[item] + 0.5 * context[:, 0] - 0.5 * context[:, 1] * context[:, 2]
             - 1.8)  # fmt: skip
    probability = 1 / (1 + np.exp(-logit))
    click = (rng.uniform(size=rows) < probability).astype(int)
    table = pd.DataFrame(context, columns=[f"c{i}" for i in range(4)])
    table = table.assign(user=[f"u{u}" for u in user], item=[f"i{i}" for i in item], click=click)
    return table, float(np.mean(probability * (1 - probability)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
