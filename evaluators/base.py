"""What the agent needs from an evaluator, independent of the model family.

An evaluator owns a search space (a pydantic model), a dataset split once per run, and
the training of k learners of one architecture. It knows nothing about the agent, the
gate or the LLM: the agent imports evaluators, never the reverse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel
from typing_extensions import get_protocol_members

Task = Literal["binary", "multiclass", "regression"]


def canonical_hash(document: dict) -> str:
    """Equal documents hash equal whatever their key order."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def document_of(architecture: BaseModel) -> dict[str, Any]:
    """The JSON document that edits (JSON Patch) operate on, for any pydantic space."""
    return architecture.model_dump(mode="json")


def architecture_hash(architecture: BaseModel) -> str:
    return canonical_hash(document_of(architecture))


def effective_document_of(architecture: BaseModel) -> dict[str, Any]:
    """The document with the settings that cannot act in this architecture at their
    defaults, where the space says which (a method `effective_document()`); otherwise the
    document. Two architectures whose effective documents are equal train the same model."""
    effective = getattr(architecture, "effective_document", None)
    return effective() if callable(effective) else document_of(architecture)


Document = dict[str, Any]  # an architecture as JSON
Operation = dict[str, Any]  # one JSON Patch (RFC 6902) operation: {"op", "path", "value"}
Dataset = dict[str, Any]  # Evaluator.describe()'s answer, as the proposers see it
# A hand-written edit for the builtin proposer: operations, or None where it does not apply
Mutation = Callable[[Document, np.random.Generator, Dataset], list[Operation] | None]


@dataclass(frozen=True)
class Mutations:
    """What an evaluator may offer the builtin proposer (as `Evaluator.mutations`): named
    mutations in two families, for the gate's two mechanisms. Diversity edits make learners
    of one architecture disagree more (lower rho); accuracy edits lower each learner's E."""

    diversity: dict[str, Mutation]
    accuracy: dict[str, Mutation]
    # The same mutations bounded by the space alone, where these keep within caps that
    # bound a run's time (`search.explore.lift_caps`, for a run with a compute budget)
    uncapped: Mutations | None = None

    def __post_init__(self) -> None:
        if not self.diversity and not self.accuracy:
            raise ValueError("Mutations needs at least one mutation (diversity or accuracy)")


class DataError(ValueError):
    """A data file or data setting that cannot be used, with a message for the user: what
    an evaluator raises when it is built on data it cannot train on."""


class CandidateFailed(Exception):
    """Training could not produce usable predictions (NaN loss, runtime error, ...).

    A normal outcome of search: the agent records it as status `failed` with this reason.
    """


@dataclass(frozen=True)
class Evaluation:
    """Predictions of k learners of one architecture on the validation and test splits.

    Arrays are float32, shaped (k, n) for binary (probability of the positive class) and
    regression, (k, n, C) for multiclass (class probabilities). float32 is what the models
    compute in, so storing them loses nothing and statistics recomputed from a run
    folder's stored predictions equal the logged ones exactly.
    """

    val_predictions: np.ndarray
    test_predictions: np.ndarray
    parameters: int  # trainable parameters of one learner
    flops: int  # forward FLOPs per example of one learner
    train_seconds: float
    learner_seconds: tuple[float, ...]  # each learner's even share: they train together
    # Training FLOPs of these learners (forward and backward passes over the examples they
    # trained on), what a user pays for; None when the evaluator cannot tell
    train_flops: float | None = None

    @property
    def learners(self) -> int:
        return self.val_predictions.shape[0]


@dataclass(frozen=True)
class Staged:
    """Validation predictions of k learners after fractions of their training schedule
    (multi-fidelity screening), float32 like Evaluation's. A fraction f is the first
    ceil(f * steps) optimiser steps of the full schedule, so a stage is exactly a prefix of
    full training. `final` holds the full Evaluation when the last fraction is 1; before
    that, `paused` may hold where training stopped (the evaluator's own picklable state),
    which evaluate_staged(..., resume=paused) continues from, training only the rest."""

    fractions: tuple[float, ...]
    val_predictions: tuple[np.ndarray, ...]  # one (k, n) or (k, n, C) array per fraction
    parameters: int
    flops: int
    train_seconds: float  # this call's: a resumed stage counts only what it trained
    final: Evaluation | None = None
    paused: Any = None
    train_flops: float | None = None  # this call's, like train_seconds

    @property
    def learners(self) -> int:
        return self.val_predictions[0].shape[0]


class Evaluator(Protocol):
    """What every evaluator has. The optional parts (OPTIONAL below) add to it; the agent
    checks a plugin against both when it loads (protocol_problems), and reads an optional
    member only through `optional`, so this file is the whole contract."""

    task: Task
    y_val: np.ndarray
    y_test: np.ndarray
    notes: tuple[str, ...]  # what loading did to the user's data (rows or columns dropped, ...)

    def space(self) -> type[BaseModel]:
        """The pydantic model of an architecture document."""
        ...

    def parse(self, document: dict[str, Any]) -> BaseModel:
        """Validate an architecture document; raises pydantic.ValidationError."""
        ...

    def default_architecture(self) -> BaseModel: ...

    def evaluate(self, architecture: BaseModel, learners: int, first: int = 0) -> Evaluation:
        """Train learners first .. first+learners-1; learner j always uses seed base+j, so
        extra learners extend the same pool. Raises CandidateFailed."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts about the data that a proposer may show (name, task, fields, sizes)."""
        ...


class MutatingEvaluator(Evaluator, Protocol):
    """An evaluator that offers hand-written mutations of its space to the builtin proposer.
    Optional: one without them is searched by the generic proposer (proposers/generic.py)."""

    mutations: Mutations


class StagedEvaluator(Evaluator, Protocol):
    """An evaluator that can also stop training early, for multi-fidelity screening
    (`screening.enabled`). Optional: the tabular evaluator has it."""

    def evaluate_staged(
        self,
        architecture: BaseModel,
        learners: int,
        first: int,
        fractions: tuple[float, ...],
        resume: Any = None,
    ) -> Staged:
        """Train learners first .. first+learners-1 up to the last of `fractions` (increasing,
        in (0, 1]) of their schedule; predictions on validation at each. With `resume` (the
        `paused` of an earlier Staged of the same learners), go on from where that stopped:
        `fractions` then lie beyond it. An evaluator that cannot pause leaves `paused` None
        and is never given `resume`. Raises CandidateFailed."""
        ...

    def zero_cost(self, architecture: BaseModel) -> float:
        """A cheap score of the untrained architecture (a zero-cost proxy), for the screening
        predictor; no training."""
        ...


@dataclass(frozen=True)
class Size:
    parameters: int  # trainable parameters of one learner
    flops: int  # forward FLOPs per example of one learner


class SizedEvaluator(Evaluator, Protocol):
    """An evaluator that can tell an architecture's size and training cost before training
    it. Optional: screening's predictor uses the size as a signal, and a run with a compute
    budget keeps global proposals within it (`search.explore`)."""

    def size(self, architecture: BaseModel) -> Size:
        """Parameters and forward FLOPs per example of one learner, without training."""
        ...

    def planned_train_flops(self, architecture: BaseModel) -> float:
        """Training FLOPs of one learner's full schedule, before training it."""
        ...


class FileKeepingEvaluator(Evaluator, Protocol):
    """An evaluator that writes files per learner. Optional: told where the run keeps them
    (the run folder's commands/), as the command evaluator is."""

    def keep_files_in(self, folder: Path) -> None: ...


@dataclass(frozen=True)
class Request:
    """Learners first .. first+learners-1 of an architecture, to train fully."""

    architecture: BaseModel
    learners: int
    first: int = 0


class RoundEvaluator(Evaluator, Protocol):
    """An evaluator that trains several candidates' learners at once, faster than one after
    another (the tabular one fuses them into one program). Optional: the search's rounds
    and `verify` hand it every full training they have at once."""

    def evaluate_together(
        self, requests: list[Request]
    ) -> Iterator[tuple[int, Evaluation | CandidateFailed]]:
        """(request index, what `evaluate` gives for it), every request once, as each
        finishes; a failure is yielded as its CandidateFailed, not raised, and fails only
        its own request."""
        ...


class EffectiveEvaluator(Evaluator, Protocol):
    """An evaluator that knows which settings cannot act on its data. Optional: without it
    the space's own `effective_document()` answers, where it has one (effective_document_of)."""

    def effective_document(self, architecture: BaseModel) -> dict[str, Any]:
        """`architecture`'s document with every setting that cannot act on this data at a
        fixed value: equal answers train the same model, so an edit of the baseline that
        leaves the answer unchanged is a no-op, not a training."""
        ...


# Every optional part of the protocol; a member not declared in one of these is not one
OPTIONAL = (
    MutatingEvaluator, StagedEvaluator, SizedEvaluator, FileKeepingEvaluator, RoundEvaluator,
    EffectiveEvaluator,
)  # fmt: skip


def required_members() -> frozenset[str]:
    """What every evaluator has: the members the Evaluator protocol declares."""
    return frozenset(get_protocol_members(Evaluator))


def optional_members() -> dict[str, type]:
    """Each optional member, and the protocol that declares it."""
    required = required_members()
    return {name: part for part in OPTIONAL
            for name in get_protocol_members(part) - required}  # fmt: skip


def optional(evaluator: Evaluator, name: str) -> Any:
    """An optional member of `evaluator`, or None where it has none. `name` must be one the
    protocol declares (a typo is a bug here, not an absent member)."""
    if name not in optional_members():
        raise KeyError(f"{name!r} is not an optional member of the Evaluator protocol")
    return getattr(evaluator, name, None)


def protocol_problems(evaluator: object) -> list[str]:
    """How `evaluator` departs from the protocol: required members it lacks, and members
    (required or optional) that the protocol declares as methods but that it cannot call."""
    methods = {name for part in (Evaluator, *OPTIONAL) for name, value in vars(part).items()
               if callable(value) and not name.startswith("_")}  # fmt: skip
    missing = sorted(m for m in required_members() if not hasattr(evaluator, m))
    problems = [f"lacks {', '.join(missing)}"] if missing else []
    for name in sorted(methods):
        value = getattr(evaluator, name, None)
        if value is not None and not callable(value):
            problems.append(f"has {name} but cannot call it (a method is expected)")
    return problems


def stages_supported(evaluator: Evaluator) -> bool:
    return callable(optional(evaluator, "evaluate_staged"))
