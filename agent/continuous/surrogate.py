"""Constrained differentiable optimisation of the continuous knobs (the seed's second
strategy): dropout, learning rate, weight decay, embedding l2, bagging fraction, jointly.

**The surrogate.** Every architecture a run judged has measured E and D (from its
learners). Its continuous knobs, scaled to [0, 1] (log scale where the bounds are positive
and span two decades), are z; the rest of it, its discrete part, is a group g. E and D are
each modelled as

    E(z, g) = a_g + sum_k (w_k z_k + q_k z_k^2)

an intercept per discrete group and one response to the knobs shared by all groups,
fitted by ridge least squares (closed form; the ridge, on w and q only, keeps curvature
that few points cannot support near zero). A group's intercept soaks up what its discrete
edits did, so points from other architectures still teach the response to the knobs. The
predicted ensemble error is E_M(z) = E(z) - ((M - 1) / M) D(z), differentiable in z.

**The constrained optimum.** From the baseline's z0, projected gradient descent (torch
autograd) minimises E_M(z) under three constraints: the space's bounds (z in
[0, 1]), a trust region around the evaluated baseline (|z - z0| <= r per knob, in the
scaled units: the surrogate is trusted only near points it was fitted on), and the gate's
monotonic-improvement condition against the current baseline: the predicted decrease of
E_M must reach the gate's floor, else there is no proposal. The optimum is then a proposal
like any other: 2 learners, the gate, confirmation.

Why a surrogate and not hypergradients through training: hypergradients need the
evaluator to differentiate through its own optimiser (unrolled or implicit), which a
plugin or a command cannot offer and which is exact only for the learners trained, not
for E_M's expectation over seeds; the surrogate needs nothing beyond what every run logs,
works for any evaluator whose space has bounded numbers, and is cheap. Its price: a
quadratic response shared across architectures, trusted only in a small region. See
docs/pages/guides/continuous.md.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonpointer
import numpy as np
from pydantic import BaseModel, ConfigDict

from edas_agent.evaluators.base import canonical_hash
from edas_agent.integrations.optuna import kind_of, places

if TYPE_CHECKING:
    import torch

RIDGE = 1e-2
_STEPS = 500


@dataclass(frozen=True)
class Knob:
    path: str
    low: float
    high: float
    log: bool

    def encode(self, value: float) -> float:
        if self.log:
            span = math.log(self.high) - math.log(self.low)
            return (math.log(value) - math.log(self.low)) / span
        return (value - self.low) / (self.high - self.low)

    def decode(self, z: float) -> float:
        z = min(max(z, 0.0), 1.0)
        if self.log:
            value = math.exp(math.log(self.low) + z * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + z * (self.high - self.low)
        return min(max(float(f"{value:.3g}"), self.low), self.high)  # readable, in bounds


def continuous_knobs(schema: dict[str, Any]) -> list[Knob]:
    """Every bounded real number of the space (integers and choices are discrete)."""
    knobs = []
    for path, node in places(schema):
        if kind_of(node) == "number" and node["maximum"] > node["minimum"]:
            low, high = float(node["minimum"]), float(node["maximum"])
            knobs.append(Knob(path, low, high, log=low > 0 and high / low >= 100))
    return knobs


class Observation(BaseModel):
    """A judged architecture: what the surrogate is fitted on (logged with each step)."""

    model_config = ConfigDict(frozen=True)

    architecture: dict[str, Any]
    E: float
    D: float


class ContinuousStep(BaseModel):
    """What a continuous step logged: enough to re-derive its optimum (replay does)."""

    model_config = ConfigDict(frozen=True)

    members: int
    trust_region: float
    floor: float
    knobs: list[Knob]
    observations: list[Observation]
    baseline: dict[str, float]  # the knobs' values at the start
    optimum: dict[str, float]
    predicted_gain: float  # surrogate E_M at the baseline minus at the optimum
    proposed: bool
    why_not: str | None = None


def solve(
    observations: list[Observation],
    baseline: dict[str, Any],
    knobs: list[Knob],
    members: int,
    trust_region: float,
    floor: float,
) -> ContinuousStep:
    """The constrained optimum from `baseline`; `proposed` False (with why) when the
    surrogate cannot be fitted or predicts no gain reaching `floor`. Only knobs that vary
    among the observations move, and only groups that teach the response (two or more
    observations) or hold the baseline are fitted."""
    import torch  # here, not at import: a run without continuous steps needs no torch

    start = {k.path: _value(baseline, k) for k in knobs}
    step: dict[str, Any] = {
        "members": members, "trust_region": trust_region, "floor": floor,
        "knobs": knobs, "observations": observations, "baseline": start,
    }  # fmt: skip
    home = _group(baseline, knobs)
    used, keys = _informative(observations, [_group(o.architecture, knobs) for o in observations],
                              home)  # fmt: skip
    varying = [k for k in knobs if len({_value(o.architecture, k) for o in used}) > 1]
    fitted = _fit(used, varying, keys, home)
    if isinstance(fitted, str):
        return ContinuousStep(**step, optimum=start, predicted_gain=0.0, proposed=False,
                              why_not=fitted)  # fmt: skip
    groups, E_coef, D_coef = fitted
    z0 = torch.tensor([k.encode(start[k.path]) for k in varying], dtype=torch.float64)
    c = (members - 1) / members
    shared = slice(len(groups), None)  # the response to the knobs, after the intercepts

    def error(z: torch.Tensor) -> torch.Tensor:
        f = torch.cat([z, z**2])
        E = E_coef[groups[home]] + f @ E_coef[shared]
        D = D_coef[groups[home]] + f @ D_coef[shared]
        return E - c * D

    quadratic = E_coef[-len(varying) :] - c * D_coef[-len(varying) :]
    z = _descend(error, z0, trust_region, float(2 * quadratic.abs().max()))
    z = _parsimonious(error, z0, z)
    optimum = dict(start)
    optimum.update({k.path: k.decode(round(float(z[i]), 2)) for i, k in enumerate(varying)})
    rounded = torch.tensor([k.encode(optimum[k.path]) for k in varying], dtype=torch.float64)
    gain = float(error(z0) - error(rounded))
    why_not = None
    if optimum == start:
        why_not = "the optimum is the baseline's own knobs"
    elif gain < floor:
        why_not = f"predicted gain {gain:.6f} below the gate's floor {floor:.6f}"
    return ContinuousStep(**step, optimum=optimum, predicted_gain=gain,
                          proposed=why_not is None, why_not=why_not)  # fmt: skip


def _parsimonious(error, z0: torch.Tensor, z: torch.Tensor, share: float = 0.1):
    """The optimum with every knob back at the baseline's value whose own part of the
    predicted gain is below `share` of the whole: a knob the surrogate barely sees an
    effect of is not worth an edit (its slope is as likely noise or ridge bias)."""
    import torch

    with torch.no_grad():
        total = float(error(z0) - error(z))
        kept = z.clone()
        for i in range(len(z)):
            reverted = kept.clone()
            reverted[i] = z0[i]
            if float(error(reverted) - error(kept)) < share * total:
                kept = reverted
    return kept


def _informative(
    observations: list[Observation], keys: list[str], home: str
) -> tuple[list[Observation], list[str]]:
    """Observations (and their groups) of groups with two or more, and of the baseline's."""
    sizes = Counter(keys)
    kept = [(o, key) for o, key in zip(observations, keys, strict=True)
            if sizes[key] > 1 or key == home]  # fmt: skip
    return [o for o, _ in kept], [key for _, key in kept]


def _value(document: dict[str, Any], knob: Knob) -> float:
    return float(jsonpointer.resolve_pointer(document, knob.path))


def _descend(error, z0: torch.Tensor, trust_region: float, curvature: float) -> torch.Tensor:
    """Projected gradient descent: after each step, back into [0, 1] and the trust region.
    Plain gradient steps (not Adam, which moves every knob at the same speed however
    small its gradient): a knob the surrogate finds no effect of stays where it is."""
    import torch

    low = torch.clamp(z0 - trust_region, min=0.0)
    high = torch.clamp(z0 + trust_region, max=1.0)
    z = z0.clone().requires_grad_(True)
    optimiser = torch.optim.SGD([z], lr=min(1.0, 1.0 / curvature) if curvature > 0 else 1.0)
    for _ in range(_STEPS):
        optimiser.zero_grad()
        error(z).backward()
        optimiser.step()
        with torch.no_grad():
            z.copy_(torch.maximum(torch.minimum(z, high), low))
    return z.detach()


def _fit(observations: list[Observation], knobs: list[Knob], keys: list[str], home: str):
    """(group index by key, E coefficients, D coefficients) as tensors, or why not;
    `keys`: each observation's discrete group."""
    import torch

    groups: dict[str, int] = {}
    for key in keys:
        groups.setdefault(key, len(groups))
    features = 2 * len(knobs)
    if not knobs:
        return "no bounded real number varies among the judged architectures"
    if home not in groups:
        return "the baseline is not among the judged architectures"
    if len(observations) < len(groups) + features + 2:
        return (f"{len(observations)} informative judged architectures in {len(groups)} "
                f"discrete groups: the surrogate of {len(knobs)} knobs needs at least "
                f"{len(groups) + features + 2}")  # fmt: skip
    X = np.zeros((len(observations), len(groups) + features))
    for row, o in enumerate(observations):
        z = np.array([k.encode(_value(o.architecture, k)) for k in knobs])
        X[row, groups[keys[row]]] = 1.0
        X[row, len(groups) :] = np.concatenate([z, z**2])
    penalty = np.diag([0.0] * len(groups) + [RIDGE] * features)
    solve_for = np.linalg.pinv(X.T @ X + penalty) @ X.T
    E = solve_for @ np.array([o.E for o in observations])
    D = solve_for @ np.array([o.D for o in observations])
    return groups, torch.tensor(E), torch.tensor(D)


def _group(document: dict[str, Any], knobs: list[Knob]) -> str:
    """The discrete part: the document with every knob blanked."""
    blank = copy.deepcopy(document)
    for k in knobs:
        jsonpointer.set_pointer(blank, k.path, None)
    return canonical_hash(blank)
