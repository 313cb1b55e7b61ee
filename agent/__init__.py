"""edas-agent: architecture search for deployed M-member ensembles, under one import name.

The repository's `agent/` folder is the `edas_agent` package; `evaluators/` and `prompts/`
are installed beneath it as `edas_agent.evaluators` and `edas_agent.prompts` (pyproject.toml,
package-dir), so installing us never shadows a user's own `agent` or `evaluators` package.
Everything a plugin or a script needs is importable from here, and the subpackages'
own names for the rest (`edas_agent.theory`, `edas_agent.analysis`, `edas_agent.fidelity`,
`edas_agent.cli`: what their `__init__` exports):

    from edas_agent import FunctionEvaluator, CandidateFailed

The names load on first use (PEP 562): importing an evaluator module must not pull in the
agent, its LLM SDKs and the CLI, because evaluators never depend on the agent.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOME = {
    "CandidateFailed": "edas_agent.evaluators.base",
    "Evaluation": "edas_agent.evaluators.base",
    "Evaluator": "edas_agent.evaluators.base",
    "Task": "edas_agent.evaluators.base",
    "Mutations": "edas_agent.evaluators.base",
    "architecture_hash": "edas_agent.evaluators.base",
    "canonical_hash": "edas_agent.evaluators.base",
    "document_of": "edas_agent.evaluators.base",
    "CommandEvaluator": "edas_agent.evaluators.command",
    "FunctionEvaluator": "edas_agent.evaluators.function",
    "space_from_schema": "edas_agent.evaluators.json_space",
    "Config": "edas_agent.config",
    "load_config": "edas_agent.config",
    "parse_sets": "edas_agent.config",
    "RunSession": "edas_agent.session",
    "build_search": "edas_agent.session",
    "Record": "edas_agent.record",
    "read_records": "edas_agent.record",
    "Outcome": "edas_agent.outcome",
    "build_evaluator": "edas_agent.training.door",
}

__all__ = [  # noqa: RUF022 (grouped by home, as _HOME is)
    "CandidateFailed",
    "Evaluation",
    "Evaluator",
    "Task",
    "Mutations",
    "architecture_hash",
    "canonical_hash",
    "document_of",
    "CommandEvaluator",
    "FunctionEvaluator",
    "space_from_schema",
    "Config",
    "load_config",
    "parse_sets",
    "RunSession",
    "build_search",
    "Record",
    "read_records",
    "Outcome",
    "build_evaluator",
]

if TYPE_CHECKING:
    from edas_agent.config import Config, load_config, parse_sets
    from edas_agent.evaluators.base import (
        CandidateFailed,
        Evaluation,
        Evaluator,
        Mutations,
        Task,
        architecture_hash,
        canonical_hash,
        document_of,
    )
    from edas_agent.evaluators.command import CommandEvaluator
    from edas_agent.evaluators.function import FunctionEvaluator
    from edas_agent.evaluators.json_space import space_from_schema
    from edas_agent.outcome import Outcome
    from edas_agent.record import Record, read_records
    from edas_agent.session import RunSession, build_search
    from edas_agent.training.door import build_evaluator


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'edas_agent' has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
