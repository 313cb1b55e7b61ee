"""The run configuration: one YAML file, validated by pydantic, every field overridable
from the command line (`--set KEY=VALUE`). One module per part of it; this package's
names are the ones to import."""

from edas_agent.config.executor import ExecutorSettings
from edas_agent.config.flags import DATA_OPTIONS, LIST_OPTIONS, parse_sets
from edas_agent.config.llm import DEFAULT_KEY_ENV, DEFAULT_MODELS, LLMSettings, Price, Provider
from edas_agent.config.run import Config, dump_config, load_config, parse_llm_option
from edas_agent.config.search import GateSettings, ScreeningSettings, SearchSettings
from edas_agent.evaluators.settings import EvaluatorSettings, SpaceSettings
from edas_agent.evaluators.tabular.settings import DataSpec

__all__ = [
    "DATA_OPTIONS",
    "DEFAULT_KEY_ENV",
    "DEFAULT_MODELS",
    "LIST_OPTIONS",
    "Config",
    "DataSpec",
    "EvaluatorSettings",
    "ExecutorSettings",
    "GateSettings",
    "LLMSettings",
    "Price",
    "Provider",
    "ScreeningSettings",
    "SearchSettings",
    "SpaceSettings",
    "dump_config",
    "load_config",
    "parse_llm_option",
    "parse_sets",
]
