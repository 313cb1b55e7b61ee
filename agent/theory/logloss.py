"""Log-loss with logit averaging: exact for the k learners at hand, approximate beyond.

Averaging the members' log-probabilities and renormalising (the normalised geometric mean
q of their predictions) gives, per example,

    logloss(q) = mean_j logloss(p_j) - diversity,   diversity = -log Z = mean_j KL(q || p_j)

exactly, for the k learners trained. Scaling the diversity like the squared-loss
disagreement (D = k/(k-1) times the k-member gain) extrapolates to M members:

    E_M ~ E - ((M-1)/M) * (k/(k-1)) * diversity

which is an approximation (there is no exact M-member identity for log-loss), so it is
reported as such. Squared loss stays the deciding loss unless `gate.loss: logloss`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

_EPS = 1e-7


class LogLossStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    k: int
    E: float  # mean single-learner log-loss
    diversity: float  # exact k-member diversity: mean KL from the combined prediction
    E_k: float  # exact log-loss of the k-member logit-averaged ensemble
    E_M: float  # extrapolated to M members: APPROXIMATE
    E_M_is: Literal["approximate"] = "approximate"


def _decomposition(predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example mean single-learner log-loss and diversity, shapes (n,) and (n,)."""
    p = np.asarray(predictions, dtype=np.float64)
    if p.ndim == 2:  # binary: probability of the positive class
        p = np.stack([1 - p, p], axis=-1)
    log_p = np.log(np.clip(p, _EPS, 1.0))
    labels = np.asarray(y).astype(np.int64)
    rows = np.arange(labels.shape[0])
    single = -log_p[:, rows, labels].mean(axis=0)
    mean_log = log_p.mean(axis=0)
    top = mean_log.max(axis=-1, keepdims=True)
    log_z = (top + np.log(np.exp(mean_log - top).sum(axis=-1, keepdims=True)))[:, 0]
    return single, -log_z


def logloss_terms(predictions: np.ndarray, y: np.ndarray, members: int) -> np.ndarray:
    """Per-example terms whose mean is the (approximate) M-member log-loss."""
    k = np.asarray(predictions).shape[0]
    single, diversity = _decomposition(predictions, y)
    return single - (members - 1) / members * k / (k - 1) * diversity


def logloss_statistics(predictions: np.ndarray, y: np.ndarray, members: int) -> LogLossStats:
    k = np.asarray(predictions).shape[0]
    if k < 2:
        raise ValueError("the statistics need k >= 2 learners")
    single, diversity = _decomposition(predictions, y)
    E, div = float(single.mean()), float(diversity.mean())
    return LogLossStats(
        k=k,
        E=E,
        diversity=div,
        E_k=E - div,
        E_M=E - (members - 1) / members * k / (k - 1) * div,
    )
