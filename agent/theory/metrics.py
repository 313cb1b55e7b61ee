"""The task's usual metrics, reported on the test split (they never decide anything).

Each metric is given for the mean single learner and for the k-learner averaged ensemble.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-7


def task_metrics(task: str, predictions: np.ndarray, y: np.ndarray) -> dict[str, float]:
    per_learner = [_metrics(task, p, y) for p in predictions]
    ensemble = _metrics(task, predictions.mean(axis=0), y)
    report = {name: float(np.mean([m[name] for m in per_learner])) for name in ensemble}
    report.update({f"ensemble_{name}": value for name, value in ensemble.items()})
    # A test split with one class has no AUC; JSON has no NaN, so leave such metrics out.
    return {name: value for name, value in report.items() if np.isfinite(value)}


def _metrics(task: str, p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    if task == "binary":
        q = np.clip(p, _EPS, 1 - _EPS)
        return {
            "auc": auc(p, y),
            "logloss": float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))),
            "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        }
    if task == "multiclass":
        labels = y.astype(np.int64)
        picked = np.clip(p[np.arange(len(labels)), labels], _EPS, 1.0)
        return {
            "logloss": float(-np.mean(np.log(picked))),
            "accuracy": float(np.mean(p.argmax(axis=1) == labels)),
        }
    return {
        "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        "mae": float(np.mean(np.abs(p - y))),
    }


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties given average ranks."""
    positives = y == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # Each run of equal scores gets the average of the 1-based ranks it spans.
    _, starts, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(starts + (counts + 1) / 2, counts)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
