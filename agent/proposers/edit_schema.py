"""The answer's JSON Schema, typed by the search space: what constrained decoding enforces.

The generic answer schema lets a model write any path and any value, which a small model
then gets wrong (unknown keys, values out of bounds, edits that change nothing). This one
is derived from the space's JSON Schema and the baseline document: each edit is one of a
list of variants `{"op": <const>, "path": <const>, "value": <typed>}`, one per editable
place, and every value is chosen from a bounded list that leaves out the baseline's own
value and every value whose edit alone the loop would refuse (the loop's own check: outside
this table's space, a no-op, an architecture already evaluated). A server that constrains
decoding to it cannot return an answer that fails to parse, names a path outside the space
or leaves a bound; with one edit per proposal, every answer is also valid and new. Several
edits in one proposal can still interfere (two removes from one list, a combination
evaluated before), which is why `llm.edits_per_proposal` exists.
Pydantic validation of the answer stays as the safety net (for cross-field rules, and for
servers that do not constrain).

Grids are used instead of numeric ranges because grammar compilers (llama.cpp's among
them) enforce enumerations everywhere but numeric bounds only for some types.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any

import jsonpointer

from edas_agent.evaluators.base import canonical_hash
from edas_agent.proposers.base import Check
from edas_agent.proposers.edits import Edit, ProposedEdits, apply_edits

_GRID = 11  # values offered for a bounded number on a linear scale
_MAX_ENUMERATED_INTEGERS = 64
_RATIONALE_CHARS = 300
Keep = Callable[[Edit], bool]  # is this one edit, applied alone, worth offering?


def typed_answer_schema(
    space: dict[str, Any],
    document: dict[str, Any],
    proposals: int,
    keep: Keep | None = None,
    edits_per_proposal: int = 3,
    place: str | None = None,
) -> dict[str, Any]:
    """{"proposals": [exactly `proposals` items of {rationale, edits}]}. `keep` says
    whether one edit, applied alone, is worth offering (inside this table's space, new);
    by default every edit that changes the document is. `place` (see `places`) offers that
    place's edits alone."""
    variants = offered_variants(space, document, keep)
    if place is not None:
        variants = [v for v in variants if place_of(v) == place]
    proposal = {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "maxLength": _RATIONALE_CHARS},
            "edits": {
                "type": "array",
                "items": {"anyOf": variants},
                "minItems": 1,
                "maxItems": edits_per_proposal,
            },
        },
        "required": ["rationale", "edits"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "proposals": {
                "type": "array",
                "items": proposal,
                "minItems": proposals,
                "maxItems": proposals,
            }
        },
        "required": ["proposals"],
        "additionalProperties": False,
    }


def novel(document: dict[str, Any], evaluated: Collection[str]) -> Keep:
    """Edits that give neither the document back nor an architecture already evaluated."""
    avoid = {canonical_hash(document), *evaluated}
    return lambda edit: hash_after(document, edit) not in avoid


def checked(check: Check) -> Keep:
    """Edits the loop's own check accepts alone: inside the space, changing the trained
    model (not only settings that cannot act), not evaluated before. What a proposer offers
    when the loop gives it `check`; `novel` without one."""
    return lambda edit: check([ProposedEdits(rationale="-", edits=[edit])]) == [None]


def offered_variants(
    space: dict[str, Any], document: dict[str, Any], keep: Keep | None = None
) -> list[dict[str, Any]]:
    """The variants with only the edits `keep` accepts (by default those that change the
    document), in document order; places left with no edit are left out."""
    keep = keep or (lambda edit: hash_after(document, edit) != canonical_hash(document))
    variants = [_filtered(v, keep) for v in edit_variants(space, document)]
    return [v for v in variants if v is not None]


def place_of(variant: dict[str, Any]) -> str:
    """A variant's place: its operation and path, e.g. 'replace /training/lr'."""
    properties = variant["properties"]
    return f"{properties['op']['const']} {properties['path']['const']}"


def edit_variants(space: dict[str, Any], document: dict[str, Any]) -> list[dict[str, Any]]:
    """One schema per editable place of `document`, in document order."""
    definitions = space.get("$defs", {})
    variants: list[dict[str, Any]] = []
    _walk(space, document, "", definitions, variants)
    return variants


def edits_of(variant: dict[str, Any]) -> list[Edit]:
    """Every edit one variant allows, value by value."""
    properties = variant["properties"]
    op, path = properties["op"]["const"], properties["path"]["const"]
    if "value" not in properties:
        return [Edit(op=op, path=path)]
    options = properties["value"].get("anyOf", [properties["value"]])
    return [Edit(op=op, path=path, value=v) for o in options for v in o.get("enum", [None])]


def _filtered(variant: dict[str, Any], keep: Keep) -> dict[str, Any] | None:
    """The variant with only the values `keep` accepts; None if nothing is left."""
    op, path = (variant["properties"][key]["const"] for key in ("op", "path"))
    value = variant["properties"].get("value")
    if value is None:  # remove
        return variant if keep(Edit(op=op, path=path)) else None
    kept = _filter_values(value, lambda v: keep(Edit(op=op, path=path, value=v)))
    if kept is None:
        return None
    return {**variant, "properties": {**variant["properties"], "value": kept}}


def _filter_values(schema: dict[str, Any], accept: Callable[[Any], bool]):
    if "anyOf" in schema:
        options = [_filter_values(option, accept) for option in schema["anyOf"]]
        options = [o for o in options if o is not None]
        return {"anyOf": options} if options else None
    if "enum" in schema:
        return _enum([v for v in schema["enum"] if accept(v)])
    return schema if accept(None) else None  # {"type": "null"}


def hash_after(document: dict[str, Any], edit: Edit) -> str:
    """The hash of the document with this one edit applied."""
    return canonical_hash(apply_edits(document, [edit]))


def _walk(node, value, path: str, definitions, variants: list[dict[str, Any]]) -> None:
    node = _resolve(node, definitions)
    if node.get("type") == "object" and "properties" in node and isinstance(value, dict):
        for key, child in node["properties"].items():
            if key in value:
                _walk(child, value[key], f"{path}/{jsonpointer.escape(key)}", definitions, variants)
        return
    if node.get("type") == "array" and isinstance(value, list):
        _list_variants(node, value, path, definitions, variants)
        return
    choices = _values(node, value, definitions)
    if choices is not None:
        variants.append(_variant("replace", path, choices))


def _list_variants(node, items: list, path: str, definitions, variants) -> None:
    item = _resolve(node.get("items", {}), definitions)
    for index, current in enumerate(items):
        choices = _values(item, current, definitions)
        if choices is not None:
            variants.append(_variant("replace", f"{path}/{index}", choices))
    if len(items) > node.get("minItems", 0):
        variants.append(_variant("remove", f"{path}/{len(items) - 1}", None))
    if len(items) < node.get("maxItems", math.inf):
        choices = _values(item, None, definitions)
        if choices is not None:
            variants.append(_variant("add", f"{path}/-", choices))


def _variant(op: str, path: str, value: dict[str, Any] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"op": {"const": op}, "path": {"const": path}}
    if value is not None:
        properties["value"] = value
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _values(node, current, definitions) -> dict[str, Any] | None:
    """The schema of the values that may replace `current`; None if it is not editable
    (an object whose keys the space leaves open, or a free string)."""
    node = _resolve(node, definitions)
    if "anyOf" in node:  # Optional[X]: X's values, or null
        options = [_resolve(o, definitions) for o in node["anyOf"]]
        kinds = [o for o in options if o.get("type") != "null"]
        if len(kinds) != 1:
            return None
        inner = _values(kinds[0], current, definitions)
        if inner is None:
            return None
        return {"anyOf": [inner, {"type": "null"}]} if current is not None else inner
    if "enum" in node or "const" in node:
        allowed = node.get("enum", [node.get("const")])
        return _enum([v for v in allowed if v != current])
    kind = node.get("type")
    if kind == "boolean":
        return _enum([v for v in (True, False) if v != current])
    if kind in ("integer", "number"):
        return _enum([v for v in _grid(node, kind) if v != current])
    return None


def _enum(values: list[Any]) -> dict[str, Any] | None:
    return {"enum": values} if values else None


def _grid(node: dict[str, Any], kind: str) -> list[float | int]:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if low is None or high is None:
        return []  # unbounded: the space's own bounds are required to enumerate
    if "exclusiveMinimum" in node:
        low = low + (1 if kind == "integer" else 1e-9)
    if "exclusiveMaximum" in node:
        high = high - (1 if kind == "integer" else 1e-9)
    if kind == "integer":
        if high - low + 1 <= _MAX_ENUMERATED_INTEGERS:
            return list(range(int(low), int(high) + 1))
        return _geometric(max(low, 1), high, integer=True)
    if low > 0 and high / low >= 100:
        return _geometric(low, high, integer=False)
    step = (high - low) / (_GRID - 1)
    linear = [float(f"{low + i * step:.4g}") for i in range(_GRID)]
    if low == 0:  # dropout-like and penalty-like ranges both start at 0: offer both scales
        return sorted({*linear, *_geometric(high / 1e4, high, integer=False)})
    return linear


def _geometric(low: float, high: float, integer: bool) -> list[float | int]:
    """Powers of two between integer bounds; 1, 3, 10, 30, ... times powers of ten between
    float bounds (the log scale learning rates and penalties live on)."""
    if integer:
        values = [2**e for e in range(0, 31) if low <= 2**e <= high]
        return sorted({int(low), *values, int(high)})
    values = []
    exponent = math.floor(math.log10(low))
    while 10**exponent <= high:
        for mantissa in (1, 3):
            value = float(f"{mantissa * 10.0**exponent:.3g}")
            if low <= value <= high:
                values.append(value)
        exponent += 1
    return values


def _resolve(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref (and pydantic's allOf wrapper around one) to its definition."""
    while True:
        if "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            return node
