"""The tabular evaluator: k learners of one architecture on one encoded dataset."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from evaluators.base import CandidateFailed, Evaluation
from evaluators.tabular.data import DataSpec, EncodedDataset, load
from evaluators.tabular.model import parameter_count
from evaluators.tabular.space import Architecture
from evaluators.tabular.trainer import predict, train_learner


class EvaluatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    learners: int = Field(2, ge=2, le=64, description="Learners trained per candidate (k).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where learners train.")
    threads: int | None = Field(
        None, ge=1, le=512, description="CPU threads for torch; all cores when unset."
    )


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("evaluator.device is 'cuda' but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


class TabularEvaluator:
    """Loads and encodes the data once; trains learners with seeds seed_base + j."""

    def __init__(self, data: DataSpec, settings: EvaluatorSettings, seed: int):
        self.settings = settings
        self.seed_base = seed * 1000
        self.device = resolve_device(settings.device)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.data: EncodedDataset = load(data, seed)
        self.task = self.data.task
        self.y_val = self.data.labels(self.data.val)
        self.y_test = self.data.labels(self.data.test)

    def space(self) -> type[Architecture]:
        return Architecture

    def parse(self, document: dict[str, Any]) -> Architecture:
        context = {"categorical_fields": self.data.categorical_fields}
        return Architecture.model_validate(document, context=context)

    def default_architecture(self) -> Architecture:
        return Architecture()

    def evaluate(self, architecture: BaseModel, learners: int, first: int = 0) -> Evaluation:
        """Train learners first .. first+learners-1 (seeds seed_base + j)."""
        assert isinstance(architecture, Architecture)
        val, test, seconds, parameters = [], [], [], 0
        for j in range(first, first + learners):
            try:
                model, elapsed = train_learner(
                    architecture, self.data, self.seed_base + j, self.device
                )
                val.append(predict(model, architecture, self.data, self.data.val))
                test.append(predict(model, architecture, self.data, self.data.test))
            except CandidateFailed as exc:
                raise CandidateFailed(f"learner {j}: {exc}") from exc
            except (RuntimeError, ValueError) as exc:  # shape errors, CUDA OOM, ...
                raise CandidateFailed(f"learner {j}: {type(exc).__name__}: {exc}") from exc
            seconds.append(elapsed)
            parameters = parameters or parameter_count(model)
        return Evaluation(
            val_predictions=np.stack(val).astype(np.float32),
            test_predictions=np.stack(test).astype(np.float32),
            parameters=parameters,
            train_seconds=float(sum(seconds)),
            learner_seconds=tuple(seconds),
        )

    def describe(self) -> dict[str, Any]:
        data = self.data
        return {
            "dataset": data.name,
            "task": data.task,
            "rows": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "categorical_fields": dict(
                zip(data.categorical_fields, data.cardinalities, strict=True)
            ),
            "numeric_fields": data.numeric_fields,
            "classes": data.classes,
        }
