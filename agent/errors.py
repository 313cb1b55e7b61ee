"""Errors a user can fix, and how pydantic's validation errors are shown to people and LLMs."""

from __future__ import annotations

from pydantic import ValidationError


class UserError(Exception):
    """Bad input from the user (config, CLI, files): shown as one line, no traceback."""


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One '; '-separated line naming each offending key, what is wrong and what was given."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(document)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in error and error["type"] != "missing":
            message = f"{message} (got {error['input']!r:.60})"
        problems.append(f"{prefix}{location}: {message}")
    return "; ".join(problems)
