"""FunctionEvaluator: a user's train(architecture, seed); every way it can go wrong is a
CandidateFailed with the reason, never an exception of another kind."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, Field

from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.function import FunctionEvaluator, infer_task

Y_VAL = np.array([0, 1, 1, 0, 1])
Y_TEST = np.array([1, 0, 0])


class Knob(BaseModel):
    level: float = Field(0.5, ge=0.0, le=1.0)


def evaluator(train) -> FunctionEvaluator:
    return FunctionEvaluator(Knob, train, Y_VAL, Y_TEST, seed=3)


def test_learner_j_gets_seed_base_plus_j_and_predictions_are_stacked():
    seeds = []

    def train(knob: Knob, seed: int):
        seeds.append(seed)
        return np.full(5, knob.level), np.full(3, knob.level)

    result = evaluator(train).evaluate(Knob(level=0.25), learners=2, first=4)
    assert seeds == [3004, 3005]
    assert result.val_predictions.shape == (2, 5) and result.val_predictions.dtype == np.float32
    assert result.test_predictions[1, 0] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ((np.zeros(4), np.zeros(3)), r"val predictions have shape \(4,\), expected \(5,\)"),
        ((np.zeros(5), np.full(3, np.nan)), "test predictions hold 3 NaN"),
        ((np.full(5, 1.5), np.zeros(3)), r"leave \[0, 1\]"),
        ((np.zeros((5, 2)), np.zeros(3)), "expected"),
        (np.zeros(5), "must return \\(val_predictions, test_predictions\\)"),
        ((["a"] * 5, np.zeros(3)), "not numbers"),
    ],
)
def test_bad_predictions_fail_the_candidate_with_the_reason(returned, message):
    with pytest.raises(CandidateFailed, match=message):
        evaluator(lambda knob, seed: returned).evaluate(Knob(), 2)


def test_an_exception_in_train_fails_the_candidate_naming_it():
    def train(knob, seed):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(CandidateFailed, match="learner 0: train raised RuntimeError: CUDA out"):
        evaluator(train).evaluate(Knob(), 2)


def test_tasks_are_inferred_from_the_targets():
    assert infer_task(np.array([0, 1, 1])) == "binary"
    assert infer_task(np.array([0, 2, 1])) == "multiclass"
    assert infer_task(np.array([0.5, 1.0])) == "regression"
    multiclass = FunctionEvaluator(Knob, lambda k, s: None, np.array([0, 2]), np.array([1]))
    assert multiclass.classes == 3 and multiclass.describe()["classes"] == 3


def test_mutations_it_is_given_are_offered_to_the_builtin_proposer():
    from edas_agent.evaluators.base import Mutations
    from edas_agent.training.door import offered_mutations

    def nudge(doc, rng, dataset):
        return [{"op": "replace", "path": "/level", "value": 0.1}]

    own = Mutations(diversity={}, accuracy={"nudge": nudge})
    given = FunctionEvaluator(Knob, lambda k, s: None, Y_VAL, Y_TEST, mutations=own)
    assert offered_mutations(given) is own
    assert offered_mutations(evaluator(lambda k, s: None)) is None  # the generic proposer's
