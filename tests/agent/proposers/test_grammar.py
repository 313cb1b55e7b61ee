"""The GBNF grammar accepts exactly the answers the typed schema accepts (in key order).

The grammar has no recursive rule, so the test inlines it into a Python regular expression
and matches answers against that: valid answers must match, answers a server's decoder must
never produce (unknown path, value off the grid, wrong count, long rationale) must not.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.edit_schema import typed_answer_schema
from edas_agent.proposers.grammar import gbnf
from edas_agent.testing import RidgeArchitecture
from tests.agent.proposers.test_edit_schema import single_edits

_TOKEN = re.compile(
    r'\s*(?:(?P<literal>"(?:[^"\\]|\\.)*")|(?P<cls>\[(?:[^\]\\]|\\.)*\])'
    r"|(?P<name>[a-z][a-z0-9-]*)|(?P<op>[()|?*+])|(?P<count>\{\d+,\d*\}))"
)


def grammar_regex(grammar: str) -> re.Pattern:
    rules = dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())

    def expand(name: str) -> str:
        out, position, body = [], 0, rules[name]
        while position < len(body):
            match = _TOKEN.match(body, position)
            assert match, f"cannot read {body[position:]!r}"
            position = match.end()
            if match["literal"]:
                out.append(re.escape(json.loads(match["literal"])))
            elif match["cls"]:
                out.append(match["cls"].encode().decode("unicode_escape"))
            elif match["name"]:
                out.append(f"(?:{expand(match['name'])})")
            elif match["op"]:
                out.append("(?:" if match["op"] == "(" else match["op"])
            else:
                out.append(match["count"])
        return "".join(out)

    return re.compile(expand("root"), re.DOTALL)


def answer(proposals: list[tuple[str, list[dict]]], spaced: bool = True) -> str:
    separators = (", ", ": ") if spaced else (",", ":")
    items = [{"rationale": r, "edits": e} for r, e in proposals]
    return json.dumps({"proposals": items}, separators=separators)


def schema_for(space, document, proposals=1, edits=3):
    return typed_answer_schema(space.model_json_schema(), document, proposals, None, edits)


@pytest.mark.parametrize("space", [Architecture, RidgeArchitecture], ids=["tabular", "ridge"])
def test_every_offered_edit_is_a_sentence_of_the_grammar(space):
    document = space().document()
    schema = schema_for(space, document)
    pattern = grammar_regex(gbnf(schema))
    edits = [e.model_dump(exclude_none=True) for e in single_edits(schema)]
    for edit in edits:
        assert pattern.fullmatch(answer([("why", [edit])])), edit
    rng = random.Random(0)
    for _ in range(50):
        chosen = rng.sample(edits, rng.randint(1, 3))
        assert pattern.fullmatch(answer([('a \\"quoted\\" reason', chosen)], spaced=False))


def test_the_grammar_refuses_what_the_schema_refuses():
    document = Architecture().document()
    schema = schema_for(Architecture, document, proposals=2, edits=2)
    pattern = grammar_regex(gbnf(schema))
    good = {"op": "replace", "path": "/tower/dropout", "value": 0.3}
    assert pattern.fullmatch(answer([("a", [good]), ("b", [good, good])]))
    refused = [
        answer([("a", [good])]),  # one proposal where two are asked for
        answer([("a", [good]), ("b", [good, good, good])]),  # three edits, two allowed
        answer([("a", [{**good, "path": "/dataset"}]), ("b", [good])]),  # not a path
        answer([("a", [{**good, "value": 0.31}]), ("b", [good])]),  # off the grid
        answer([("a", [{**good, "value": document["tower"]["dropout"]}]), ("b", [good])]),
        answer([("x" * 301, [good]), ("b", [good])]),  # rationale over its cap
        answer([("a", [good]), ("b", [good])]).replace('"rationale"', '"why"'),
        answer([("a", [good]), ("b", [good])]).replace(", ", ",\n\n"),  # whitespace runs
    ]
    for text in refused:
        assert not pattern.fullmatch(text), text


def test_shapes_outside_the_subset_are_refused():
    with pytest.raises(ValueError, match="no grammar"):
        gbnf({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    with pytest.raises(ValueError, match="required"):
        gbnf({"type": "object", "properties": {"n": {"type": "null"}}})
