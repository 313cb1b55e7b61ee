"""Proposers: who suggests the next edits. `make_proposer` picks one from the config."""

from __future__ import annotations

import os

from agent.config import LLMSettings
from agent.errors import UserError
from agent.proposers.base import Proposal, ProposalContext, Proposer, ProposerStopped
from agent.proposers.builtin import BuiltinProposer

__all__ = ["Proposal", "ProposalContext", "Proposer", "ProposerStopped", "make_proposer"]


def make_proposer(settings: LLMSettings, seed: int) -> Proposer:
    if settings.provider == "builtin":
        return BuiltinProposer(seed)
    api_key = _api_key(settings)
    if settings.provider == "openai":
        from agent.proposers.openai import OpenAIProposer

        return OpenAIProposer(settings, api_key)
    from agent.proposers.anthropic import AnthropicProposer

    return AnthropicProposer(settings, api_key)


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
