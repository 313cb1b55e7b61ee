"""What the command-line modules share: the Typer app, the consoles, option types (the data
options declared once), one-line errors, progress and loading the evaluator."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from edas_agent.config import DATA_OPTIONS, LIST_OPTIONS, Config
from edas_agent.errors import UserError
from edas_agent.evaluators.base import Evaluator
from edas_agent.training.door import DataError, build_evaluator

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Search architectures for M-member ensembles from two learners per candidate.",
)
# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default, so the
# trajectory table stays readable; COLUMNS, when set, still wins.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(width=_PIPED_WIDTH)
errors = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SeedOption = Annotated[int | None, typer.Option(help="Run seed: split, learners, proposer.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any config key: --set llm.temperature=0.2 (repeatable)."),
]


def data_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the data options; it receives them as `data_overrides`, a dict of
    dotted config keys (None where an option was not given)."""
    signature = inspect.signature(command)
    # Typer reads the new signature, so its annotations must be objects, not the strings
    # that postponed evaluation leaves.
    hints = typing.get_type_hints(command, include_extras=True)
    kept = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != "data_overrides"
    ]
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, typer.Option(help=help_)],
        )
        for name, _, help_ in DATA_OPTIONS
    ]

    @functools.wraps(command)
    def with_data(*args: Any, **kwargs: Any) -> None:
        overrides = {key: kwargs.pop(name) for name, key, _ in DATA_OPTIONS}
        for name, key, _ in DATA_OPTIONS:
            if name in LIST_OPTIONS and overrides[key] is not None:
                overrides[key] = [c.strip() for c in overrides[key].split(",") if c.strip()]
        return command(*args, **kwargs, data_overrides=overrides)

    with_data.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    return with_data


def load_evaluator(settings: Config) -> Evaluator:
    """The run's evaluator, with a spinner while the data loads and its notes printed."""
    with console.status(f"Loading data '{settings.evaluator.data.path}'"):
        try:
            evaluator = build_evaluator(settings)
        except DataError as exc:
            raise UserError(f"data: {exc}") from None
        except ValueError as exc:  # e.g. evaluator.device cuda without CUDA
            raise UserError(str(exc)) from None
    for note in evaluator.notes:  # on stderr, so `--json` output stays clean
        errors.print(Text.assemble(("note:", "bold yellow"), " ", note), soft_wrap=True)
    if cached_at := getattr(getattr(evaluator, "data", None), "cached_at", None):
        errors.print(f"data: encoded-data cache {cached_at} (edas-agent cache clear to remove)",
                     style="dim", soft_wrap=True)  # fmt: skip
    return evaluator


def executor_for(evaluator: Evaluator, settings: Config):
    from edas_agent.training.executors import make_executor

    try:
        return make_executor(evaluator, settings.executor)
    except RuntimeError as exc:  # Ray asked for but not installed
        raise UserError(str(exc)) from None


@contextmanager
def learner_progress(what: str):
    """A progress line for long trainings; the callback takes (architecture, learner index)."""
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), "[progress.description]{task.description}", TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"{what}: loading data")
        trained = 0

        def advance(name: str, j: int) -> None:
            nonlocal trained
            trained += 1
            progress.update(
                task, description=f"{what}: {trained} learners trained (last: {name} #{j})"
            )

        yield advance


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print_json(json.dumps(result))


def report_error(label: str, message: str) -> None:
    """One line on stderr; the message is plain text, never parsed as rich markup."""
    errors.print(Text.assemble((label, "bold red"), " ", message), soft_wrap=True)
