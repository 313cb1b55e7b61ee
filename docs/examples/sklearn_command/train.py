"""Train one learner, any framework: here scikit-learn's gradient boosting. edas-agent runs
    python train.py --arch ARCH.json --seed SEED --out OUT.npz
once per learner and reads OUT.npz: `val` and `test` arrays, the positive class's
probability per row."""

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--arch", required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

arch = json.loads(Path(args.arch).read_text())
data = np.load("data.npz")
model = HistGradientBoostingClassifier(
    learning_rate=arch["learning_rate"],
    max_iter=arch["max_iter"],
    max_leaf_nodes=arch["max_leaf_nodes"],
    l2_regularization=arch["l2_regularization"],
    max_features=arch["max_features"],  # a share of the features per split: seeds disagree
    early_stopping=False,
    random_state=args.seed,
)
model.fit(data["x_train"], data["y_train"])
np.savez(
    args.out,
    val=model.predict_proba(data["x_val"])[:, 1],
    test=model.predict_proba(data["x_test"])[:, 1],
)
