"""Split scikit-learn's breast-cancer table once: data.npz for train.py, targets.npz for
edas-agent (y_val, y_test and the task). Run once: python prepare.py"""

import numpy as np
from sklearn.datasets import load_breast_cancer

x, y = load_breast_cancer(return_X_y=True)
order = np.random.default_rng(0).permutation(len(y))
x, y = x[order], y[order]
a, b = int(0.6 * len(y)), int(0.8 * len(y))
np.savez("data.npz", x_train=x[:a], y_train=y[:a], x_val=x[a:b], x_test=x[b:])
np.savez("targets.npz", y_val=y[a:b], y_test=y[b:], task="binary")
print(f"data.npz and targets.npz written: {a} train, {b - a} validation, {len(y) - b} test rows")
