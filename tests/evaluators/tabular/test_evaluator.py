"""Real (short) training: determinism, common random numbers, feature bags, failures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.base import CandidateFailed
from evaluators.tabular import trainer
from evaluators.tabular.data import DataSpec
from evaluators.tabular.evaluator import EvaluatorSettings, TabularEvaluator
from evaluators.tabular.model import FeatureBag, TabularNet

SMALL = {"tower": {"widths": [16]}, "training": {"epochs": 2, "batch_size": 256}}


@pytest.fixture
def evaluator(table_csv: Path) -> TabularEvaluator:
    spec = DataSpec(path=str(table_csv), target="label")
    return TabularEvaluator(spec, EvaluatorSettings(device="cpu"), seed=0)


def test_same_seed_same_numbers(evaluator: TabularEvaluator):
    architecture = evaluator.parse({**SMALL, "tower": {"widths": [16], "dropout": 0.2}})
    a = evaluator.evaluate(architecture, 2)
    b = evaluator.evaluate(architecture, 2)
    assert np.array_equal(a.val_predictions, b.val_predictions)
    assert np.array_equal(a.test_predictions, b.test_predictions)
    # Two learners with different seeds must not be copies of each other.
    assert not np.array_equal(a.val_predictions[0], a.val_predictions[1])
    assert a.val_predictions.shape == (2, len(evaluator.y_val))
    assert ((a.val_predictions > 0) & (a.val_predictions < 1)).all()


def test_learner_j_does_not_depend_on_how_many_learners_are_trained(evaluator: TabularEvaluator):
    architecture = evaluator.parse(SMALL)
    two = evaluator.evaluate(architecture, 2).val_predictions
    three = evaluator.evaluate(architecture, 3).val_predictions
    assert np.array_equal(two, three[:2])


def test_training_learns_something(evaluator: TabularEvaluator):
    evaluation = evaluator.evaluate(
        evaluator.parse({"training": {"epochs": 10, "batch_size": 64}}), 2
    )
    base_rate = evaluator.y_val.mean()
    trivial = np.mean((base_rate - evaluator.y_val) ** 2)
    learned = np.mean((evaluation.val_predictions - evaluator.y_val) ** 2)
    assert learned < 0.9 * trivial


def test_feature_bag_is_drawn_from_the_seed():
    a = FeatureBag.draw(8, 6, 0.5, seed=3)
    assert a == FeatureBag.draw(8, 6, 0.5, seed=3)
    assert len(a.categorical) + len(a.numeric) == 7
    assert all(0 <= i < 8 for i in a.categorical) and all(0 <= i < 6 for i in a.numeric)
    bags = {FeatureBag.draw(8, 6, 0.5, seed=s) for s in range(10)}
    assert len(bags) > 1
    assert FeatureBag.draw(8, 6, 0.2, seed=1) != FeatureBag.draw(8, 6, 1.0, seed=1)


def test_every_block_builds_and_counts_parameters(evaluator: TabularEvaluator):
    architecture = evaluator.parse(
        {
            "embeddings": {"dim": 4, "per_field": {"colour": 6}},
            "numeric": {"transform": "log_standard"},
            "cross": {"layers": 2, "rank": 3},
            "tower": {"widths": [8, 8], "activation": "gelu", "norm": "batch", "dropout": 0.1},
            "bagging": {"fraction": 0.6},
            "training": {"optimizer": "sgd", "epochs": 1},
        }
    )
    evaluation = evaluator.evaluate(architecture, 2)
    assert evaluation.parameters > 0
    assert np.isfinite(evaluation.val_predictions).all()


def test_nan_loss_marks_the_candidate_failed(evaluator: TabularEvaluator, monkeypatch):
    def poisoned_loss(data):
        return lambda output, target: output.sum() * float("nan")

    monkeypatch.setattr(trainer, "_loss", poisoned_loss)
    with pytest.raises(CandidateFailed, match=r"learner 0: training loss became nan in epoch 1"):
        evaluator.evaluate(evaluator.parse(SMALL), 2)


def test_runtime_errors_become_failures(evaluator: TabularEvaluator, monkeypatch):
    def broken_forward(self, categorical, numeric):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(TabularNet, "forward", broken_forward)
    with pytest.raises(CandidateFailed, match="RuntimeError: mat1"):
        evaluator.evaluate(evaluator.parse(SMALL), 2)


def test_adult_default_architecture_trains(tmp_path: Path):
    torch.set_num_threads(2)
    evaluator = TabularEvaluator(DataSpec(), EvaluatorSettings(device="cpu"), seed=0)
    architecture = evaluator.parse({"training": {"epochs": 1}})
    evaluation = evaluator.evaluate(architecture, 2)
    brier = np.mean((evaluation.test_predictions - evaluator.y_test) ** 2)
    assert brier < 0.13  # the base rate alone gives about 0.18


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_asking_for_cuda_without_cuda_is_a_clear_error(table_csv: Path):
    spec = DataSpec(path=str(table_csv), target="label")
    message = re.escape("evaluator.device is 'cuda' but torch sees no CUDA device")
    with pytest.raises(ValueError, match=message):
        TabularEvaluator(spec, EvaluatorSettings(device="cuda"), seed=0)
