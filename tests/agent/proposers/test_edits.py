from __future__ import annotations

import pytest
from pydantic import ValidationError

from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.edits import Edit, InvalidEdits, ProposedEdits, apply_edits


def test_edits_apply_to_a_copy_and_revalidate():
    document = Architecture().document()
    edits = [
        Edit(op="replace", path="/tower/dropout", value=0.2),
        Edit(op="add", path="/tower/widths/-", value=16),
        Edit(op="replace", path="/cross/layers", value=2),
    ]
    edited = apply_edits(document, edits)
    assert document == Architecture().document()  # untouched
    architecture = Architecture.model_validate(edited)
    assert architecture.tower.widths == [64, 32, 16]
    assert architecture.tower.dropout == 0.2 and architecture.cross.layers == 2


def test_an_edit_that_does_not_apply_names_itself():
    edits = [
        Edit(op="replace", path="/tower/dropout", value=0.1),
        Edit(op="remove", path="/nope/x"),
    ]
    with pytest.raises(InvalidEdits, match=r"edit 1 \(remove /nope/x\)"):
        apply_edits(Architecture().document(), edits)


def test_a_failed_test_operation_is_invalid():
    with pytest.raises(InvalidEdits):
        apply_edits(Architecture().document(), [Edit(op="test", path="/cross/layers", value=5)])


def test_operations_need_their_operands():
    with pytest.raises(ValidationError, match="needs 'value'"):
        Edit(op="replace", path="/tower/dropout")
    with pytest.raises(ValidationError, match="needs 'from'"):
        Edit(op="move", path="/a")
    assert Edit.model_validate({"op": "copy", "from": "/a", "path": "/b"}).operation() == {
        "op": "copy",
        "path": "/b",
        "from": "/a",
    }


def test_a_proposal_needs_at_least_one_edit():
    with pytest.raises(ValidationError):
        ProposedEdits(rationale="nothing", edits=[])
