"""Everything a plugin or a script needs, under one import name: `import edas_agent`.

The wheel installs this file as the `edas_agent` package (pyproject.toml, force-include),
so user code never has to import our internal package names:

    from edas_agent import FunctionEvaluator, CandidateFailed
"""

from agent.config import Config, load_config
from agent.session import RunSession
from evaluators.base import (
    CandidateFailed,
    Evaluation,
    Evaluator,
    Task,
    architecture_hash,
    document_of,
)
from evaluators.command import CommandEvaluator
from evaluators.function import FunctionEvaluator
from evaluators.json_space import space_from_schema

__all__ = [
    "CandidateFailed",
    "CommandEvaluator",
    "Config",
    "Evaluation",
    "Evaluator",
    "FunctionEvaluator",
    "RunSession",
    "Task",
    "architecture_hash",
    "document_of",
    "load_config",
    "space_from_schema",
]
