"""The one door from the agent to the evaluators.

Everything the agent knows of a model family passes through here: the settings its config
embeds, building the run's evaluator, and a picklable shipment that rebuilds the same
evaluator on a Ray worker. Past this module the agent sees only the `Evaluator` protocol
(evaluators/base.py), so another family (a user's plugin) plugs in here alone.
"""

from __future__ import annotations

import importlib
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edas_agent.config import Config, EvaluatorSettings, SpaceSettings
from edas_agent.evaluators.base import (
    DataError,
    Evaluator,
    Mutations,
    optional,
    protocol_problems,
)

# The evaluator itself (torch) is imported only when one is built: the config and the loop
# load without it, so a numpy-only evaluator (agent/testing.py) runs where torch is absent.

__all__ = [
    "ConfigShipment",
    "DataError",
    "PluginError",
    "Shipment",
    "build_evaluator",
    "check_protocol",
    "keep_files",
    "offered_mutations",
    "shipment",
]


def build_evaluator(config: Config) -> Evaluator:
    """The run's evaluator: the built-in tabular one (loads and encodes the data once), the
    plugin named in evaluator.plugin, or the command of evaluator.command. Raises DataError
    for data that cannot be used, ValueError for settings this machine cannot honour (CUDA)
    or a plugin or command that cannot be set up."""
    settings = config.evaluator
    if settings.plugin:
        evaluator = _plugin(settings.plugin, config.seed, settings.options, settings.workdir)
    elif settings.command:
        evaluator = _command(config)
    else:
        from edas_agent.evaluators.tabular.evaluator import TabularEvaluator

        return TabularEvaluator(config.evaluator.data, settings, config.seed, config.space)
    _remember(evaluator, config)
    return evaluator


def offered_mutations(evaluator: Evaluator, lift_caps: bool = False) -> Mutations | None:
    """The mutations the builtin proposer may draw from: the evaluator's own (`mutations`),
    or the tabular space's for any evaluator over that space; None: the generic proposer.
    With `lift_caps`, their version bounded by the space alone, where they have one."""
    offered = optional(evaluator, "mutations")
    if offered is None:
        from edas_agent.evaluators.tabular.mutations import MUTATIONS
        from edas_agent.evaluators.tabular.space import Architecture

        if isinstance(evaluator.default_architecture(), Architecture):
            offered = MUTATIONS
    if offered is not None and lift_caps and offered.uncapped is not None:
        return offered.uncapped
    return offered


def keep_files(evaluator: Evaluator, run_folder: Path) -> None:
    """An evaluator that writes files per learner (the command evaluator) keeps them in
    the run folder, under commands/."""
    keep = optional(evaluator, "keep_files_in")
    if keep is not None:
        keep(run_folder / "commands")


class PluginError(ValueError):
    """evaluator.plugin cannot be imported, called, or does not return an Evaluator."""


def _plugin(name: str, seed: int, options: dict[str, Any], workdir: str | None) -> Evaluator:
    module_name, _, attribute = name.partition(":")
    # A module beside the user's config imports as `python -m` would import it there.
    if workdir and workdir not in sys.path:
        sys.path.insert(0, workdir)
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginError(
            f"evaluator.plugin {name!r} cannot be imported ({type(exc).__name__}: {exc}); "
            "install your package (pip install -e .) or run from its folder"
        ) from None
    try:
        evaluator = factory(seed=seed, **options)
    except TypeError as exc:
        raise PluginError(f"evaluator.plugin {name!r}: {exc}") from None
    check_protocol(evaluator, f"evaluator.plugin {name!r} returned")
    return evaluator


def check_protocol(evaluator: object, source: str) -> None:
    """PluginError unless `evaluator` has what the Evaluator protocol declares (required
    members, and optional ones callable where they are methods): said once, at load, not
    as an AttributeError from the middle of a run."""
    problems = protocol_problems(evaluator)
    if problems:
        raise PluginError(
            f"{source} a {type(evaluator).__name__}, which {'; '.join(problems)} "
            "(the Evaluator protocol: edas_agent/evaluators/base.py)"
        )


def _command(config: Config) -> Evaluator:
    from edas_agent.evaluators.command import CommandEvaluator

    settings = config.evaluator
    assert settings.command and settings.space and settings.targets  # checked by the config
    try:
        return CommandEvaluator.from_files(
            settings.command, Path(settings.space), Path(settings.targets),
            settings.timeout_s, Path(settings.workdir or "."), config.seed,
        )  # fmt: skip
    except ValueError as exc:  # SpaceError, unusable targets
        raise PluginError(f"evaluator.command: {exc}") from None


# Evaluators built from a config (plugin, command) are rebuilt from it on Ray workers. Keyed
# by id, with a weak reference that proves the id still names the same object (an id is
# reused once its object is gone; the user's class need not be hashable).
_rebuilt_from: dict[int, tuple[Callable[[], object], Config]] = {}


def _remember(evaluator: Evaluator, config: Config) -> None:
    try:
        alive: Callable[[], object] = weakref.ref(evaluator)
    except TypeError:  # no weak references (__slots__): hold it, so its id stays its own
        alive = lambda: evaluator  # noqa: E731
    _rebuilt_from[id(evaluator)] = (alive, config)


def _config_of(evaluator: Evaluator) -> Config | None:
    alive, config = _rebuilt_from.get(id(evaluator), (lambda: None, None))
    return config if alive() is evaluator else None


@dataclass(frozen=True)
class Shipment:
    """What a worker needs to rebuild the tabular evaluator without reading the data again."""

    data: Any  # the encoded dataset (edas_agent.evaluators.tabular.data.EncodedDataset)
    settings: EvaluatorSettings
    seed: int
    space: SpaceSettings

    def build(self) -> Evaluator:
        from edas_agent.evaluators.tabular.evaluator import TabularEvaluator

        return TabularEvaluator.from_data(self.data, self.settings, self.seed, self.space)


@dataclass(frozen=True)
class ConfigShipment:
    """A plugin or command evaluator: rebuilt on the worker from the run's config, so the
    plugin's package (or the command's files) must be there too."""

    config: Config

    def build(self) -> Evaluator:
        try:
            return build_evaluator(self.config)
        except ValueError as exc:
            raise RuntimeError(f"on this worker: {exc}") from None


def shipment(evaluator: Evaluator) -> Shipment | ConfigShipment:
    from edas_agent.evaluators.tabular.evaluator import TabularEvaluator

    if isinstance(evaluator, TabularEvaluator):
        return Shipment(evaluator.data, evaluator.settings, evaluator.seed, evaluator.limits)
    config = _config_of(evaluator)
    if config is not None:
        return ConfigShipment(config)
    raise TypeError(
        f"worker processes cannot rebuild a {type(evaluator).__name__} passed from Python: "
        "name its factory in evaluator.plugin so workers can rebuild it"
    )
