"""The fused predictor: experts per cheap signal, a gating model, cold start."""

from __future__ import annotations

import numpy as np
import pytest

from edas_agent.fidelity.predictor import FusedPredictor


def test_cold_until_warm_then_recovers_a_signal_that_determines_the_error():
    predictor = FusedPredictor(warm=5)
    rng = np.random.default_rng(0)
    for i in range(12):
        first = 0.2 + 0.01 * i
        signals = {"first_E_M": first, "log_parameters": rng.normal(4, 1)}
        if i == 4:
            assert predictor.predict(signals) is None  # four examples: still cold
        predictor.add(signals, 0.5 * first)  # full E_M is half the lowest-fidelity E_M
    forecast = predictor.predict({"first_E_M": 0.25, "log_parameters": 4.0})
    # the noise expert (parameters) gets almost no weight against an exact one
    assert forecast == pytest.approx(0.125, abs=1e-3)


def test_the_gate_trusts_the_nearest_neighbour_only_near_evaluated_architectures():
    predictor = FusedPredictor(warm=3)
    rng = np.random.default_rng(1)
    for _ in range(40):
        distance = float(rng.integers(1, 10))
        truth = rng.normal(0.1, 0.01)
        nearest = truth + rng.normal(0, 0.001 * distance**2)  # good close by, bad far away
        zero_cost = truth + rng.normal(0, 0.01)  # a mediocre expert everywhere
        predictor.add({"distance": distance, "nearest_E_M": nearest, "zero_cost": zero_cost}, truth)
    near = predictor.predict({"distance": 1.0, "nearest_E_M": 0.2, "zero_cost": 0.0})
    far = predictor.predict({"distance": 9.0, "nearest_E_M": 0.2, "zero_cost": 0.0})
    assert abs(near - 0.2) < abs(far - 0.2)
