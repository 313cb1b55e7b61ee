"""The built-in tabular/CTR evaluator: a table read and encoded once, a space of towers,
crosses and embeddings, and learners trained k at a time.

The names a script uses load on first use (PEP 562): the run's config imports this
package's settings without torch, so nothing here imports the trainer until asked.
"""

from importlib import import_module
from typing import Any

_HOME = {
    "TabularEvaluator": "edas_agent.evaluators.tabular.evaluator",
    "DataSpec": "edas_agent.evaluators.tabular.settings",
    "EncodedDataset": "edas_agent.evaluators.tabular.data",
    "load": "edas_agent.evaluators.tabular.data",
    "load_cached": "edas_agent.evaluators.tabular.cache",
    "Architecture": "edas_agent.evaluators.tabular.space",
    "MUTATIONS": "edas_agent.evaluators.tabular.mutations",
    "SMALL": "edas_agent.evaluators.tabular.mutations",  # the builtin proposer's caps
    "Caps": "edas_agent.evaluators.tabular.mutations",
    "train_learners": "edas_agent.evaluators.tabular.trainer",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'edas_agent.evaluators.tabular' has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
