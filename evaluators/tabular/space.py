"""The tabular/CTR search space: one pydantic document per architecture.

Every number has explicit bounds so that an edit from an LLM is either inside the space or
rejected with a message that names the bound. The JSON Schema of `Architecture` is what
the proposers show the LLM, so the bounds written here are the bounds it sees.

Some settings depend on the dataset: field names in `embeddings.per_field`, and blocks that
do nothing on a table without categorical (or without numeric) columns. They are checked
when a validation context with the dataset's fields is given
(`Architecture.model_validate(doc, context={"categorical_fields": [...],
"numeric_fields": [...]})`), so an edit that cannot change the model is rejected with the
reason instead of costing a training.
"""

from __future__ import annotations

from typing import Annotated, Literal

import jsonpointer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edas_agent.evaluators.base import canonical_hash

Width = Annotated[int, Field(ge=4, le=1024)]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Embeddings(_Block):
    """One embedding table per categorical (and bucketised numeric) field."""

    dim: int = Field(8, ge=1, le=64, description="Embedding dimension of every field.")
    per_field: dict[str, Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=dict,
        description="Dimension overrides for single categorical fields, keyed by field name. "
        "FM and attention need equal dimensions, so they forbid overrides.",
    )
    hash_buckets: int | None = Field(
        None,
        ge=16,
        le=1_000_000,
        description="Hash fields with more categories than this into this many buckets.",
    )
    l2: float = Field(0.0, ge=0.0, le=1e-2, description="L2 penalty on looked-up embeddings.")

    @field_validator("per_field")
    @classmethod
    def _known_fields(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        known = (info.context or {}).get("categorical_fields")
        if known is not None:
            unknown = sorted(set(value) - set(known))
            if unknown:
                # Names with '/' or '~' are escaped in paths (RFC 6901): show that form.
                tokens = sorted(jsonpointer.escape(f) for f in known)
                raise ValueError(
                    f"unknown categorical fields {unknown}; known, as written in "
                    f"/embeddings/per_field/<field>: {tokens}"
                )
        return value


class Numeric(_Block):
    """How numeric features enter the model (statistics from the training split)."""

    transform: Literal["standard", "log_standard", "bucketize"] = Field(
        "standard",
        description="'standard': standardised values; 'log_standard': sign(x)*log1p(|x|) "
        "first, which tames heavy tails; 'bucketize': quantile buckets, each field embedded "
        "like a categorical one.",
    )
    buckets: int = Field(
        16, ge=4, le=64, description="Quantile buckets for 'bucketize'; no effect otherwise."
    )


class FM(_Block):
    """Factorisation machine: pairwise dot products of the field embeddings, added to the
    logit (DeepFM). Uses the categorical and bucketised numeric embeddings."""

    enabled: bool = False


class Cross(_Block):
    """DCN-v2 cross layers on the concatenated input: x_{l+1} = x0 * (W x_l + b) + x_l."""

    layers: int = Field(0, ge=0, le=6, description="Number of cross layers; 0 disables the block.")
    rank: int = Field(
        0,
        ge=0,
        le=64,
        description="Low-rank factorisation of W (U V^T); 0 means full rank. No effect while "
        "layers is 0.",
    )


class Attention(_Block):
    """AutoInt-style multi-head self-attention over the field embeddings, with residual
    connections; its output joins the tower's input."""

    layers: int = Field(0, ge=0, le=3, description="Attention layers; 0 disables the block.")
    heads: int = Field(2, ge=1, le=4, description="No effect while layers is 0.")
    dim: int = Field(
        8, ge=2, le=32, description="Attention dimension per head. No effect while layers is 0."
    )


class Tower(_Block):
    """The MLP on top of the (crossed) input."""

    widths: list[Width] = Field(
        default_factory=lambda: [64, 32],
        max_length=6,
        description="Hidden layer widths; [] is a linear model, in which the tower's other "
        "settings have no effect.",
    )
    activation: Literal["relu", "gelu", "silu", "tanh"] = "relu"
    norm: Literal["none", "batch", "layer"] = "none"
    dropout: float = Field(0.0, ge=0.0, le=0.5, description="Dropout after each hidden layer.")
    residual: bool = Field(
        False, description="Skip connections around hidden layers whose width is unchanged."
    )


class Bagging(_Block):
    """Feature bagging: each learner sees a random subset of fields drawn from its seed."""

    fraction: float = Field(
        1.0, ge=0.2, le=1.0, description="Fraction of fields (categorical and numeric) kept."
    )


class Training(_Block):
    optimizer: Literal["adamw", "adam", "sgd", "adagrad"] = "adamw"
    lr: float = Field(3e-3, ge=1e-4, le=1e-1, description="Learning rate.")
    epochs: int = Field(3, ge=1, le=20)
    batch_size: int = Field(512, ge=64, le=4096)
    weight_decay: float = Field(1e-5, ge=0.0, le=1e-1)


class Architecture(_Block):
    """A complete candidate: model blocks plus the training recipe."""

    embeddings: Embeddings = Field(default_factory=Embeddings)
    numeric: Numeric = Field(default_factory=Numeric)
    fm: FM = Field(default_factory=FM)
    cross: Cross = Field(default_factory=Cross)
    attention: Attention = Field(default_factory=Attention)
    tower: Tower = Field(default_factory=Tower)
    bagging: Bagging = Field(default_factory=Bagging)
    training: Training = Field(default_factory=Training)

    @model_validator(mode="after")
    def _equal_dimensions_for_interactions(self) -> Architecture:
        if (self.fm.enabled or self.attention.layers) and self.embeddings.per_field:
            raise ValueError(
                "fm and attention need equal embedding dimensions: remove embeddings.per_field "
                "or disable them"
            )
        return self

    @model_validator(mode="after")
    def _effective_on_the_data(self, info: ValidationInfo) -> Architecture:
        """Blocks that cannot act on this table must keep their defaults: otherwise two
        documents would train the same model under two hashes."""
        context = info.context or {}
        if "numeric_fields" not in context or "categorical_fields" not in context:
            return self
        problem = inert_blocks(
            self, len(context["categorical_fields"]), len(context["numeric_fields"])
        )
        if problem:
            raise ValueError(problem)
        return self

    def document(self) -> dict:
        """The JSON document that edits (JSON Patch) operate on."""
        return self.model_dump(mode="json")

    def effective_document(self) -> dict:
        """The document with every setting that cannot act in this architecture at its
        default, whatever the table: an edit of the baseline that changes only such settings
        is refused as a no-op (agent/search/checks.py) instead of training the same model."""
        document = self.document()
        if self.cross.layers == 0:
            document["cross"] = Cross().model_dump(mode="json")
        if self.attention.layers == 0:
            document["attention"] = Attention().model_dump(mode="json")
        if self.numeric.transform != "bucketize":
            document["numeric"]["buckets"] = Numeric().buckets
        if not self.tower.widths:
            document["tower"] = Tower(widths=[]).model_dump(mode="json")
        document["embeddings"]["per_field"] = {  # an override equal to dim overrides nothing
            field: dim
            for field, dim in self.embeddings.per_field.items()
            if dim != self.embeddings.dim
        }
        return document

    def arch_hash(self) -> str:
        return canonical_hash(self.document())


def inert_blocks(architecture: Architecture, categorical: int, numeric: int) -> str | None:
    """Why this architecture sets something that has no effect with these field counts."""
    bucketize = architecture.numeric.transform == "bucketize" and numeric > 0
    if categorical == 0 and architecture.embeddings.hash_buckets is not None:
        return "the table has no categorical columns: /embeddings/hash_buckets must stay null"
    if categorical == 0 and not bucketize:
        if architecture.embeddings != Embeddings() or architecture.fm.enabled:
            return _NO_EMBEDDED_FIELDS.format("/embeddings and /fm/enabled")
        if architecture.attention != Attention():
            return _NO_EMBEDDED_FIELDS.format("/attention")
    if numeric == 0 and architecture.numeric != Numeric():
        return "the table has no numeric columns: /numeric has no effect, keep its defaults"
    if categorical + numeric == 1 and architecture.bagging.fraction != 1.0:
        return "the table has one feature column, which every bag keeps: keep /bagging/fraction 1.0"
    return None


_NO_EMBEDDED_FIELDS = (
    "the table has no categorical columns, so {} act only when /numeric/transform is "
    "'bucketize' (which embeds the numeric columns); keep their defaults otherwise"
)
