"""The seed's continuous strategies: a closed-form optimum where the architecture parameter
is tractable (feature bagging, bagging.py)."""

from edas_agent.continuous.bagging import (
    BaggingFit,
    Optimum,
    fit_bagging,
    measured_points,
    optimum,
)

__all__ = ["BaggingFit", "Optimum", "fit_bagging", "measured_points", "optimum"]
