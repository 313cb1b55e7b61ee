"""Where learners are trained: in this process, or as Ray tasks across a cluster.

The driver keeps the LLM loop, the journal and the learner store; an executor only turns
training requests (an architecture, how many learners, from which seed index) into
predictions. Every learner's numbers depend only on its seed, so the results, and every
decision made from them, are the same whichever executor trained them and in whatever
order they finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from edas_agent.config import ExecutorSettings
from edas_agent.evaluators.base import (
    CandidateFailed,
    Evaluation,
    Request,
    Staged,
    document_of,
    optional,
)
from edas_agent.outcome import Outcome, failure
from edas_agent.training.door import ConfigShipment, Shipment, shipment


@dataclass(frozen=True)
class TrainRequest:
    architecture: Any  # the evaluator's pydantic architecture
    learners: int
    first: int  # seed index of the first learner
    # Multi-fidelity screening: stop at the last of these fractions of the schedule, with
    # validation predictions at each (the evaluator's evaluate_staged); None: full training
    fractions: tuple[float, ...] | None = None
    resume: Any = None  # a Staged.paused of these learners: train only the rest of the way


Result = Evaluation | Staged | Outcome


def train(evaluator, request: TrainRequest) -> Evaluation | Staged:
    """The request on this evaluator; raises CandidateFailed."""
    if request.fractions is None:
        return evaluator.evaluate(request.architecture, request.learners, request.first)
    # an evaluator that cannot pause is never given `resume`, so it need not take one
    resume = () if request.resume is None else (request.resume,)
    return evaluator.evaluate_staged(
        request.architecture, request.learners, request.first, request.fractions, *resume
    )


class Executor(Protocol):
    def run(self, requests: list[TrainRequest]) -> Iterator[tuple[int, Result]]:
        """Train the requests; yield (request index, result) as each finishes. A failure
        is yielded as an Outcome, never raised (outcome.failure turns the exception into
        one)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """In this process: the full trainings of a batch at once where the evaluator can train
    several together (evaluate_together: the tabular one fuses them into one program), the
    rest one request after another (the learners of one request together)."""

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def run(self, requests: list[TrainRequest]):
        full = [i for i, r in enumerate(requests) if r.fractions is None]
        together = optional(self.evaluator, "evaluate_together")
        if together is None or len(full) < 2:
            full = []
        else:
            batch = [Request(requests[i].architecture, requests[i].learners, requests[i].first)
                     for i in full]  # fmt: skip
            for index, result in together(batch):
                yield (
                    full[index],
                    failure(result) if isinstance(result, CandidateFailed) else result,
                )
        for index, request in enumerate(requests):
            if index in full:
                continue
            try:
                yield index, train(self.evaluator, request)
            except CandidateFailed as exc:
                yield index, failure(exc)

    def close(self) -> None:
        pass


def _train_remote(shipment: Shipment, document, learners, first, fractions=None, resume=None):
    """Runs on a Ray worker: the run's evaluator rebuilt, one training request."""
    evaluator = shipment.build()
    request = TrainRequest(evaluator.parse(document), learners, first, fractions, resume)
    return train(evaluator, request)


def _build_on_worker(shipment: ConfigShipment) -> None:
    shipment.build()


class RayExecutor:
    """Each request a Ray task; the evaluator's shipment (with the encoded data) is put in
    the object store once."""

    def __init__(self, evaluator, settings: ExecutorSettings, task: Callable = _train_remote):
        import ray

        self.ray = ray
        self.owns_ray = not ray.is_initialized()  # a cluster we joined is not ours to stop
        if self.owns_ray:
            ray.init(
                address=settings.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        shipped = shipment(evaluator)
        self.shipment = ray.put(shipped)
        if isinstance(shipped, ConfigShipment):
            self._check_a_worker_can_build(shipped)
        self.task = ray.remote(
            num_cpus=settings.cpus_per_candidate,
            num_gpus=settings.gpus_per_candidate,
            max_retries=settings.retries,
        )(task)

    def _check_a_worker_can_build(self, shipped: ConfigShipment) -> None:
        """A plugin or command evaluator is rebuilt on the workers: fail once, at the start,
        where a worker cannot (the plugin's package is not installed there), instead of
        failing every candidate."""
        try:
            self.ray.get(self.ray.remote(_build_on_worker).remote(self.shipment))
        except self.ray.exceptions.RayError as exc:
            self.close()
            message = f"a Ray worker cannot rebuild the evaluator: {_first_line(exc)}"
            raise RuntimeError(message) from None

    def run(self, requests: list[TrainRequest]):
        ray = self.ray
        pending = {
            self.task.remote(
                self.shipment,
                document_of(r.architecture),
                r.learners,
                r.first,
                r.fractions,
                r.resume,
            ): i
            for i, r in enumerate(requests)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                yield index, ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:  # raised inside the task
                yield index, failure(exc.cause if isinstance(exc.cause, CandidateFailed) else exc)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as exc:
                yield index, failure(exc, "worker lost: ")

    def close(self) -> None:
        if self.owns_ray:
            self.ray.shutdown()


def make_executor(evaluator, settings: ExecutorSettings) -> Executor:
    if settings.kind == "local":
        return LocalExecutor(evaluator)
    if settings.kind == "processes":
        from edas_agent.training.processes import ProcessExecutor

        return ProcessExecutor(evaluator, settings.workers)
    try:
        return RayExecutor(evaluator, settings)
    except ImportError:
        raise RuntimeError(
            "executor.kind is 'ray' but Ray is not installed: pip install 'edas-agent[ray]'"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
