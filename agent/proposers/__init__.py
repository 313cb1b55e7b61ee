"""Proposers: who suggests the next edits. `make_proposer` picks one from the config."""

from __future__ import annotations

import os
from pathlib import Path

from edas_agent.config import LLMSettings
from edas_agent.errors import UserError
from edas_agent.evaluators.base import Mutations
from edas_agent.proposers.base import Check, Proposal, ProposalContext, Proposer, ProposerStopped
from edas_agent.proposers.builtin import BuiltinProposer
from edas_agent.proposers.generic import GenericProposer
from edas_agent.proposers.local_server import llama_cpp_server
from edas_agent.training.costs import LLMBudget

__all__ = [
    "Check",
    "Proposal",
    "ProposalContext",
    "Proposer",
    "ProposerStopped",
    "llama_cpp_server",
    "make_proposer",
    "preflight",
]


def preflight(settings: LLMSettings) -> None:
    """Before any data is loaded or learner trained: the proposer's server answers (when
    the config names one; the providers' own APIs are not called here)."""
    if not settings.prompts_a_model or not settings.base_url:
        return
    from edas_agent.proposers.transport import unreachable

    problem = unreachable(settings.base_url)
    if problem is not None:
        raise UserError(
            f"cannot reach the LLM server at {settings.base_url} ({problem}): is it running, "
            "and is llm.base_url right?"
        )


def make_proposer(
    settings: LLMSettings, seed: int, budget: LLMBudget, mutations: Mutations | None
) -> Proposer:
    """The config's proposer; `builtin` draws from the evaluator's hand-written `mutations`
    (the tabular space's) and searches a space without them generically."""
    if settings.provider == "builtin":
        return BuiltinProposer(seed, mutations) if mutations else GenericProposer(seed)
    if settings.provider == "random":
        from edas_agent.proposers.random import RandomProposer

        return RandomProposer(seed)
    if settings.provider == "optuna":
        try:
            from edas_agent.proposers.sampler import OptunaProposer

            return OptunaProposer(seed, settings.resolved_model())
        except ModuleNotFoundError as exc:
            raise UserError(f"llm.provider 'optuna' needs Optuna ({exc}): pip install "
                            "'edas-agent[optuna]'") from None  # fmt: skip
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if settings.provider == "replay":
        from edas_agent.proposers.replay import ReplayProposer

        assert settings.replay_from is not None  # checked by Config
        return ReplayProposer(settings, budget, Path(settings.replay_from))
    try:
        budget.require_price(settings.resolved_model())
    except ValueError as exc:
        raise UserError(str(exc)) from None
    api_key = _api_key(settings)
    if settings.provider == "anthropic":
        from edas_agent.proposers.anthropic import AnthropicProposer

        return AnthropicProposer(settings, budget, api_key)
    from edas_agent.proposers.openai import OpenAICompatibleProposer, OpenAIProposer

    if settings.provider == "openai-compatible":
        return OpenAICompatibleProposer(settings, budget, api_key)
    return OpenAIProposer(settings, budget, api_key)


def _api_key(settings: LLMSettings) -> str:
    variable = settings.resolved_key_env()
    key = os.environ.get(variable or "")
    if key:
        return key
    if settings.base_url:
        # Local OpenAI-compatible servers (Ollama, llama.cpp) usually take any key.
        return "not-needed"
    raise UserError(
        f"llm.provider is {settings.provider!r} but ${variable} is not set; export it, or name "
        "another variable in llm.api_key_env"
    )
