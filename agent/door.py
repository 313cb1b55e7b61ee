"""The one door from the agent to the evaluators.

Everything the agent knows of a model family passes through here: the settings its config
embeds, building the run's evaluator, and a picklable shipment that rebuilds the same
evaluator on a Ray worker. Past this module the agent sees only the `Evaluator` protocol
(evaluators/base.py), so another family (a user's plugin) plugs in here alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evaluators.base import Evaluator
from evaluators.tabular.columns import DataError
from evaluators.tabular.settings import DataSpec, EvaluatorSettings, SpaceSettings

if TYPE_CHECKING:
    from agent.config import Config

# The evaluator itself (torch) is imported only when one is built: the config and the loop
# load without it, so a numpy-only evaluator (agent/testing.py) runs where torch is absent.

__all__ = [
    "DataError",
    "DataSpec",
    "EvaluatorSettings",
    "Shipment",
    "SpaceSettings",
    "build_evaluator",
    "shipment",
]


def build_evaluator(config: Config) -> Evaluator:
    """The run's evaluator: loads and encodes the data once. Raises DataError for data
    that cannot be used, ValueError for settings this machine cannot honour (CUDA)."""
    from evaluators.tabular.evaluator import TabularEvaluator

    return TabularEvaluator(config.data, config.evaluator, config.seed, config.space)


@dataclass(frozen=True)
class Shipment:
    """What a worker needs to rebuild an evaluator without reading the data again."""

    data: Any  # the encoded dataset (evaluators.tabular.data.EncodedDataset)
    settings: EvaluatorSettings
    seed: int
    space: SpaceSettings

    def build(self) -> Evaluator:
        from evaluators.tabular.evaluator import TabularEvaluator

        return TabularEvaluator.from_data(self.data, self.settings, self.seed, self.space)


def shipment(evaluator: Evaluator) -> Shipment:
    from evaluators.tabular.evaluator import TabularEvaluator

    if not isinstance(evaluator, TabularEvaluator):
        raise TypeError(f"the Ray executor cannot ship a {type(evaluator).__name__} yet")
    return Shipment(evaluator.data, evaluator.settings, evaluator.seed, evaluator.limits)
