"""Reference pages generated from the code, so neither can drift from it: every config
field from the pydantic models, every command and option from the typer app. The docs site
(docs/hooks.py) writes them into its reference pages at build time."""

from __future__ import annotations

import types
import typing
from typing import Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from edas_agent.config import Config, dump_config


def config_reference() -> str:
    """Markdown: one table per section of the config (`gate:`, `llm:`, ...), then the
    top-level keys."""
    sections, top = [], []
    for name, field in Config.model_fields.items():
        model = _model_of(field.annotation)
        if model is None:
            top.append((name, field))
        else:
            sections += _sections(name, model)
    head = "### Top level\n\n" + _table([_row(name, field) for name, field in top])
    return "\n\n".join([head, *sections]) + "\n"


def _sections(name: str, model: type[BaseModel]) -> list[str]:
    """A section's table, then one per section nested in it (`search.explore:`)."""
    rows, nested = [], []
    for key, field in model.model_fields.items():
        inner = _model_of(field.annotation)
        if inner is None:
            rows.append(_row(key, field))
        else:
            nested += _sections(f"{name}.{key}", inner)
    doc = _first_paragraph(model.__doc__)
    return [f"### `{name}:`\n\n{doc}{_table(rows)}", *nested]


def config_yaml() -> str:
    """Markdown: the default configuration as a YAML block, every key present."""
    return f"```yaml\n{dump_config(Config())}```\n"


def cli_reference(app: typer.Typer) -> str:
    """Markdown: each command with its help and a table of its arguments and options."""
    # Typer's command objects are click's (vendored in recent typer): used by their click
    # API, not imported, so either works
    group = typer.main.get_command(app)
    context = group.context_class(group, info_name="edas-agent")
    return "\n\n".join(_command_parts(group, context, "")) + "\n"


def _command_parts(group: Any, context: Any, prefix: str) -> list[str]:
    """Each command of `group`, those of a sub-group (`tune bagging`) under its name."""
    parts = []
    for name in sorted(group.list_commands(context)):
        command = group.get_command(context, name)
        full = f"{prefix}{name}"
        if hasattr(command, "list_commands"):
            parts += _command_parts(command, context, f"{full} ")
            continue
        usage = " ".join(command.collect_usage_pieces(context))
        rows = [_param_row(p, context) for p in command.params if p.name != "help"]
        text = " ".join((command.help or "").split())
        parts.append(
            f"## `edas-agent {full}`\n\n```\nedas-agent {full} {usage}\n```\n\n{text}\n\n"
            + _table(rows, ("argument or option", "what it does"))
        )
    return parts


def _row(name: str, field: FieldInfo) -> tuple[str, str, str, str]:
    return (f"`{name}`", _type_name(field.annotation), _default(field), field.description or "")


def _param_row(param: Any, context: Any) -> tuple[str, str]:
    record = param.get_help_record(context) or (param.name, "")
    return (f"`{record[0]}`", record[1])


def _table(rows: list[tuple[str, ...]], header=("key", "type", "default", "what it does")) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return "" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    return "`null`" if field.default is None else f"`{field.default!r}`"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split()) + "\n\n"
