"""Real (short) training: determinism, common random numbers, feature bags, failures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.tabular import trainer
from edas_agent.evaluators.tabular.data import DataSpec
from edas_agent.evaluators.tabular.evaluator import EvaluatorSettings, TabularEvaluator
from edas_agent.evaluators.tabular.layout import FeatureBag
from edas_agent.evaluators.tabular.model import BatchedNet
from tests.evaluators.tabular.test_space import INERT_PAIRS

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


@pytest.mark.parametrize("pair", range(len(INERT_PAIRS)))
def test_settings_the_hash_ignores_do_not_change_the_trained_model(evaluator, pair: int):
    """What lets the run treat an edit of them as a no-op (Architecture.effective_document)."""
    training = {"training": {"epochs": 1, "batch_size": 256}}
    one, other = (evaluator.parse({**training, **doc}) for doc in INERT_PAIRS[pair])
    a, b = evaluator.evaluate(one, 2), evaluator.evaluate(other, 2)
    assert np.array_equal(a.val_predictions, b.val_predictions)
    assert np.array_equal(a.test_predictions, b.test_predictions)
    assert a.train_flops == b.train_flops


# Settings the toy table (about 700 training rows, an input 19 wide) makes inert
DATA_INERT_PAIRS = [
    ({"training": {"batch_size": 1024}}, {"training": {"batch_size": 4096}}),
    ({"tower": {"widths": [16, 8]}}, {"tower": {"widths": [16, 8], "residual": True}}),
    ({"cross": {"layers": 1}}, {"cross": {"layers": 1, "rank": 64}}),
]


@pytest.mark.parametrize("pair", range(len(DATA_INERT_PAIRS)))
def test_settings_this_table_makes_inert_do_not_change_the_trained_model(evaluator, pair):
    one, other = (
        evaluator.parse({"training": {"epochs": 1, "batch_size": 256}, **doc})
        for doc in DATA_INERT_PAIRS[pair]
    )
    assert one.effective_document() != other.effective_document()  # the space cannot tell
    assert evaluator.effective_document(one) == evaluator.effective_document(other)
    a, b = evaluator.evaluate(one, 2), evaluator.evaluate(other, 2)
    assert np.array_equal(a.val_predictions, b.val_predictions)
    assert np.array_equal(a.test_predictions, b.test_predictions)


@pytest.mark.parametrize(
    "acting",
    [
        {"training": {"batch_size": 256}},
        {"tower": {"widths": [16, 16], "residual": True}},
        {"cross": {"layers": 1, "rank": 4}},
    ],
)
def test_the_same_settings_count_where_this_table_lets_them_act(evaluator, acting):
    base = {key: {k: v for k, v in block.items() if k in ("widths", "layers")}
            for key, block in acting.items() if key != "training"}  # fmt: skip
    one, other = evaluator.parse(base), evaluator.parse(acting)
    assert evaluator.effective_document(one) != evaluator.effective_document(other)


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


BLOCKS = {
    "fm": {"fm": {"enabled": True}},
    "attention": {"attention": {"layers": 2, "heads": 2, "dim": 4}},
    "bucketized numerics": {"numeric": {"transform": "bucketize", "buckets": 8}},
    "hashing": {"embeddings": {"hash_buckets": 16}},
    "full-rank cross": {"cross": {"layers": 1}},
    "low-rank cross": {"cross": {"layers": 2, "rank": 2}},
    "residual tower": {"tower": {"widths": [16, 16, 16], "residual": True}},
    "layer norm": {"tower": {"norm": "layer"}},
    "batch norm + dropout": {"tower": {"norm": "batch", "dropout": 0.3}},
    "adagrad + embedding l2": {"training": {"optimizer": "adagrad"}, "embeddings": {"l2": 1e-4}},
    "everything": {
        "fm": {"enabled": True},
        "attention": {"layers": 1},
        "cross": {"layers": 1, "rank": 4},
        "numeric": {"transform": "bucketize"},
        "tower": {"widths": [16, 16], "residual": True, "norm": "layer", "dropout": 0.1},
        "bagging": {"fraction": 0.5},
    },
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_every_block_trains_and_reports_its_size(evaluator: TabularEvaluator, name: str):
    document = {**BLOCKS[name], "training": {**BLOCKS[name].get("training", {}), "epochs": 1}}
    architecture = evaluator.parse(document)
    evaluation = evaluator.evaluate(architecture, 2)
    size = evaluator.size(architecture)
    assert evaluation.parameters == size.parameters > 0 and evaluation.flops == size.flops > 0
    assert np.isfinite(evaluation.val_predictions).all()
    assert evaluation.val_predictions.shape == (2, len(evaluator.y_val))


def test_bigger_blocks_cost_more(evaluator: TabularEvaluator):
    small = evaluator.size(evaluator.parse({"tower": {"widths": [8]}}))
    big = evaluator.size(evaluator.parse({"tower": {"widths": [256, 256]}, "cross": {"layers": 2}}))
    assert big.parameters > small.parameters and big.flops > small.flops
    # Hand count for one hidden layer: 2 * input * 8 + 2 * 8 * 1 (head).
    layout_width = 2 * 8 + 3  # two 8-dim categorical embeddings and three numerics
    assert small.flops == 2 * layout_width * 8 + 2 * 8


# Tolerances on probabilities. Batched matrix products and reductions round differently
# from single ones in float32 and training amplifies it; batch-norm statistics over a
# (k, B, H) tensor did so most (2.5e-4 measured after two epochs), everything else stayed
# below 1e-6. Nothing but rounding differs: the same seeds drive the same operations.
EQUIVALENCE_TOLERANCE = {"residual tower": 1e-5, "everything": 1e-5, "batch norm + dropout": 1e-3}


@pytest.mark.parametrize("name", list(EQUIVALENCE_TOLERANCE))
def test_learners_trained_together_equal_learners_trained_alone(evaluator, name: str):
    architecture = evaluator.parse({**BLOCKS[name], "training": {"epochs": 2, "batch_size": 128}})
    together = evaluator.evaluate(architecture, 2).val_predictions
    alone = [evaluator.evaluate(architecture, 1, first=j).val_predictions[0] for j in (0, 1)]
    tolerance = EQUIVALENCE_TOLERANCE[name]
    assert np.abs(together[0] - alone[0]).max() < tolerance
    assert np.abs(together[1] - alone[1]).max() < tolerance


def test_the_caps_fail_a_candidate_before_training(table_csv: Path):
    from edas_agent.evaluators.tabular.evaluator import SpaceSettings

    spec = DataSpec(path=str(table_csv), target="label")
    capped = TabularEvaluator(
        spec, EvaluatorSettings(device="cpu"), 0, SpaceSettings(max_params=500)
    )
    with pytest.raises(CandidateFailed, match=r"exceed space\.max_params"):
        capped.evaluate(capped.parse({"tower": {"widths": [64, 64]}}), 2)
    capped = TabularEvaluator(
        spec, EvaluatorSettings(device="cpu"), 0, SpaceSettings(max_flops=100)
    )
    with pytest.raises(CandidateFailed, match=r"exceed space\.max_flops"):
        capped.evaluate(capped.parse({}), 2)


def test_nan_loss_marks_the_candidate_failed(evaluator: TabularEvaluator, monkeypatch):
    def poisoned_loss(logits, y, data):
        losses = logits.mean(dim=(1, 2))
        return losses * torch.tensor([1.0, float("nan")])  # learner 1 diverges

    monkeypatch.setattr(trainer, "_loss", poisoned_loss)
    with pytest.raises(CandidateFailed, match=r"learner 1: training loss became nan in epoch 1"):
        evaluator.evaluate(evaluator.parse(SMALL), 2)
    with pytest.raises(CandidateFailed, match=r"learner 3: training loss became nan"):
        evaluator.evaluate(evaluator.parse(SMALL), 2, first=2)  # numbered within the pool


def test_runtime_errors_become_failures(evaluator: TabularEvaluator, monkeypatch):
    def broken_forward(self, *args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(BatchedNet, "forward", broken_forward)
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


def test_a_stage_is_exactly_a_prefix_of_full_training(fast_config):
    evaluator = TabularEvaluator(
        fast_config.evaluator.data, fast_config.evaluator, fast_config.seed
    )
    architecture = evaluator.default_architecture()
    full = evaluator.evaluate(architecture, 2, first=1)
    staged = evaluator.evaluate_staged(architecture, 2, 1, (1 / 9, 1 / 3, 1.0))
    assert np.array_equal(staged.final.val_predictions, full.val_predictions)
    assert np.array_equal(staged.final.test_predictions, full.test_predictions)
    early = evaluator.evaluate_staged(architecture, 2, 1, (1 / 9,))
    # it trained a ninth of the schedule (FLOPs, not seconds: a loaded machine reorders those)
    assert early.final is None and early.train_flops < staged.train_flops / 3
    assert np.array_equal(early.val_predictions[0], staged.val_predictions[0])
    assert not np.array_equal(staged.val_predictions[0], full.val_predictions)
    proxy = evaluator.zero_cost(architecture)
    assert np.isfinite(proxy) and proxy == evaluator.zero_cost(architecture)


@pytest.mark.parametrize(
    "document",
    [
        {},  # the default: adamw, no dropout
        {"tower": {"widths": [16, 8], "dropout": 0.2, "norm": "batch"}, "training": {"lr": 0.01}},
        {"training": {"optimizer": "sgd", "epochs": 3}},
    ],
)
def test_a_paused_stage_continues_exactly_as_uninterrupted_training(fast_config, document):
    evaluator = TabularEvaluator(
        fast_config.evaluator.data, fast_config.evaluator, fast_config.seed
    )
    architecture = evaluator.parse(document)
    straight = evaluator.evaluate_staged(architecture, 2, 1, (1 / 9, 1 / 3, 1.0))
    first = evaluator.evaluate_staged(architecture, 2, 1, (1 / 9,))
    # 1/3 of three epochs ends on an epoch's last batch: the pause is between epochs
    second = evaluator.evaluate_staged(architecture, 2, 1, (1 / 3,), resume=first.paused)
    last = evaluator.evaluate_staged(architecture, 2, 1, (1.0,), resume=second.paused)
    assert first.paused is not None and second.paused is not None and last.paused is None
    assert np.array_equal(second.val_predictions[0], straight.val_predictions[1])
    assert np.array_equal(last.final.val_predictions, straight.final.val_predictions)
    assert np.array_equal(last.final.test_predictions, straight.final.test_predictions)
    # The paused state was not consumed: continuing from it again gives the same learners
    again = evaluator.evaluate_staged(architecture, 2, 1, (1.0,), resume=second.paused)
    assert np.array_equal(again.final.val_predictions, straight.final.val_predictions)


def test_resuming_other_learners_or_an_earlier_stage_is_refused(fast_config):
    evaluator = TabularEvaluator(
        fast_config.evaluator.data, fast_config.evaluator, fast_config.seed
    )
    architecture = evaluator.default_architecture()
    paused = evaluator.evaluate_staged(architecture, 2, 0, (1 / 3,)).paused
    with pytest.raises(CandidateFailed, match="cannot resume"):
        evaluator.evaluate_staged(architecture, 2, 1, (1.0,), resume=paused)
    with pytest.raises(CandidateFailed, match="cannot resume"):
        evaluator.evaluate_staged(architecture, 2, 0, (1 / 9,), resume=paused)
