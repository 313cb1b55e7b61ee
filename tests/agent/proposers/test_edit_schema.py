"""The typed answer schema: every single edit it allows is inside the space and new."""

from __future__ import annotations

import pytest

from edas_agent.evaluators.base import canonical_hash
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.edit_schema import edits_of, novel, typed_answer_schema
from edas_agent.proposers.edits import Edit, apply_edits
from edas_agent.testing import RidgeArchitecture


def single_edits(schema: dict) -> list[Edit]:
    """Every edit an answer matching `schema` can contain, value by value."""
    proposal = schema["properties"]["proposals"]["items"]
    variants = proposal["properties"]["edits"]["items"]["anyOf"]
    return [edit for variant in variants for edit in edits_of(variant)]


BASELINES = [
    Architecture(),
    Architecture.model_validate(
        {
            "tower": {"widths": [8, 16, 32, 64, 128, 256], "norm": "layer"},  # at max length
            "embeddings": {"hash_buckets": 64},
            "numeric": {"transform": "bucketize"},
        }
    ),
]


@pytest.mark.parametrize("baseline", BASELINES, ids=["default", "full-tower"])
def test_every_single_edit_is_inside_the_space_and_new(baseline: Architecture):
    document = baseline.document()
    evaluated = {
        canonical_hash(
            apply_edits(document, [Edit(op="replace", path="/tower/dropout", value=0.1)])
        )
    }
    schema = typed_answer_schema(
        Architecture.model_json_schema(), document, 2, novel(document, evaluated)
    )
    assert (
        schema["properties"]["proposals"]["minItems"]
        == 2
        == schema["properties"]["proposals"]["maxItems"]
    )
    edits = single_edits(schema)
    assert len(edits) > 100
    seen = set()
    for edit in edits:
        architecture = Architecture.model_validate(apply_edits(document, [edit]))
        assert architecture.arch_hash() not in evaluated | {baseline.arch_hash()}, edit
        seen.add(edit.path)
    assert "/tower/dropout" in seen  # other dropout values stay on offer
    has_room = len(baseline.tower.widths) < 6
    assert ("/tower/widths/-" in seen) == has_room


def test_the_schema_follows_any_pydantic_space():
    document = RidgeArchitecture().document()
    schema = typed_answer_schema(RidgeArchitecture.model_json_schema(), document, 1)
    edits = single_edits(schema)
    assert {e.path for e in edits} == {"/l2", "/features", "/rows"}
    for edit in edits:
        RidgeArchitecture.model_validate(apply_edits(document, [edit]))


def test_an_answer_valid_by_the_schema_parses_as_proposals():
    jsonschema = pytest.importorskip("jsonschema")
    from edas_agent.proposers.llm import parse_object

    document = Architecture().document()
    schema = typed_answer_schema(Architecture.model_json_schema(), document, 1)
    jsonschema.Draft202012Validator.check_schema(schema)
    answer = {
        "proposals": [
            {
                "rationale": "diversity",
                "edits": [{"op": "replace", "path": "/tower/dropout", "value": 0.2}],
            }
        ]
    }
    jsonschema.validate(answer, schema)
    (item,) = parse_object(answer)
    assert item.edits[0].path == "/tower/dropout"
    bad = {
        "proposals": [
            {
                "rationale": "x",
                "edits": [{"op": "replace", "path": "/tower/dropout", "value": 0.95}],
            }
        ]
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_a_keep_function_removes_what_the_table_refuses_and_sets_the_edit_count():
    """The loop passes its check: on a numeric-only table, embedding edits are refused by
    the space, so the schema does not offer them."""
    from pydantic import ValidationError

    fields = {"categorical_fields": [], "numeric_fields": ["x0", "x1"]}
    document = Architecture().document()

    def keep(edit: Edit) -> bool:
        try:
            Architecture.model_validate(apply_edits(document, [edit]), context=fields)
        except ValidationError:
            return False
        return True

    schema = typed_answer_schema(Architecture.model_json_schema(), document, 1, keep, 1)
    edits_schema = schema["properties"]["proposals"]["items"]["properties"]["edits"]
    assert edits_schema["maxItems"] == 1
    paths = {e.path for e in single_edits(schema)}
    assert not any(p.startswith(("/embeddings", "/fm", "/attention")) for p in paths)
    assert "/numeric/transform" in paths and "/tower/dropout" in paths
