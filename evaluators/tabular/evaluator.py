"""The tabular evaluator: k learners of one architecture on one encoded dataset."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jsonpointer
import numpy as np
import torch
from pydantic import BaseModel

from edas_agent.evaluators.base import CandidateFailed, Evaluation, Request, Size, Staged
from edas_agent.evaluators.settings import EvaluatorSettings, SpaceSettings
from edas_agent.evaluators.tabular.cache import load_cached
from edas_agent.evaluators.tabular.data import DataSpec, EncodedDataset
from edas_agent.evaluators.tabular.fused import (
    Member,
    fusion_key,
    groups,
    learner_bytes,
    predict_fused,
    train_fused,
)
from edas_agent.evaluators.tabular.layout import Layout
from edas_agent.evaluators.tabular.model import BatchedNet, effective_on, flops_per_example
from edas_agent.evaluators.tabular.mutations import MUTATIONS
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.evaluators.tabular.threads import process_share
from edas_agent.evaluators.tabular.trainer import (
    Checkpoints,
    Paused,
    checkpoint_steps,
    gradient_norm_at_init,
    nonfinite,
    predict,
    total_steps,
    train_learners,
)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("evaluator.device is 'cuda' but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


class TabularEvaluator:
    """Loads and encodes the data once; trains learners with seeds seed_base + j."""

    mutations = MUTATIONS  # what the builtin proposer draws from

    def __init__(
        self,
        data: DataSpec,
        settings: EvaluatorSettings,
        seed: int,
        space: SpaceSettings | None = None,
    ):
        self.settings = settings
        self.limits = space or SpaceSettings()
        self.seed = seed
        self.seed_base = seed * 1000
        self._attach(load_cached(data, seed))

    @classmethod
    def from_data(
        cls,
        data: EncodedDataset,
        settings: EvaluatorSettings,
        seed: int,
        space: SpaceSettings | None = None,
    ) -> TabularEvaluator:
        """An evaluator over data already loaded and encoded (a Ray worker's copy)."""
        evaluator = cls.__new__(cls)
        evaluator.settings, evaluator.limits = settings, space or SpaceSettings()
        evaluator.seed, evaluator.seed_base = seed, seed * 1000
        evaluator._attach(data)
        return evaluator

    def _attach(self, data: EncodedDataset) -> None:
        self.device = resolve_device(self.settings.device)
        # A fixed number of threads, or the cores other processes leave free (threads.py)
        self.fair_share = None if self.settings.threads else process_share()
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        self.data = data
        self.task = self.data.task
        self.notes = self.data.notes
        self.y_val = self.data.labels(self.data.val)
        self.y_test = self.data.labels(self.data.test)

    def space(self) -> type[Architecture]:
        return Architecture

    def parse(self, document: dict[str, Any]) -> Architecture:
        context = {
            "categorical_fields": self.data.categorical_fields,
            "numeric_fields": self.data.numeric_fields,
        }
        return Architecture.model_validate(document, context=context)

    def default_architecture(self) -> Architecture:
        return Architecture()

    def effective_document(self, architecture: BaseModel) -> dict[str, Any]:
        assert isinstance(architecture, Architecture)
        layout = Layout.of(architecture, self.data)
        return effective_on(architecture, layout, len(self.data.train))

    def evaluate(self, architecture: BaseModel, learners: int, first: int = 0) -> Evaluation:
        """Train learners first .. first+learners-1 (seeds seed_base + j), all at once."""
        size, seeds = self._prepare(architecture, learners, first)
        self._share_cores()
        with _as_candidate_failure(first):
            trained = train_learners(
                architecture, self.data, seeds, self.device, self.settings.timeout_s,
                precision=self.settings.precision,
            )  # fmt: skip
            val = predict(trained, self.data, architecture, self.data.val)
            test = predict(trained, self.data, architecture, self.data.test)
        flops = self._train_flops(architecture, size, learners)
        return _evaluation(val, test, size, trained.seconds, flops)

    def evaluate_together(
        self, requests: list[Request]
    ) -> Iterator[tuple[int, Evaluation | CandidateFailed]]:
        """(request index, its Evaluation or CandidateFailed), as each finishes: a failure
        is yielded, not raised. Requests that can share one program (fused.py) train in
        groups within evaluator.fuse_memory_mb and evaluator.fuse_learners; the others,
        and all with evaluator.fuse off, alone. A group's training seconds are shared
        among its members in proportion to their training FLOPs."""
        ready: list[_Ready] = []
        for index, request in enumerate(requests):
            try:
                size, seeds = self._prepare(request.architecture, request.learners, request.first)
            except CandidateFailed as exc:  # over the space's caps
                yield index, exc
                continue
            ready.append(_Ready(index, request, size, seeds))
        for group in self._groups(ready):
            trained = self._fused(group) if len(group) > 1 else [self._alone(group[0].request)]
            yield from ((item.index, result) for item, result in zip(group, trained, strict=True))

    def _groups(self, ready: list[_Ready]) -> list[list[_Ready]]:
        settings = self.settings
        fuse = settings.fuse
        if fuse == "auto":  # on a CPU a fused round is no faster (performance page)
            fuse = "padded" if self.device.type == "cuda" else "off"
        if fuse == "off":
            return [[item] for item in ready]
        pad = fuse == "padded"
        keys = [fusion_key(item.request.architecture, pad) for item in ready]
        sizes = [item.request.learners * learner_bytes(item.request.architecture,
                 item.size.parameters, self.data) for item in ready]  # fmt: skip
        learners = [item.request.learners for item in ready]
        limit = int(settings.fuse_memory_mb * 2**20)
        grouped, splits = groups(keys, sizes, learners, limit, settings.fuse_learners)
        if splits:
            limit_name = f"evaluator.fuse_memory_mb ({settings.fuse_memory_mb:g})"
            print(f"fused training: {splits} more group(s) to stay under {limit_name}",
                  file=sys.stderr)  # fmt: skip
        return [[ready[i] for i in group] for group in grouped]

    def _alone(self, request: Request) -> Evaluation | CandidateFailed:
        try:
            return self.evaluate(request.architecture, request.learners, request.first)
        except CandidateFailed as exc:
            return exc

    def _fused(self, group: list[_Ready]) -> list[Evaluation | CandidateFailed]:
        members = [Member(item.request.architecture, item.seeds) for item in group]
        self._share_cores()
        timeout = self.settings.timeout_s
        timeout = None if timeout is None else timeout * len(group)  # the members' added up
        try:
            with _as_candidate_failure(0):
                fused = train_fused(members, self.data, self.device, timeout,
                                    self.settings.precision)  # fmt: skip
                val = predict_fused(fused, self.data, self.data.val)
                test = predict_fused(fused, self.data, self.data.test)
        except CandidateFailed as exc:
            others = f" (trained with {len(group) - 1} other candidates)"
            return [CandidateFailed(f"{exc}{others}") for _ in group]
        flops = [self._train_flops(item.request.architecture, item.size, item.request.learners)
                 for item in group]  # fmt: skip
        results: list[Evaluation | CandidateFailed] = []
        for item, span, failure, spent in zip(
            group, fused.spans(), fused.failures, flops, strict=True
        ):
            failure = failure or nonfinite(val[span]) or nonfinite(test[span])
            if failure is not None:
                results.append(CandidateFailed(_renumber(failure, item.request.first)))
                continue
            seconds = fused.trained.seconds * spent / sum(flops)
            results.append(_evaluation(val[span], test[span], item.size, seconds, spent))
        return results

    def evaluate_staged(
        self,
        architecture: BaseModel,
        learners: int,
        first: int,
        fractions: tuple[float, ...],
        resume: Paused | None = None,
    ) -> Staged:
        """Train up to the last of `fractions` of the schedule, predicting on validation at
        each; a last fraction of 1 also gives the full Evaluation (test predictions too),
        an earlier one the paused training that `resume` continues."""
        size, seeds = self._prepare(architecture, learners, first)
        self._share_cores()
        stages: list[np.ndarray] = []

        def look(trained, index: int) -> None:
            stages.append(predict(trained, self.data, architecture, self.data.val))

        steps = checkpoint_steps(architecture, len(self.data.train), fractions)
        full = fractions[-1] >= 1.0
        with _as_candidate_failure(first):
            trained = train_learners(
                architecture, self.data, seeds, self.device, self.settings.timeout_s,
                Checkpoints(steps, look), resume, self.settings.precision,
            )  # fmt: skip
            test = predict(trained, self.data, architecture, self.data.test) if full else None
        val = tuple(v.astype(np.float32) for v in stages)
        # This call trained from where `resume` paused to the last checkpoint
        done = resume.step if resume is not None else 0
        flops = self._train_flops(architecture, size, learners, done, steps[-1])
        final = None
        if test is not None:
            final = _evaluation(stages[-1], test, size, trained.seconds, flops)
        return Staged(
            fractions, val, size.parameters, size.flops, trained.seconds, final, trained.paused,
            flops,
        )  # fmt: skip

    def planned_train_flops(self, architecture: BaseModel) -> float:
        """Training FLOPs of one learner's full schedule, before training it."""
        assert isinstance(architecture, Architecture)
        return self._train_flops(architecture, self.size(architecture), 1)

    def _train_flops(
        self, architecture: Architecture, size: Size, learners: int, start: int = 0,
        end: int | None = None,
    ) -> float:  # fmt: skip
        """Training FLOPs of optimiser steps start .. end of the schedule (all of it by
        default): 3 x forward FLOPs per example (forward, and backward at twice the
        forward) x the examples those steps cover x learners."""
        rows = len(self.data.train)
        total = total_steps(architecture, rows)
        end = total if end is None else end
        examples = rows * architecture.training.epochs * (end - start) / total
        return 3.0 * size.flops * examples * learners

    def _share_cores(self) -> None:
        """Threads for the next training: evaluator.threads, or on the CPU the cores that
        other processes left free since the last training (at least one)."""
        if self.fair_share is not None and self.device.type == "cpu":
            torch.set_num_threads(self.fair_share.threads())

    def _prepare(self, architecture: BaseModel, learners: int, first: int):
        """The architecture's size (within the caps) and its learners' seeds."""
        assert isinstance(architecture, Architecture)
        size = self.size(architecture)
        self._check_caps(size)
        return size, [self.seed_base + j for j in range(first, first + learners)]

    def zero_cost(self, architecture: BaseModel) -> float:
        """log10 of the gradient norm at initialisation on one batch of training rows (the
        grad-norm proxy), learner 0's seed: larger trains faster early. No training."""
        assert isinstance(architecture, Architecture)
        return gradient_norm_at_init(architecture, self.data, self.seed_base, self.device)

    def size(self, architecture: Architecture) -> Size:
        """Parameters and forward FLOPs per example of one learner, without training."""
        layout = Layout.of(architecture, self.data)
        net = BatchedNet(
            architecture, layout, self.data.n_outputs, [torch.Generator()], torch.device("cpu")
        )
        return Size(
            parameters=net.parameter_count(),
            flops=flops_per_example(architecture, layout, self.data.n_outputs),
        )

    def _check_caps(self, size: Size) -> None:
        limits = self.limits
        if limits.max_params is not None and size.parameters > limits.max_params:
            raise CandidateFailed(
                f"{size.parameters:,} parameters exceed space.max_params ({limits.max_params:,})"
            )
        if limits.max_flops is not None and size.flops > limits.max_flops:
            raise CandidateFailed(
                f"{size.flops:,} FLOPs per example exceed space.max_flops ({limits.max_flops:,})"
            )

    def describe(self) -> dict[str, Any]:
        data = self.data
        facts: dict[str, Any] = {
            "dataset": data.name,
            "task": data.task,
            "rows": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "categorical_fields": dict(
                zip(data.categorical_fields, data.cardinalities, strict=True)
            ),
            "numeric_fields": data.numeric_fields,
            "classes": data.classes,
        }
        if data.task == "regression":
            facts["target_scale"] = (
                f"statistics are on the standardised target: (y - {data.target_mean:.6g}) / "
                f"{data.target_std:.6g}"
            )
        # RFC 6901: '/' and '~' inside a field name are written '~1' and '~0' in a path.
        escaped = {f: jsonpointer.escape(f) for f in data.categorical_fields}
        escaped = {f: token for f, token in escaped.items() if token != f}
        if escaped:
            facts["field_path_tokens"] = escaped
        inert = _inert_on(data)
        if inert:
            facts["inert_blocks"] = inert
        return facts


def _inert_on(data: EncodedDataset) -> list[str]:
    """What the proposer should not spend edits on, for this table (the space enforces it)."""
    inert = []
    if not data.categorical_fields:
        inert.append(
            "no categorical columns: embeddings, fm and attention act only with "
            "numeric.transform 'bucketize'"
        )
    if not data.numeric_fields:
        inert.append("no numeric columns: the numeric block has no effect")
    if len(data.categorical_fields) + len(data.numeric_fields) == 1:
        inert.append("one feature column: bagging has no effect")
    return inert


@dataclass(frozen=True)
class _Ready:
    """A request of evaluate_together within the caps: its place, size and seeds."""

    index: int
    request: Request
    size: Size
    seeds: list[int]


@contextmanager
def _as_candidate_failure(first: int) -> Iterator[None]:
    """Training errors as CandidateFailed, naming learners by their index in the pool."""
    try:
        yield
    except CandidateFailed as exc:
        raise CandidateFailed(_renumber(str(exc), first)) from exc
    except (RuntimeError, ValueError) as exc:  # shape errors, CUDA out of memory, ...
        if isinstance(exc, torch.OutOfMemoryError):
            torch.cuda.empty_cache()  # what the failed candidate held, for the next one
            message = str(exc).splitlines()[0]
            raise CandidateFailed(f"out of GPU memory: {message}") from exc
        raise CandidateFailed(f"{type(exc).__name__}: {exc}") from exc


def _evaluation(
    val: np.ndarray, test: np.ndarray, size: Size, seconds: float, train_flops: float
) -> Evaluation:
    learners = val.shape[0]
    return Evaluation(
        val_predictions=val.astype(np.float32),
        test_predictions=test.astype(np.float32),
        parameters=size.parameters,
        flops=size.flops,
        train_seconds=seconds,
        learner_seconds=(seconds / learners,) * learners,
        train_flops=train_flops,
    )


def _renumber(message: str, first: int) -> str:
    """'learner 1: ...' within a batch trained from `first` is learner first+1 of the pool."""
    if message.startswith("learner ") and first:
        number, _, rest = message[len("learner ") :].partition(":")
        if number.isdigit():
            return f"learner {int(number) + first}:{rest}"
    return message
