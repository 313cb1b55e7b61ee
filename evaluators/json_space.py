"""A search space written as JSON Schema (for the command evaluator), as a pydantic model.

The agent works on pydantic spaces: validation, the prompt's schema, the typed answer
schema and the builtin mutations all come from one. A space given as JSON Schema is turned
into an equivalent pydantic model, so it gets all of that unchanged. The schema's defaults
are the default architecture; every property needs one.

Supported, because a search space needs no more: objects with properties (nested objects
too), integers and numbers with minimum/maximum (or exclusive bounds), booleans, strings
with an enum, enums and consts of any JSON values, arrays of those with minItems/maxItems,
and `anyOf` with null (optional values). Anything else is refused with its path, before
the run starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

_BOUNDS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "minItems": "min_length",
    "maxItems": "max_length",
}


class SpaceError(ValueError):
    """The JSON Schema cannot be a search space; the message names the path."""


def load_space(path: Path) -> type[BaseModel]:
    try:
        schema = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpaceError(f"{path}: not a readable JSON file ({exc})") from None
    return space_from_schema(schema, schema.get("title") or path.stem.split(".")[0])


def space_from_schema(schema: dict[str, Any], name: str = "Space") -> type[BaseModel]:
    if schema.get("type") != "object" or not schema.get("properties"):
        raise SpaceError("the space must be a JSON Schema object with properties")
    return _model(schema, _identifier(name), "", schema.get("$defs", {}))


def _model(node: dict[str, Any], name: str, path: str, defs: dict) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for key, child in node["properties"].items():
        where = f"{path}/{key}"
        child = _resolve(child, defs, where)
        kind = _type(child, f"{name}_{_identifier(key)}", where, defs)
        if "default" in child:
            default = child["default"]
        elif child.get("type") == "object":
            default = None  # filled from the nested model's own defaults below
        else:
            raise SpaceError(f"{where}: every property needs a default (the default architecture)")
        description = child.get("description")
        if default is None and child.get("type") == "object":
            fields[key] = (kind, Field(default_factory=kind, description=description))
        else:
            fields[key] = (kind, Field(default, description=description))
    config = ConfigDict(extra="forbid", frozen=True)
    return create_model(name, __config__=config, **fields)


def _type(node: dict[str, Any], name: str, path: str, defs: dict) -> Any:
    node = _resolve(node, defs, path)
    if "const" in node:
        return Literal[node["const"]]
    if "enum" in node:
        return Literal[tuple(node["enum"])]
    if "anyOf" in node:
        options = [_resolve(o, defs, path) for o in node["anyOf"]]
        kinds = [o for o in options if o.get("type") != "null"]
        if len(kinds) != 1 or len(options) != 2:
            raise SpaceError(f"{path}: anyOf is supported only as one type or null")
        return Optional[_type(kinds[0], name, path, defs)]  # noqa: UP045 (a runtime type)
    kind = node.get("type")
    if kind == "object":
        if not node.get("properties"):
            raise SpaceError(f"{path}: an object needs properties")
        return _model(node, name, path, defs)
    if kind == "array":
        if "items" not in node:
            raise SpaceError(f"{path}: an array needs items")
        item = _type(node["items"], f"{name}_item", f"{path}/items", defs)
        return _bounded(list[item], node)
    if kind in ("integer", "number"):
        if not ({"minimum", "exclusiveMinimum"} & set(node)) or not (
            {"maximum", "exclusiveMaximum"} & set(node)
        ):
            raise SpaceError(f"{path}: a number needs both bounds (minimum and maximum)")
        return _bounded(int if kind == "integer" else float, node)
    if kind == "boolean":
        return bool
    if kind == "string":
        raise SpaceError(f"{path}: a string needs an enum of its allowed values")
    raise SpaceError(f"{path}: unsupported schema {json.dumps(node)[:120]}")


def _bounded(kind: Any, node: dict[str, Any]) -> Any:
    """`kind` with the node's bounds (numbers: minimum...; arrays: minItems...)."""
    bounds = {_BOUNDS[k]: v for k, v in node.items() if k in _BOUNDS}
    return Annotated[kind, Field(**bounds)] if bounds else kind


def _resolve(node: dict[str, Any], defs: dict, path: str) -> dict[str, Any]:
    while "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1]
        if target not in defs:
            raise SpaceError(f"{path}: $ref {node['$ref']} not found in $defs")
        node = {**defs[target], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _identifier(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text).strip("_") or "Space"
    return cleaned if not cleaned[0].isdigit() else f"S_{cleaned}"
