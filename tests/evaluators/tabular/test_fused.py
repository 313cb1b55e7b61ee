"""Candidates trained as one program (fused.py): each learner equals it trained alone, on
CPU and (marked cuda) on a GPU; what may differ between fused candidates and what may
not; memory splits a group and says so; a failing candidate fails alone; the optimiser
kernel is torch's update, bitwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edas_agent.evaluators.base import CandidateFailed, Request
from edas_agent.evaluators.tabular import fused, trainer
from edas_agent.evaluators.tabular.data import DataSpec
from edas_agent.evaluators.tabular.evaluator import EvaluatorSettings, TabularEvaluator
from edas_agent.evaluators.tabular.fused import fusion_key, groups
from edas_agent.evaluators.tabular.optimizer import AdamKernel
from tests.evaluators.tabular.test_devices import DEVICES, TOGETHER_TOLERANCE

BASE = {"tower": {"widths": [32, 16]}, "training": {"epochs": 2, "batch_size": 128}}
# One edit each from BASE: what a padded group lets differ (widths, dropout, cross layers)
# and what any group does (learning rate, weight decay, epochs, penalty, bagging, transform)
ROUND = [
    {},
    {"tower": {"widths": [64, 16]}},
    {"tower": {"widths": [32, 8], "dropout": 0.2}},
    {"tower": {"widths": [32, 16], "dropout": 0.1}},
    {"cross": {"layers": 2}},
    {"training": {"epochs": 3, "batch_size": 128, "lr": 0.01}},
    {"training": {"epochs": 1, "batch_size": 128, "weight_decay": 0.01}},
    {"embeddings": {"l2": 1e-3}, "bagging": {"fraction": 0.6}},
    {"numeric": {"transform": "log_standard"},
     "training": {"optimizer": "adam", "epochs": 2, "batch_size": 128}},
]  # fmt: skip


def _evaluator(table_csv: Path, device: str = "cpu", **settings) -> TabularEvaluator:
    spec = DataSpec(path=str(table_csv), target="label")
    return TabularEvaluator(spec, EvaluatorSettings(device=device, **settings), seed=0)


def _round(evaluator: TabularEvaluator, edits: list[dict], base: dict = BASE) -> list:
    return [evaluator.parse({**base, **edit}) for edit in edits]


def _together(evaluator: TabularEvaluator, requests: list[Request]) -> list:
    """evaluate_together's results in request order (it yields them as groups finish)."""
    results = dict(evaluator.evaluate_together(requests))
    assert sorted(results) == list(range(len(requests)))
    return [results[i] for i in range(len(requests))]


def _alone(evaluator: TabularEvaluator, architectures: list, learners: int = 2) -> list:
    return [evaluator.evaluate(a, learners) for a in architectures]


def _assert_equal_to_alone(together: list, alone: list, tolerance: float) -> None:
    for fused_one, alone_one in zip(together, alone, strict=True):
        assert not isinstance(fused_one, CandidateFailed), fused_one
        assert np.abs(fused_one.val_predictions - alone_one.val_predictions).max() < tolerance
        assert np.abs(fused_one.test_predictions - alone_one.test_predictions).max() < tolerance
        assert fused_one.train_flops == alone_one.train_flops


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fuse", ["padded", "same_shapes"])
def test_each_fused_learner_equals_it_trained_alone(table_csv: Path, device: str, fuse: str):
    evaluator = _evaluator(table_csv, device, fuse=fuse)
    architectures = _round(evaluator, ROUND)
    keys = {fusion_key(a, pad=fuse == "padded") for a in architectures}
    assert len(keys) < len(architectures)  # something was fused
    together = _together(evaluator, [Request(a, 2) for a in architectures])
    _assert_equal_to_alone(together, _alone(evaluator, architectures), TOGETHER_TOLERANCE[device])


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_learners_that_stop_early_keep_their_own_statistics(table_csv, device):
    evaluator = _evaluator(table_csv, device, fuse="padded")
    base = {**BASE, "tower": {"widths": [32, 16], "norm": "batch"}}
    edits = [{}, {"training": {"epochs": 1, "batch_size": 128}},
             {"tower": {"widths": [16, 16], "norm": "batch", "dropout": 0.1}}]  # fmt: skip
    architectures = _round(evaluator, edits, base)
    together = _together(evaluator, [Request(a, 2) for a in architectures])
    # Batch statistics of (k, B, H) round as test_evaluator's batch-norm case does
    _assert_equal_to_alone(together, _alone(evaluator, architectures), 1e-3)


def test_what_fused_candidates_must_share(table_csv: Path):
    evaluator = _evaluator(table_csv)

    def key(document: dict, pad: bool = True) -> str | None:
        return fusion_key(evaluator.parse({**BASE, **document}), pad)

    same = key({})
    assert key({"tower": {"widths": [64, 8], "dropout": 0.3}}) == same
    assert key({"tower": {"widths": [64, 8]}}, pad=False) != key({}, pad=False)
    assert key({"training": {"lr": 0.02, "epochs": 5, "batch_size": 128}}, pad=False) == key(
        {}, pad=False
    )
    assert key({"tower": {"widths": [32, 16, 8]}}) != same  # another depth
    assert key({"training": {"batch_size": 256}}) != same
    assert key({"tower": {"widths": [32, 16], "activation": "tanh"}}) != same
    assert key({"embeddings": {"dim": 4}}) != same
    assert key({"numeric": {"transform": "bucketize"}}) != same
    # Padding would change these: a layer norm's mean, a skip connection's presence
    layer = {"widths": [32, 16], "norm": "layer"}
    assert key({"tower": layer}) != key({"tower": {**layer, "widths": [64, 16]}})
    assert key({"training": {"optimizer": "sgd"}}) is None  # trains alone


def test_groups_split_at_the_memory_limit_and_at_the_most_learners():
    keys, two = ["a", "b", "a", None, "a", "b"], [2] * 6
    grouped, splits = groups(keys, sizes=[4, 1, 4, 9, 4, 1], learners=two, limit=8, most=16)
    assert grouped == [[0, 2], [1, 5], [3], [4]] and splits == 1
    assert groups(keys, [1] * 6, two, limit=100, most=16) == ([[0, 2, 4], [1, 5], [3]], 0)
    assert groups(keys, [1] * 6, two, limit=100, most=4) == ([[0, 2], [1, 5], [3], [4]], 0)


def test_a_split_group_says_so_and_changes_no_number(table_csv: Path, capsys):
    architectures = _round(_evaluator(table_csv), ROUND[:4])
    requests = [Request(a, 2) for a in architectures]
    evaluator = _evaluator(table_csv, fuse="padded")
    whole = _together(evaluator, requests)
    size = evaluator.size(architectures[0]).parameters
    two = 2 * fused.learner_bytes(architectures[0], size, evaluator.data) / 2**20
    split = _together(_evaluator(table_csv, fuse="padded", fuse_memory_mb=2.5 * two), requests)
    assert "more group(s) to stay under evaluator.fuse_memory_mb" in capsys.readouterr().err
    _assert_equal_to_alone(split, whole, 1e-5)


def test_a_diverging_candidate_fails_alone(table_csv: Path, monkeypatch):
    evaluator = _evaluator(table_csv, fuse="padded")
    architectures = _round(evaluator, ROUND[:3])
    alone = _alone(evaluator, architectures)

    def poisoned(logits, y, data):  # learner 1 of the second candidate diverges
        losses = trainer._loss(logits, y, data)
        poison = torch.ones_like(losses)
        poison[3] = float("nan")
        return losses * poison

    monkeypatch.setattr(fused, "_loss", poisoned)
    first, second, third = architectures
    requests = [Request(first, 2), Request(second, 2, first=2), Request(third, 2)]
    together = _together(evaluator, requests)
    assert isinstance(together[1], CandidateFailed)  # numbered within its pool, as alone
    assert str(together[1]) == "learner 3: training loss became nan in epoch 1"
    _assert_equal_to_alone([together[0], together[2]], [alone[0], alone[2]], 1e-5)


def test_a_round_shares_its_seconds_and_fails_only_what_breaks_the_caps(table_csv: Path):
    from edas_agent.evaluators.tabular.evaluator import SpaceSettings

    spec = DataSpec(path=str(table_csv), target="label")
    evaluator = TabularEvaluator(spec, EvaluatorSettings(device="cpu", fuse="padded"), 0,
                                 SpaceSettings(max_params=3000))  # fmt: skip
    architectures = _round(
        evaluator, [{}, {"tower": {"widths": [512, 16]}}, {"cross": {"layers": 1}}]
    )
    together = _together(evaluator, [Request(a, 2) for a in architectures])
    assert isinstance(together[1], CandidateFailed) and "space.max_params" in str(together[1])
    first, third = together[0], together[2]
    # Shared in proportion to training FLOPs
    ratio = first.train_seconds / third.train_seconds
    assert ratio == pytest.approx(first.train_flops / third.train_flops)


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_the_adam_kernel_is_torchs_update_bitwise(kind: str):
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 5, generator=generator), torch.randn(3, 1, 7, generator=generator)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    kernel = AdamKernel(ours, kind, lr=0.01, weight_decay=0.05)
    reference = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](
        theirs, lr=0.01, weight_decay=0.05, fused=True
    )
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=generator) for p in start]
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        kernel.step()
        reference.step()
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs, strict=True))


def test_auto_trains_one_at_a_time_on_a_cpu(table_csv: Path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("fused on a CPU")

    monkeypatch.setattr("edas_agent.evaluators.tabular.evaluator.train_fused", refuse)
    evaluator = _evaluator(table_csv)  # evaluator.fuse auto
    architectures = _round(evaluator, ROUND[:3])
    together = _together(evaluator, [Request(a, 2) for a in architectures])
    _assert_equal_to_alone(together, _alone(evaluator, architectures), 1e-12)


def test_the_fm_term_keeps_its_place_after_a_padded_tower(table_csv: Path):
    evaluator = _evaluator(table_csv, fuse="padded")
    base = {**BASE, "fm": {"enabled": True}}
    edits = [{}, {"tower": {"widths": [64, 32]}}, {"tower": {"widths": [16, 8], "dropout": 0.1}}]
    architectures = _round(evaluator, edits, base)
    assert len({fusion_key(a, pad=True) for a in architectures}) == 1
    together = _together(evaluator, [Request(a, 2) for a in architectures])
    _assert_equal_to_alone(together, _alone(evaluator, architectures), 1e-5)


def test_a_bare_off_in_yaml_means_off():
    import yaml

    settings = EvaluatorSettings(**yaml.safe_load("fuse: off"))  # YAML 1.1 reads False
    assert settings.fuse == "off" and EvaluatorSettings(fuse="padded").fuse == "padded"
