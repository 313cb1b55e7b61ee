"""What must hold on every device the trainer runs on, CPU and CUDA alike: a learner
trained beside others equals it trained alone, two identical trainings are identical, a
paused stage resumed equals uninterrupted training, running out of memory fails the
candidate (not the run), and bf16 autocast trains learners close to float32 ones.

The CUDA cases are marked `cuda` and skipped without a GPU (`pytest -m cuda` runs only
them; bench/gpu_check.sh runs them with the GPU benchmark).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.tabular.data import DataSpec
from edas_agent.evaluators.tabular.evaluator import EvaluatorSettings, TabularEvaluator

CUDA = pytest.mark.cuda
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[CUDA, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")],
    ),
]
# Batched and single matrix products round differently in float32 (cuBLAS picks other
# kernels for other shapes), and two epochs of training amplify it; nothing else differs
TOGETHER_TOLERANCE = {"cpu": 1e-5, "cuda": 1e-3}
ARCHITECTURE = {
    "tower": {"widths": [32, 16], "dropout": 0.1},
    "cross": {"layers": 1},
    "training": {"epochs": 2, "batch_size": 128},
}


def _evaluator(table_csv: Path, device: str, **settings) -> TabularEvaluator:
    spec = DataSpec(path=str(table_csv), target="label")
    return TabularEvaluator(spec, EvaluatorSettings(device=device, **settings), seed=0)


@pytest.mark.parametrize("device", DEVICES)
def test_a_learner_trained_beside_others_equals_it_trained_alone(table_csv: Path, device: str):
    evaluator = _evaluator(table_csv, device)
    architecture = evaluator.parse(ARCHITECTURE)
    together = evaluator.evaluate(architecture, 3).val_predictions
    alone = [evaluator.evaluate(architecture, 1, first=j).val_predictions[0] for j in range(3)]
    assert np.abs(together - np.stack(alone)).max() < TOGETHER_TOLERANCE[device]


@pytest.mark.parametrize("device", DEVICES)
def test_two_identical_trainings_are_identical(table_csv: Path, device: str):
    if device == "cuda":  # deterministic kernels only (scatter-adds of embedding gradients)
        torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        evaluator = _evaluator(table_csv, device)
        architecture = evaluator.parse(ARCHITECTURE)
        a, b = evaluator.evaluate(architecture, 2), evaluator.evaluate(architecture, 2)
    finally:
        torch.use_deterministic_algorithms(False)
    assert np.array_equal(a.val_predictions, b.val_predictions)
    assert np.array_equal(a.test_predictions, b.test_predictions)


@pytest.mark.parametrize("device", DEVICES)
def test_a_paused_stage_resumed_equals_uninterrupted_training(table_csv: Path, device: str):
    evaluator = _evaluator(table_csv, device)
    architecture = evaluator.parse({**ARCHITECTURE, "training": {"epochs": 3}})
    straight = evaluator.evaluate_staged(architecture, 2, 0, (1 / 9, 1.0))
    first = evaluator.evaluate_staged(architecture, 2, 0, (1 / 9,))
    rest = evaluator.evaluate_staged(architecture, 2, 0, (1.0,), resume=first.paused)
    assert np.allclose(rest.final.val_predictions, straight.final.val_predictions, atol=1e-6)
    assert np.allclose(rest.final.test_predictions, straight.final.test_predictions, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_trains_learners_close_to_float32_ones(table_csv: Path, device: str):
    exact = _evaluator(table_csv, device)
    half = _evaluator(table_csv, device, precision="bf16")
    architecture = exact.parse(ARCHITECTURE)
    a = exact.evaluate(architecture, 2).val_predictions
    b = half.evaluate(architecture, 2).val_predictions
    assert b.dtype == a.dtype and np.isfinite(b).all()
    assert not np.array_equal(a, b)  # it did run in bfloat16
    squared = [np.mean((p - exact.y_val) ** 2) for p in (a.mean(0), b.mean(0))]
    assert abs(squared[0] - squared[1]) < 0.01  # the same error, to bf16's precision


@CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_running_out_of_gpu_memory_fails_the_candidate_and_frees_it(table_csv: Path):
    evaluator = _evaluator(table_csv, "cuda")
    huge = evaluator.parse({
        "tower": {"widths": [1024] * 6}, "embeddings": {"dim": 64},
        "training": {"batch_size": 4096},
    })  # fmt: skip
    small = evaluator.parse(ARCHITECTURE)
    _, total = torch.cuda.mem_get_info()
    # 256 MiB: the huge candidate's 64 learners (1.5 GB of parameters) cannot fit, the
    # small one's 2 can
    torch.cuda.set_per_process_memory_fraction(2**28 / total)
    try:
        with pytest.raises(CandidateFailed, match="out of GPU memory"):
            evaluator.evaluate(huge, 64)
        assert evaluator.evaluate(small, 2).val_predictions.shape[0] == 2  # the next one trains
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
