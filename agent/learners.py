"""Every learner trained in a run, kept by architecture: the pool the gate, sequential
testing, confirmation and `verify` draw on.

Learner j of an architecture always has seed base+j, so a pool only ever grows at its end
and any prefix is exactly what a fresh evaluation of that many learners would give. Pools
live in memory and in <run>/learners/<arch_hash>.npz, rewritten atomically after every
learner, so an interrupted `verify` resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from evaluators.base import Evaluator


class Cost(BaseModel):
    learners_trained: int = 0
    train_seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            learners_trained=self.learners_trained + other.learners_trained,
            train_seconds=self.train_seconds + other.train_seconds,
        )


@dataclass(frozen=True)
class Pool:
    """Predictions of learners 0..k-1 of one architecture, float32, (k, n) or (k, n, C)."""

    val: np.ndarray
    test: np.ndarray
    parameters: int
    flops: int = 0

    def __len__(self) -> int:
        return self.val.shape[0]

    def head(self, k: int) -> Pool:
        return Pool(self.val[:k], self.test[:k], self.parameters, self.flops)


class LearnerStore:
    def __init__(self, evaluator: Evaluator, folder: Path | None):
        self.evaluator = evaluator
        self.folder = folder
        self.pools: dict[str, Pool] = {}
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def get(self, arch_hash: str) -> Pool | None:
        if arch_hash not in self.pools and self.folder is not None:
            path = self.folder / f"{arch_hash}.npz"
            if path.is_file():
                with np.load(path) as saved:
                    flops = int(saved["flops"]) if "flops" in saved.files else 0
                    self.pools[arch_hash] = Pool(
                        saved["val"], saved["test"], int(saved["parameters"]), flops
                    )
        return self.pools.get(arch_hash)

    def ensure(
        self,
        architecture: BaseModel,
        count: int,
        on_learner: Callable[[int], None] = lambda j: None,
        chunk: int | None = None,
    ) -> tuple[Pool, Cost]:
        """At least `count` learners of `architecture`; trains only the missing ones, `chunk`
        at a time (all at once if None) and saves after each chunk.

        Raises evaluators.base.CandidateFailed; chunks finished before it are kept.
        """
        arch_hash = architecture.arch_hash()
        pool = self.get(arch_hash)
        cost = Cost()
        while pool is None or len(pool) < count:
            first = 0 if pool is None else len(pool)
            size = count - first if chunk is None else min(chunk, count - first)
            evaluation = self.evaluator.evaluate(architecture, size, first=first)
            if pool is None:
                pool = Pool(
                    evaluation.val_predictions, evaluation.test_predictions, evaluation.parameters
                )
            else:
                pool = Pool(
                    np.concatenate([pool.val, evaluation.val_predictions]),
                    np.concatenate([pool.test, evaluation.test_predictions]),
                    pool.parameters,
                    pool.flops,
                )
            self.pools[arch_hash] = pool
            self._save(arch_hash, pool)
            cost = cost + Cost(learners_trained=size, train_seconds=evaluation.train_seconds)
            for j in range(first, first + size):
                on_learner(j)
        return pool, cost

    def _save(self, arch_hash: str, pool: Pool) -> None:
        if self.folder is None:
            return
        temporary = self.folder / f".{arch_hash}.tmp.npz"
        np.savez(
            temporary, val=pool.val, test=pool.test, parameters=pool.parameters, flops=pool.flops
        )
        os.replace(temporary, self.folder / f"{arch_hash}.npz")
