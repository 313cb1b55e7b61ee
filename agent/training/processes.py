"""Train a batch's requests side by side in worker processes on this machine.

A small candidate does not fill two cores: torch's threads meet at a barrier after every
small operation, so a second core buys a 64-32 tower little (docs: "A shared machine").
Whole candidates on cores of their own do: each worker process runs torch on one thread
and trains one request at a time, and a round of P candidates or `verify`'s members
finish about as fast as the slowest of them. No extra package: the
standard library's process pool, started with `spawn` (a fork of a process whose OpenMP
threads are running can hang).

A batch of one request is trained in this process, on every core it may use, exactly as
the local executor trains it, so a search that asks for one proposal at a time makes the
same decisions bit for bit whichever of the two it runs on.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from edas_agent.evaluators.base import CandidateFailed, document_of
from edas_agent.outcome import failure
from edas_agent.training.door import ConfigShipment, Shipment, shipment
from edas_agent.training.executors import LocalExecutor, TrainRequest, train

_worker_evaluator = None  # the run's evaluator, rebuilt once in each worker process


def _start_worker(shipped: bytes) -> None:
    import torch

    torch.set_num_threads(1)
    global _worker_evaluator
    _worker_evaluator = pickle.loads(shipped).build()


def _train_in_worker(document, learners, first, fractions=None, resume=None):
    """One request on this worker's evaluator; CandidateFailed travels back as itself."""
    evaluator = _worker_evaluator
    request = TrainRequest(evaluator.parse(document), learners, first, fractions, resume)
    return train(evaluator, request)


def _call_by_value(task, arguments: bytes) -> bytes:
    """In a worker: `task` on pickled arguments, its result pickled. Both ways by value, as
    the shipment: multiprocessing's own pickler would hand tensors (a screening stage's
    paused state) over as shared memory, a file descriptor each, for the whole run."""
    return pickle.dumps(task(*pickle.loads(arguments)))


def _ready() -> None:
    """Nothing: that a worker runs it proves the worker built its evaluator."""


def usable_cores() -> int:
    """The cores this process may run on (a `taskset` pin counts), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_LOST = object()  # a request whose worker died, or that a dead worker's pool took with it


class WorkersUnavailable(RuntimeError):
    """Worker processes cannot start here (their error is printed above): the command
    stops, saying so, instead of recording every candidate as failed."""


class ProcessExecutor:
    """A batch of two or more requests over `workers` processes (one torch thread each);
    a single request in this process. The pool starts at the first batch that needs it
    (a few seconds: each worker imports torch and rebuilds the evaluator from its
    shipment, the encoded data included) and is kept for the rest of the run. `task` runs
    a request in a worker (tests give one that fails)."""

    def __init__(self, evaluator, workers: int | None = None, task=_train_in_worker):
        self.local = LocalExecutor(evaluator)
        self.task = task
        try:
            self.shipment = shipment(evaluator)
        except TypeError as exc:  # an evaluator object no worker can rebuild
            raise RuntimeError(f"executor.kind processes: {exc}") from None
        if isinstance(self.shipment, Shipment):
            # One thread per worker whatever the run's own evaluator.threads says
            settings = self.shipment.settings.model_copy(update={"threads": 1})
            self.shipment = dataclasses.replace(self.shipment, settings=settings)
        self.workers = workers or usable_cores()
        self.pool: ProcessPoolExecutor | None = None
        if isinstance(self.shipment, ConfigShipment) and self.workers >= 2:
            # A plugin or command evaluator is rebuilt in each worker from the run's config:
            # one that a worker cannot rebuild stops the run before it starts
            self._fresh_pool()

    def _fresh_pool(self) -> None:
        """A new pool whose workers are known to have started (built their evaluator)."""
        self._discard_pool()
        try:
            self._start_pool().submit(_ready).result()
        except BrokenProcessPool:
            self.close()
            raise WorkersUnavailable(
                "a worker process cannot start or rebuild the evaluator (its error is printed "
                "above); executor.kind local trains in this process"
            ) from None

    def run(self, requests: list[TrainRequest]):
        if len(requests) < 2 or self.workers < 2:
            yield from self.local.run(requests)
            return
        lost = []
        pending = {self._submit(r): i for i, r in enumerate(requests)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                result = self._result(future)
                if result is _LOST:
                    lost.append(index)
                else:
                    yield index, result
        # A worker that dies (killed, out of memory) breaks the pool and every request in
        # it: each is trained again alone, in a fresh pool where the last one broke, so only
        # the one that kills its worker again fails. Workers that cannot start at all stop
        # the command instead.
        if lost:
            self._discard_pool()
        for index in sorted(lost):
            if self.pool is None:
                self._fresh_pool()
            result = self._result(self._submit(requests[index]))
            if result is _LOST:
                self._discard_pool()
                result = failure(RuntimeError("its process died"), "worker lost: ")
            yield index, result

    def _start_pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                # Pickled here, by value: multiprocessing's own pickler would move the data's
                # tensors into shared memory, freeing the memory that numpy views of them
                # (the evaluator's targets) still read (a search crashed on it)
                initargs=(pickle.dumps(self.shipment),),
            )
        return self.pool

    def _submit(self, request: TrainRequest) -> Future:
        document = document_of(request.architecture)
        arguments = (document, request.learners, request.first, request.fractions, request.resume)
        try:
            return self._start_pool().submit(_call_by_value, self.task, pickle.dumps(arguments))
        except BrokenProcessPool as exc:  # a worker died while the batch was handed over
            future: Future = Future()
            future.set_exception(exc)
            return future

    def _result(self, future: Future):
        try:
            return pickle.loads(future.result())
        except CandidateFailed as exc:
            return failure(exc)
        except BrokenProcessPool:
            return _LOST
        except Exception as exc:  # raised by the evaluator in the worker
            return failure(exc)

    def _discard_pool(self) -> None:
        """A broken pool takes no more work: the next batch starts a fresh one."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
