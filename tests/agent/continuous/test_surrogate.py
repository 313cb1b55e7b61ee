"""The surrogate of E and D over the continuous knobs, and its constrained optimum."""

from __future__ import annotations

import numpy as np

from edas_agent.continuous.surrogate import Knob, Observation, solve

KNOBS = [Knob("/a", 0.0, 1.0, log=False), Knob("/b", 1e-4, 1e-1, log=True),
         Knob("/c", 0.0, 1.0, log=False)]  # fmt: skip


def observed(n: int = 30, noise: float = 0.0, group: str = "x") -> list[Observation]:
    """E has its minimum at a = 0.6 and falls with log b; D rises as a rises; c: nothing."""
    rng = np.random.default_rng(0)
    made = []
    for _ in range(n):
        a, zb, c = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)
        b = float(1e-4 * 1000**zb)
        E = 0.2 + 0.1 * (a - 0.6) ** 2 - 0.02 * zb + noise * rng.normal()
        D = 0.01 + 0.01 * a
        made.append(Observation(architecture={"a": a, "b": b, "c": c, "g": group}, E=E, D=D))
    return made


def test_the_optimum_minimises_the_fitted_error_within_the_trust_region():
    baseline = {"a": 0.2, "b": 0.001, "c": 0.5, "g": "x"}
    points = [*observed(), Observation(architecture=baseline, E=0.2 + 0.1 * 0.16 - 0.02 / 3,
                                       D=0.012)]  # fmt: skip
    step = solve(points, baseline, KNOBS, members=50, trust_region=0.3, floor=0.0)
    assert step.proposed and step.predicted_gain > 0
    assert abs(step.optimum["/a"] - 0.5) < 0.011  # 0.2 + the trust region, toward 0.6+
    zb = np.log(step.optimum["/b"] / 1e-4) / np.log(1000)
    assert abs(zb - (KNOBS[1].encode(0.001) + 0.3)) < 0.011  # log-scaled, at its edge
    assert abs(step.optimum["/c"] - 0.5) <= 0.01  # no effect: it stays


def test_no_proposal_from_too_few_points_or_below_the_floor():
    baseline = {"a": 0.2, "b": 0.001, "c": 0.5, "g": "x"}
    few = solve([*observed(5), Observation(architecture=baseline, E=0.2, D=0.01)], baseline,
                KNOBS, 50, 0.3, 0.0)  # fmt: skip
    assert not few.proposed and "needs at least" in few.why_not
    points = [*observed(), Observation(architecture=baseline, E=0.2, D=0.01)]
    high = solve(points, baseline, KNOBS, 50, 0.3, floor=1.0)
    assert not high.proposed and "below the gate's floor" in high.why_not


def test_other_groups_teach_the_response_through_their_own_intercepts():
    baseline = {"a": 0.2, "b": 0.001, "c": 0.5, "g": "x"}
    shifted = [Observation(architecture={**o.architecture}, E=o.E + 0.5, D=o.D)
               for o in observed(30, group="y")]  # fmt: skip
    points = [*shifted, Observation(architecture=baseline, E=0.2, D=0.012)]
    step = solve(points, baseline, KNOBS, 50, 0.3, 0.0)
    assert step.proposed and abs(step.optimum["/a"] - 0.5) < 0.011
