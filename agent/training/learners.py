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

from edas_agent.evaluators.base import (
    Evaluation,
    Evaluator,
    Staged,
    architecture_hash,
)
from edas_agent.outcome import Outcome, failed
from edas_agent.record import Cost
from edas_agent.training.executors import Executor, LocalExecutor, TrainRequest

__all__ = ["LearnerStore", "MembersUnavailable", "Pool"]


class MembersUnavailable(Exception):
    """`verify` or `calibrate` needs members that could not be trained: the command stops
    (a search records such an architecture as failed instead)."""


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
    def __init__(self, evaluator: Evaluator, folder: Path | None, executor: Executor | None = None):
        self.evaluator = evaluator
        self.folder = folder
        self.executor = executor or LocalExecutor(evaluator)
        self.pools: dict[str, Pool] = {}
        # The run's one failure map: architecture hash -> why its training failed. An
        # architecture that failed is never trained again by this store.
        self.failed: dict[str, str] = {}
        self.unbilled: dict[str, Cost] = {}  # trained by prefetch, not yet reported by ensure
        # Validation predictions of learners 0.. at the screening fractions, kept from the
        # full training of a candidate that was screened (its full learning curve)
        self.curves: dict[str, Staged] = {}
        # A candidate's screening stages so far, by the seed index of their first learner,
        # paused where the last one stopped: its next stage, or its full training when the
        # stages trained the gate's own learners (first 0), goes on from there
        self.stages: dict[str, tuple[int, Staged]] = {}
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

    def ensure(self, architecture: BaseModel, count: int) -> tuple[Pool, Cost] | Outcome:
        """At least `count` learners of `architecture`, and the cost of those trained for it
        since the last call; trains only the missing ones. Learners finished before a
        failure are kept."""
        arch_hash = architecture_hash(architecture)
        self.prefetch([(architecture, count)])
        if arch_hash in self.failed:
            self.bill(arch_hash)  # a failure's record carries no cost
            return failed(self.failed[arch_hash])
        pool = self.get(arch_hash)
        assert pool is not None and len(pool) >= count
        return pool, self.bill(arch_hash)

    def require(self, architecture: BaseModel, count: int) -> Pool:
        """The first `count` learners, for commands that cannot go on without them."""
        trained = self.ensure(architecture, count)
        if isinstance(trained, Outcome):
            raise MembersUnavailable(trained.reason)
        return trained[0].head(count)

    def prefetch(
        self,
        wants: list[tuple[BaseModel, int]],
        chunk: int | None = None,
        on_learner: Callable[[str, int], None] = lambda arch_hash, j: None,
        fractions: tuple[float, ...] | None = None,
    ) -> list[str]:
        """Train what `wants` lacks, every chunk of every architecture submitted at once so a
        parallel executor runs them together. Results join their pool in seed order as they
        arrive (each saved), so the pools do not depend on the order of completion. A failed
        architecture is remembered and reported by the next `ensure`. Returns the
        architectures' hashes in the order their requests finished. With `fractions`
        (ending at 1) the requests from learner 0 also keep validation predictions at those
        fractions of the schedule in .curves."""
        requests: list[TrainRequest] = []
        for architecture, count in wants:
            arch_hash = architecture_hash(architecture)
            have = len(self.get(arch_hash) or ())
            if arch_hash in self.failed or have >= count:
                continue
            step = count - have if chunk is None else chunk
            requests += [
                self._full_request(architecture, min(step, count - first), first, fractions)
                for first in range(have, count, step)
            ]
        waiting: dict[str, dict[int, Evaluation]] = {}
        finished: list[str] = []
        for index, result in self.executor.run(requests):
            request = requests[index]
            arch_hash = architecture_hash(request.architecture)
            finished.append(arch_hash)
            if isinstance(result, Outcome):
                self.failed.setdefault(arch_hash, result.reason)
                self.stages.pop(arch_hash, None)
                continue
            if isinstance(result, Staged):
                assert result.final is not None
                result = self._finish_curve(arch_hash, request, result)
            waiting.setdefault(arch_hash, {})[request.first] = result
            self._append_ready(arch_hash, waiting[arch_hash], on_learner)
        return finished

    def train_stage(
        self, wants: list[tuple[BaseModel, int]], fraction: float, first: int = 0
    ) -> dict[str, np.ndarray | Outcome]:
        """Validation predictions of `count` learners of each architecture, from seed index
        `first`, after `fraction` of their schedule (multi-fidelity screening), all
        submitted at once. Nothing joins a pool. Training goes on from the architecture's
        last stage when the evaluator paused it there (a stage is a prefix of full training,
        so the numbers are the same either way); billed to .unbilled as partial learners,
        for the part trained now. A failure is remembered like a full one."""
        requests = [
            self._stage_request(architecture, count, fraction, first)
            for architecture, count in wants
        ]
        results: dict[str, np.ndarray | Outcome] = {}
        for index, result in self.executor.run(requests):
            request = requests[index]
            arch_hash = architecture_hash(request.architecture)
            if isinstance(result, Outcome):
                self.failed.setdefault(arch_hash, result.reason)
                self.stages.pop(arch_hash, None)
                results[arch_hash] = failed(self.failed[arch_hash])
                continue
            assert isinstance(result, Staged)
            earlier = self.stages.pop(arch_hash)[1] if request.resume is not None else None
            done = earlier.fractions[-1] if earlier is not None else 0.0
            spent = Cost(
                train_seconds=result.train_seconds,
                partial_learners=result.learners * (fraction - done),
                train_flops=result.train_flops or 0.0,
            )
            self.unbilled[arch_hash] = self.unbilled.get(arch_hash, Cost()) + spent
            self.stages[arch_hash] = (first, _joined(earlier, result))
            results[arch_hash] = result.val_predictions[-1]
        return results

    def drop_stages(self, arch_hash: str) -> None:
        """A pruned candidate will not go on: let its paused training go."""
        self.stages.pop(arch_hash, None)

    def _stage_request(
        self, architecture: BaseModel, count: int, fraction: float, first: int
    ) -> TrainRequest:
        earlier = self._paused(architecture, count, first)
        resume = earlier.paused if earlier is not None else None
        return TrainRequest(architecture, count, first, (fraction,), resume)

    def _paused(self, architecture: BaseModel, count: int, first: int) -> Staged | None:
        """The stages of these learners so far, when training can go on from them."""
        first_then, earlier = self.stages.get(architecture_hash(architecture), (None, None))
        if earlier is None or earlier.paused is None:
            return None
        return earlier if (first_then, earlier.learners) == (first, count) else None

    def _full_request(
        self, architecture: BaseModel, count: int, first: int, fractions: tuple[float, ...] | None
    ) -> TrainRequest:
        """Full training of learners first.., with a curve at `fractions` from learner 0,
        going on from the screening stages that already trained part of it."""
        if first != 0 or fractions is None:
            return TrainRequest(architecture, count, first)
        earlier = self._paused(architecture, count, 0)
        if earlier is None or fractions[: len(earlier.fractions)] != earlier.fractions:
            return TrainRequest(architecture, count, 0, fractions)
        rest = fractions[len(earlier.fractions) :]
        return TrainRequest(architecture, count, 0, rest, earlier.paused)

    def _finish_curve(self, arch_hash: str, request: TrainRequest, result: Staged) -> Evaluation:
        """Keep a full training's learning curve, its screening stages in front when it went
        on from them; those stages were billed as partial learners and are now part of
        full ones, so their share is taken off the bill."""
        earlier = self.stages.pop(arch_hash, (0, None))[1]
        if request.resume is None:
            earlier = None
        self.curves[arch_hash] = _joined(earlier, result)
        if earlier is not None:
            carried = Cost(partial_learners=-earlier.learners * earlier.fractions[-1])
            self.unbilled[arch_hash] = self.unbilled.get(arch_hash, Cost()) + carried
        assert result.final is not None
        return result.final

    def bill(self, arch_hash: str) -> Cost:
        """The cost trained for `arch_hash` and not yet reported, now reported."""
        return self.unbilled.pop(arch_hash, Cost())

    def _append_ready(self, arch_hash: str, waiting: dict[int, Evaluation], on_learner) -> None:
        pool = self.get(arch_hash)
        while (first := len(pool or ())) in waiting:
            evaluation = waiting.pop(first)
            if pool is None:
                pool = Pool(
                    evaluation.val_predictions,
                    evaluation.test_predictions,
                    evaluation.parameters,
                    evaluation.flops,
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
            size = evaluation.learners
            trained = Cost(
                learners_trained=size,
                train_seconds=evaluation.train_seconds,
                train_flops=evaluation.train_flops or 0.0,
            )
            self.unbilled[arch_hash] = self.unbilled.get(arch_hash, Cost()) + trained
            for j in range(first, first + size):
                on_learner(arch_hash, j)

    def _save(self, arch_hash: str, pool: Pool) -> None:
        if self.folder is None:
            return
        temporary = self.folder / f".{arch_hash}.tmp.npz"
        np.savez(
            temporary, val=pool.val, test=pool.test, parameters=pool.parameters, flops=pool.flops
        )
        os.replace(temporary, self.folder / f"{arch_hash}.npz")


def _joined(earlier: Staged | None, later: Staged) -> Staged:
    """A training's stages so far: `later` went on from where `earlier` paused."""
    if earlier is None:
        return later
    return Staged(
        fractions=earlier.fractions + later.fractions,
        val_predictions=earlier.val_predictions + later.val_predictions,
        parameters=later.parameters,
        flops=later.flops,
        train_seconds=earlier.train_seconds + later.train_seconds,
        final=later.final,
        paused=later.paused,
    )
