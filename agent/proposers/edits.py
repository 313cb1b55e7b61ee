"""Proposals as JSON Patch (RFC 6902) operations on the architecture document."""

from __future__ import annotations

from typing import Any, Literal

import jsonpatch
import jsonpointer
from pydantic import BaseModel, ConfigDict, Field, model_validator


class InvalidEdits(ValueError):
    """The edits do not apply to the document (bad path, failed test, ...)."""


class Edit(BaseModel):
    """One JSON Patch operation, e.g. {"op": "replace", "path": "/tower/dropout", "value": 0.2}."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str = Field(description="JSON Pointer into the architecture, e.g. /tower/widths/0.")
    value: Any = Field(None, description="New value, for add, replace and test.")
    from_: str | None = Field(None, alias="from", description="Source pointer, for move and copy.")

    @model_validator(mode="after")
    def _operands(self) -> Edit:
        if self.op in ("move", "copy") and self.from_ is None:
            raise ValueError(f"'{self.op}' needs 'from'")
        if self.op in ("add", "replace", "test") and "value" not in self.model_fields_set:
            raise ValueError(f"'{self.op}' needs 'value'")
        return self

    def operation(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_unset=True, exclude_none=False)


class ProposedEdits(BaseModel):
    """What a proposer (builtin or LLM) answers: why, and which edits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rationale: str = Field(
        max_length=4000, description="Which mechanism the edits target, and why."
    )
    edits: list[Edit] = Field(min_length=1, max_length=12)


def apply_edits(document: dict[str, Any], edits: list[Edit]) -> dict[str, Any]:
    """The edited copy of `document`; raises InvalidEdits naming the failing operation."""
    current = document
    for index, edit in enumerate(edits):
        try:
            current = jsonpatch.apply_patch(current, [edit.operation()], in_place=False)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise InvalidEdits(
                f"edit {index} ({edit.op} {edit.path}) does not apply: {exc}"
            ) from None
    return current
