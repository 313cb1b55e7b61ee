from __future__ import annotations

import pytest
from pydantic import ValidationError

from edas_agent.evaluators.tabular.space import Architecture


def test_every_number_in_the_schema_has_bounds():
    schema = Architecture.model_json_schema()

    def numbers(node, path=""):
        if isinstance(node, dict):
            if node.get("type") in ("integer", "number"):
                yield path, node
            for key, child in node.items():
                yield from numbers(child, f"{path}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                yield from numbers(child, f"{path}/{i}")

    found = list(numbers(schema))
    assert len(found) > 8
    for path, node in found:
        assert "minimum" in node or "exclusiveMinimum" in node, path
        assert "maximum" in node or "exclusiveMaximum" in node, path


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"tower": {"dropout": 0.9}}, "less than or equal to 0.5"),
        ({"tower": {"widths": [2]}}, "greater than or equal to 4"),
        ({"bagging": {"fraction": 0.1}}, "greater than or equal to 0.2"),
        ({"cross": {"layers": 9}}, "less than or equal to 6"),
        ({"training": {"optimizer": "lion"}}, "adamw"),
        ({"tower": {"depth": 3}}, "Extra inputs"),
    ],
)
def test_out_of_space_documents_are_rejected(document, message):
    with pytest.raises(ValidationError, match=message):
        Architecture.model_validate(document)


def test_per_field_dimensions_are_checked_against_the_dataset():
    document = {"embeddings": {"per_field": {"colour": 4, "flavour": 8}}}
    with pytest.raises(ValidationError, match="unknown categorical fields"):
        Architecture.model_validate(document, context={"categorical_fields": ["colour"]})
    Architecture.model_validate(
        {"embeddings": {"per_field": {"colour": 4}}}, context={"categorical_fields": ["colour"]}
    )


def test_hash_is_canonical():
    a = Architecture.model_validate({"tower": {"dropout": 0.1, "widths": [8]}})
    b = Architecture.model_validate({"tower": {"widths": [8], "dropout": 0.1}, "cross": {}})
    assert a.arch_hash() == b.arch_hash()
    assert a.arch_hash() != Architecture().arch_hash()


NUMERIC_ONLY = {"categorical_fields": [], "numeric_fields": ["x0", "x1"]}
CATEGORICAL_ONLY = {"categorical_fields": ["colour"], "numeric_fields": []}
ONE_COLUMN = {"categorical_fields": [], "numeric_fields": ["x0"]}


@pytest.mark.parametrize(
    ("document", "fields", "message"),
    [
        ({"embeddings": {"dim": 16}}, NUMERIC_ONLY, "no categorical columns, so /embeddings"),
        ({"fm": {"enabled": True}}, NUMERIC_ONLY, "only when /numeric/transform is 'bucketize'"),
        ({"attention": {"layers": 1}}, NUMERIC_ONLY, "no categorical columns, so /attention"),
        ({"embeddings": {"hash_buckets": 64}}, NUMERIC_ONLY, "hash_buckets must stay null"),
        ({"numeric": {"transform": "log_standard"}}, CATEGORICAL_ONLY, "no numeric columns"),
        ({"bagging": {"fraction": 0.5}}, ONE_COLUMN, "one feature column"),
        ({"embeddings": {"per_field": {"a/b": 4}}}, CATEGORICAL_ONLY, r"known, as written in"),
    ],
)
def test_edits_that_cannot_act_on_the_table_are_refused(document, fields, message):
    with pytest.raises(ValidationError, match=message):
        Architecture.model_validate(document, context=fields)
    Architecture.model_validate(document)  # without a table, the space allows them


def test_bucketised_numerics_make_embeddings_act_without_categorical_columns():
    document = {
        "numeric": {"transform": "bucketize"},
        "embeddings": {"dim": 16},
        "fm": {"enabled": True},
    }
    assert Architecture.model_validate(document, context=NUMERIC_ONLY).embeddings.dim == 16


def test_per_field_errors_show_names_as_json_pointer_tokens():
    fields = {"categorical_fields": ["a/b", "t~1"], "numeric_fields": []}
    with pytest.raises(ValidationError, match=r"\['a~1b', 't~01'\]"):
        Architecture.model_validate({"embeddings": {"per_field": {"a": 4}}}, context=fields)


# Each pair: a setting the schema says cannot act in this architecture, changed. Their
# effective documents are equal, so an edit from one to the other is a no-op to the run.
INERT_PAIRS = [
    ({"cross": {"layers": 0}}, {"cross": {"layers": 0, "rank": 8}}),
    ({"attention": {"layers": 0}}, {"attention": {"layers": 0, "heads": 4, "dim": 16}}),
    ({"numeric": {"transform": "standard"}}, {"numeric": {"transform": "standard", "buckets": 8}}),
    ({"tower": {"widths": []}},
     {"tower": {"widths": [], "activation": "tanh", "norm": "layer", "dropout": 0.3}}),
    ({"embeddings": {"dim": 4}}, {"embeddings": {"dim": 4, "per_field": {"colour": 4}}}),
]  # fmt: skip


@pytest.mark.parametrize(("document", "inert_change"), INERT_PAIRS)
def test_settings_that_cannot_act_are_at_their_defaults_in_the_effective_document(
    document, inert_change
):
    one, other = Architecture.model_validate(document), Architecture.model_validate(inert_change)
    assert one.document() != other.document()
    assert one.effective_document() == other.effective_document()


@pytest.mark.parametrize(
    "acting",
    [
        {"cross": {"layers": 1, "rank": 8}},
        {"attention": {"layers": 1, "heads": 4}},
        {"numeric": {"transform": "bucketize", "buckets": 8}},
        {"tower": {"widths": [16], "activation": "tanh"}},
        {"embeddings": {"per_field": {"colour": 4}}},
    ],
)
def test_the_same_settings_count_where_they_act(acting):
    effective = Architecture.model_validate(acting).effective_document()
    assert effective != Architecture().effective_document()
