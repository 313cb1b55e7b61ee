"""Bring your own model: an evaluator around a user's `train(architecture, seed)` function.

The common case, in the spirit of an Optuna objective: give a pydantic space (with bounds),
its default architecture, a function that trains one learner and returns its predictions on
the validation and test rows, and the targets. Learner j is trained with seed base + j, so
extra learners extend the same pool, as with the built-in evaluator.

    evaluator = FunctionEvaluator(MySpace, train, y_val, y_test, task="multiclass")

What `train` returns is checked before the agent sees it: shapes (n,) for binary (the
positive class's probability) and regression, (n, C) class probabilities for multiclass,
finite values, probabilities in [0, 1]. An exception in `train`, or predictions that fail
a check, is a CandidateFailed with the reason: a `failed` record, and the run goes on.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from edas_agent.evaluators.base import CandidateFailed, Evaluation, Mutations, Task

Predictions = tuple[Any, Any]  # (val, test): array-likes
Train = Callable[[Any, int], Predictions]
Size = Callable[[Any], tuple[int, int]]  # (parameters, forward FLOPs per example)


def infer_task(y: np.ndarray) -> Task:
    """binary for two integer classes 0/1, multiclass for more integer classes, else regression."""
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return "binary" if set(np.unique(y).tolist()) <= {0, 1} else "multiclass"
    return "regression"


def checked_predictions(
    val: Any, test: Any, y_val: np.ndarray, y_test: np.ndarray, task: Task, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """float32 arrays of the right shapes and ranges, or CandidateFailed saying what is wrong."""
    return (
        _checked(val, len(y_val), "val", task, classes),
        _checked(test, len(y_test), "test", task, classes),
    )


def _checked(values: Any, rows: int, split: str, task: Task, classes: int) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise CandidateFailed(f"{split} predictions are not numbers: {exc}") from None
    shape = (rows, classes) if task == "multiclass" else (rows,)
    if array.shape != shape:
        raise CandidateFailed(
            f"{split} predictions have shape {array.shape}, expected {shape} ({_expected(task)})"
        )
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise CandidateFailed(f"{split} predictions hold {bad} NaN or infinite values")
    if task != "regression" and (array.min() < 0 or array.max() > 1):
        raise CandidateFailed(
            f"{split} predictions leave [0, 1] ({array.min():.4g} .. {array.max():.4g}): "
            "probabilities are expected"
        )
    return array


def _expected(task: Task) -> str:
    return {
        "binary": "the positive class's probability per row",
        "multiclass": "class probabilities per row",
        "regression": "one value per row",
    }[task]


class FunctionEvaluator:
    """The Evaluator protocol around `train(architecture, seed) -> (val, test)`."""

    notes: tuple[str, ...] = ()

    def __init__(
        self,
        space: type[BaseModel],
        train: Train,
        y_val: Any,
        y_test: Any,
        task: Task | None = None,
        default: BaseModel | None = None,
        size: Size | None = None,
        name: str = "custom",
        seed: int = 0,
        mutations: Mutations | None = None,
    ):
        self._space = space
        self.train = train
        self.y_val, self.y_test = np.asarray(y_val), np.asarray(y_test)
        self.task: Task = task or infer_task(self.y_val)
        self.classes = int(max(self.y_val.max(), self.y_test.max())) + 1
        self.default = default if default is not None else space()
        self.size = size
        self.name = name
        self.seed_base = seed * 1000
        # Hand-written mutations for the builtin proposer; None: it mutates the space
        # generically
        self.mutations = mutations

    def space(self) -> type[BaseModel]:
        return self._space

    def parse(self, document: dict[str, Any]) -> BaseModel:
        return self._space.model_validate(document)

    def default_architecture(self) -> BaseModel:
        return self.default

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "dataset": self.name,
            "task": self.task,
            "rows": {"val": len(self.y_val), "test": len(self.y_test)},
        }
        if self.task == "multiclass":
            facts["classes"] = self.classes
        return facts

    def evaluate(self, architecture: BaseModel, learners: int, first: int = 0) -> Evaluation:
        started = time.perf_counter()
        vals, tests, seconds = [], [], []
        for j in range(first, first + learners):
            began = time.perf_counter()
            val, test = self._train_one(architecture, self.seed_base + j, j)
            vals.append(val)
            tests.append(test)
            seconds.append(time.perf_counter() - began)
        parameters, flops = self.size(architecture) if self.size else (0, 0)
        return Evaluation(
            np.stack(vals), np.stack(tests), int(parameters), int(flops),
            time.perf_counter() - started, tuple(seconds),
        )  # fmt: skip

    def _train_one(self, architecture: BaseModel, seed: int, index: int):
        try:
            result = self.train(architecture, seed)
        except CandidateFailed:
            raise
        except Exception as exc:  # the user's code: any error is this candidate's outcome
            where = traceback.extract_tb(exc.__traceback__)[-1]
            raise CandidateFailed(
                f"learner {index}: train raised {type(exc).__name__}: {exc} "
                f"({where.filename}:{where.lineno})"
            ) from exc
        if not (isinstance(result, tuple | list) and len(result) == 2):
            raise CandidateFailed(
                f"learner {index}: train must return (val_predictions, test_predictions), "
                f"got {type(result).__name__}"
            )
        try:
            return checked_predictions(*result, self.y_val, self.y_test, self.task, self.classes)
        except CandidateFailed as exc:
            raise CandidateFailed(f"learner {index}: {exc}") from None
