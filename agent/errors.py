"""Errors a user can fix, and how pydantic's validation errors are shown to people and LLMs."""

from __future__ import annotations

from pydantic import ValidationError


class UserError(Exception):
    """Bad input from the user (config, CLI, files): shown as one line, no traceback."""


def describe_validation_error(
    exc: ValidationError, prefix: str = "", as_flags: bool = False
) -> str:
    """One '; '-separated line naming each offending key, what is wrong and what was given;
    `as_flags` names a key as its command-line flag (gate.confidence: --confidence)."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(document)"
        if as_flags and error["loc"]:
            location = "--" + str(error["loc"][-1]).replace("_", "-")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in error and error["type"] != "missing":
            message = f"{message} (got {error['input']!r:.60})"
        problems.append(f"{prefix}{location}: {message}")
    return "; ".join(problems)
