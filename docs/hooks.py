"""MkDocs hook: the reference pages' generated parts, from the code itself at build time
(edas_agent.cli.reference), so the configuration and command-line references cannot drift
from the pydantic models and the typer app."""

from __future__ import annotations

GENERATED = "<!-- generated: {} -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    from edas_agent.cli import app
    from edas_agent.cli.reference import cli_reference, config_reference, config_yaml

    generated = (
        ("config-yaml", config_yaml),
        ("config", config_reference),
        ("cli", lambda: cli_reference(app)),
    )
    for name, render in generated:
        marker = GENERATED.format(name)
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
