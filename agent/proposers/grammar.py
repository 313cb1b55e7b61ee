"""A GBNF grammar (llama.cpp's grammar format) for the typed answer schema.

`llm.structured_output: grammar` sends it in the `grammar` field that llama.cpp's server and
llama-cpp-python's server read. The schema-to-grammar converters those servers run accept
any JSON Schema and so must allow any whitespace, any key order and escapes everywhere; ours
covers only the shapes agent/proposers/edit_schema.py emits (objects with required keys, arrays with
item bounds, anyOf, enum, const, capped strings, null), which lets it fix the key order and
allow at most one space between tokens: a small model then cannot wander into a run of
newlines or reorder keys, and the answer is as short as it can be. A node of another shape
is a programming error here, raised as ValueError.
"""

from __future__ import annotations

import json
from typing import Any

_BASICS = {
    "ws": '" "?',
    # A JSON string character: anything but a quote, a backslash or a control character,
    # or a simple escape (unicode escapes are left out: a rationale does not need them).
    "char": r'[^"\\\x00-\x1F] | "\\" ["\\/nt]',
}


def gbnf(schema: dict[str, Any]) -> str:
    """The grammar whose sentences are exactly the JSON texts (in canonical key order, with
    at most one space between tokens) that `schema` accepts."""
    rules: dict[str, str] = {}
    root = _rule(schema, rules, "answer")
    lines = [f"root ::= {root}"]
    lines += [f"{name} ::= {body}" for name, body in rules.items()]
    lines += [f"{name} ::= {body}" for name, body in _BASICS.items()]
    return "\n".join(lines) + "\n"


def _rule(node: dict[str, Any], rules: dict[str, str], hint: str) -> str:
    """The name of a rule for `node` (added to `rules` once per distinct body)."""
    body = _body(node, rules, hint)
    for name, existing in rules.items():
        if existing == body:
            return name
    name = _fresh_name(hint, rules)
    rules[name] = body
    return name


def _body(node: dict[str, Any], rules: dict[str, str], hint: str) -> str:
    if "const" in node:
        return _literal(node["const"])
    if "enum" in node:
        return " | ".join(_literal(value) for value in node["enum"])
    if "anyOf" in node:
        return " | ".join(_rule(option, rules, hint) for option in node["anyOf"])
    kind = node.get("type")
    if kind == "object":
        return _object(node, rules)
    if kind == "array":
        return _array(node, rules, hint)
    if kind == "string":
        return f'"\\"" char{{0,{node.get("maxLength", 1000)}}} "\\""'
    if kind == "null":
        return '"null"'
    raise ValueError(f"no grammar for schema node {json.dumps(node)[:200]}")


def _object(node: dict[str, Any], rules: dict[str, str]) -> str:
    properties = node.get("properties", {})
    if set(node.get("required", [])) != set(properties):
        raise ValueError("the grammar needs every property required (a fixed key order)")
    members = [
        f'{_literal(key)} ws ":" ws {_rule(child, rules, key)}' for key, child in properties.items()
    ]
    return '"{" ws ' + ' "," ws '.join(members) + ' ws "}"'


def _array(node: dict[str, Any], rules: dict[str, str], hint: str) -> str:
    item = _rule(node["items"], rules, f"{hint}-item")
    low, high = node.get("minItems", 0), node.get("maxItems")
    if low < 1:
        raise ValueError("the grammar needs minItems >= 1")
    if high == 1:
        return f'"[" ws {item} ws "]"'
    more = f"{{{low - 1},{'' if high is None else high - 1}}}"
    return f'"[" ws {item} ("," ws {item}){more} ws "]"'


def _literal(value: Any) -> str:
    """A GBNF string literal matching `value`'s JSON text exactly."""
    text = json.dumps(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fresh_name(hint: str, rules: dict[str, str]) -> str:
    base = "".join(c if c.isalnum() else "-" for c in hint.lower()).strip("-") or "rule"
    name, number = base, 1
    while name in rules or name in _BASICS or name == "root":
        number += 1
        name = f"{base}-{number}"
    return name


def longest_sentence(schema: dict[str, Any]) -> int:
    """Characters in the longest answer `schema` allows, written compactly with a space after
    each separator: what a cap on answer tokens must leave room for."""
    if "const" in schema:
        return len(json.dumps(schema["const"]))
    if "enum" in schema:
        return max(len(json.dumps(value)) for value in schema["enum"])
    if "anyOf" in schema:
        return max(longest_sentence(option) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind == "object":
        members = schema.get("properties", {}).items()
        return 2 + sum(len(json.dumps(key)) + 4 + longest_sentence(child) for key, child in members)
    if kind == "array":
        count = schema.get("maxItems", schema.get("minItems", 1))
        return 2 + count * (longest_sentence(schema["items"]) + 2)
    if kind == "string":
        return 2 + schema.get("maxLength", 1000)
    if kind == "null":
        return 4
    raise ValueError(f"no length bound for schema node {json.dumps(schema)[:200]}")
