"""Render the prompt templates in `prompts/` (or a user's folder) for one proposal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jinja2

from agent.gate import frontier_rho
from agent.proposers.base import ProposalContext

# delta_E values shown in the frontier table, as fractions of the baseline's E.
_FRONTIER_STEPS = (-0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02)


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str


def environment(user_templates: str | None = None) -> jinja2.Environment:
    """Templates from the user's folder first, then the ones shipped in the `prompts` package."""
    loaders: list[jinja2.BaseLoader] = []
    if user_templates:
        loaders.append(jinja2.FileSystemLoader(user_templates))
    # PackageLoader also reads templates from a zipped or installed wheel.
    loaders.append(jinja2.PackageLoader("prompts", "."))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text for an LLM, not HTML
        keep_trailing_newline=True,
    )
    env.filters["to_json"] = _to_json
    return env


def render(context: ProposalContext, user_templates: str | None = None) -> RenderedPrompt:
    env = environment(user_templates)
    variables = context.model_dump()
    variables["frontier"] = [
        {"delta_E": d, "max_rho": frontier_rho(context.stats, d, context.members)}
        for d in (step * context.stats.E for step in _FRONTIER_STEPS)
    ]
    return RenderedPrompt(
        system=env.get_template("system.j2").render(variables),
        user=env.get_template("propose.j2").render(variables),
    )


def _to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, sort_keys=False, default=list)
