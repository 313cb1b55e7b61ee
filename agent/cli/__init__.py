"""The `edas-agent` command line (typer): one module for the commands, one for the run
commands' helpers, one for what is printed."""

from edas_agent.cli.app import app, main

__all__ = ["app", "main"]
