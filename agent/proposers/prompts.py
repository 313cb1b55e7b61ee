"""Render the prompt templates in `prompts/` (or a user's folder) for one proposal."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jinja2

from edas_agent.proposers.base import ProposalContext
from edas_agent.theory.gate import frontier_rho

# delta_E values shown in the frontier table, as fractions of the baseline's E.
_FRONTIER_STEPS = (-0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02)
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str
    # The answer's schema, typed by the space and the baseline (agent/proposers/edit_schema.py;
    # LLMProposer fills it in): what a server with constrained decoding enforces.
    answer_schema: dict[str, Any] = field(default_factory=dict)


def environment(user_templates: str | None = None) -> jinja2.Environment:
    """Templates from the user's folder first, then the ones shipped in the `prompts` package."""
    loaders: list[jinja2.BaseLoader] = []
    if user_templates:
        loaders.append(jinja2.FileSystemLoader(user_templates))
    # PackageLoader also reads templates from a zipped or installed wheel.
    loaders.append(jinja2.PackageLoader("edas_agent.prompts", "."))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text for an LLM, not HTML
        keep_trailing_newline=True,
    )
    env.filters["to_json"] = _to_json
    return env


def render(
    context: ProposalContext,
    user_templates: str | None = None,
    token_budget: int = 8000,
    style: str = "full",
) -> RenderedPrompt:
    """The prompt for one round, `full` or `compact` (system_compact.j2, propose_compact.j2).
    History beyond the token budget (about 4 characters a token) is summarised from the
    oldest entry on, so long runs keep fitting."""
    suffix = "" if style == "full" else f"_{style}"
    env = environment(user_templates)
    variables = context.model_dump()
    variables["frontier"] = [
        {"delta_E": d, "max_rho": frontier_rho(context.stats, d, context.members)}
        for d in (step * context.stats.E for step in _FRONTIER_STEPS)
    ]
    history = list(variables["history"])
    template = env.get_template(f"propose{suffix}.j2")
    while True:
        variables["omitted"] = _omitted(context.history[: len(context.history) - len(history)])
        variables["history"] = history
        user = template.render(variables)
        if len(user) <= token_budget * _CHARS_PER_TOKEN or not history:
            break
        history = history[1:]
    return RenderedPrompt(
        system=env.get_template(f"system{suffix}.j2").render(variables),
        user=user,
    )


def render_repair(
    problems: list[str | None], user_templates: str | None = None, repeated: int | None = None
) -> str:
    """What was wrong; `repeated` names the earlier attempt this answer repeats word for word."""
    template = environment(user_templates).get_template("repair.j2")
    return template.render(problems=problems, repeated=repeated)


def _omitted(entries: list) -> dict | None:
    if not entries:
        return None
    counts = Counter(entry.status for entry in entries)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return {"count": len(entries), "summary": summary}


def _to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, sort_keys=False, default=list)
