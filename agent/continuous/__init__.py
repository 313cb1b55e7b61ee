"""The seed's continuous strategies: a closed-form optimum where the architecture parameter
is tractable (feature bagging: bagging.py, tuning.py), the constrained optimiser of the
other continuous knobs (surrogate.py), and both as the loop's continuous steps (steps.py,
the search's StepSource)."""

from edas_agent.continuous.bagging import (
    BaggingFit,
    Optimum,
    fit_bagging,
    measured_points,
    optimum,
)
from edas_agent.continuous.steps import ContinuousSteps, observations_of
from edas_agent.continuous.surrogate import continuous_knobs, solve
from edas_agent.continuous.tuning import tune_bagging

__all__ = [
    "BaggingFit",
    "ContinuousSteps",
    "Optimum",
    "continuous_knobs",
    "fit_bagging",
    "measured_points",
    "observations_of",
    "optimum",
    "solve",
    "tune_bagging",
]
