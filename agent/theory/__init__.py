"""The EDAS algebra: E, D, sigma^2, rho and the predicted M-member error E_M of learners'
predictions, the gate that compares two architectures, its uncertainty, log-loss, and the
mixture (several architectures) algebra. Numpy only: no training, no I/O."""

from edas_agent.theory.gate import (
    Gate,
    Stats,
    decide,
    ensemble_error,
    residuals,
    seed_noise_floor,
    statistics,
)
from edas_agent.theory.uncertainty import paired_bootstrap, t_quantile

__all__ = [
    "Gate",
    "Stats",
    "decide",
    "ensemble_error",
    "paired_bootstrap",
    "residuals",
    "seed_noise_floor",
    "statistics",
    "t_quantile",
]
