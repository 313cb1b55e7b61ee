"""Write the generated tables that bench/search_value.py was measured on besides Adult and
the synthetic CTR data (docs/pages/benchmarks/search-value.md): shapes none of our tests
use, from scikit-learn's generators with fixed seeds.

    python bench/make_tables.py OUT_FOLDER     # writes friedman.csv and rare.csv

friedman.csv  20,000 rows, 10 numeric features, regression (Friedman #1: a nonlinear
              function of 5 of them, noise 1.0), target `y`
rare.csv      20,000 rows, 40 numeric features (12 informative, 8 redundant), binary with
              5 % positives and 1 % flipped labels, target `label`
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import make_classification, make_friedman1


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    X, y = make_friedman1(n_samples=20_000, n_features=10, noise=1.0, random_state=0)
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).assign(y=y)
    table.to_csv(folder / "friedman.csv", index=False)
    X, y = make_classification(
        n_samples=20_000, n_features=40, n_informative=12, n_redundant=8, weights=[0.95],
        flip_y=0.01, class_sep=0.8, random_state=0,
    )  # fmt: skip
    table = pd.DataFrame(X, columns=[f"f{i}" for i in range(40)]).assign(label=y)
    table.to_csv(folder / "rare.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
