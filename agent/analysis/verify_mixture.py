"""`edas-agent verify --mixture`: train the members of ensemble.json's best mixture and best
homogeneous ensemble with fresh seeds and compare their realised errors with the predicted
ones (`verify` does the same for a run's single architectures)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edas_agent.analysis.verify import (  # the same chunking, the same workers
    _CHUNK,
    realised_error,
    with_workers,
)
from edas_agent.config import load_config
from edas_agent.outcome import Outcome
from edas_agent.record import read_records
from edas_agent.training.executors import TrainRequest, make_executor
from edas_agent.training.learners import MembersUnavailable

MIXTURE_FIRST = 500_000  # seed indices of mixture members: a search uses 0 .. a few dozen
VERIFY_MIXTURE = "verify_mixture.json"


def verify_mixture(
    folder: Path,
    on_learner: Callable[[str, int], None] = lambda arch_hash, j: None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Train the members of ensemble.json's best mixture and best homogeneous ensemble with
    fresh seeds, every member of a mixture its own seed index (as deployed members would
    be), and compare the realised errors with the predicted ones. Members are saved one
    file each under <run>/mixture_members/, shared between the two ensembles where they
    coincide, so an interrupted run resumes."""
    from edas_agent.analysis.ensemble import read_ensemble
    from edas_agent.training.door import build_evaluator, keep_files

    result = read_ensemble(folder)
    config = with_workers(load_config(folder / "config.yaml", {}), workers)
    documents = {r.arch_hash: r.architecture for r in read_records(folder) if r.architecture}
    evaluator = build_evaluator(config)
    keep_files(evaluator, folder)
    executor = make_executor(evaluator, config.executor)
    chosen = {"mixture": result.mixture, "homogeneous": result.homogeneous}
    try:
        members = {name: _member_slots(choice) for name, choice in chosen.items()}
        wanted = sorted({slot for slots in members.values() for slot in slots})
        saved = _train_members(folder / "mixture_members", wanted, documents, evaluator,
                               executor, on_learner)  # fmt: skip
    finally:
        executor.close()
    rows = {}
    for name, choice in chosen.items():
        row: dict[str, Any] = {"composition": [m.model_dump() for m in choice.composition]}
        for split, y in (("val", evaluator.y_val), ("test", evaluator.y_test)):
            predictions = np.stack([saved[slot][split] for slot in members[name]])
            realised = realised_error(predictions, y, len(predictions), np.random.default_rng())
            predicted, interval = getattr(choice, split), getattr(choice, f"{split}_interval")
            row[split] = {"predicted": predicted, "realised": realised,
                          "relative_error": (predicted - realised) / realised,
                          "covered": interval.covers(realised) if interval else None}  # fmt: skip
        rows[name] = row
    out = {"members": result.members, "ensembles": rows}
    (folder / VERIFY_MIXTURE).write_text(json.dumps(out, indent=2))
    return out


def _member_slots(choice) -> list[tuple[str, int]]:
    """(architecture hash, seed index) of every member: consecutive fresh indices."""
    slots = []
    for member in choice.composition:
        start = MIXTURE_FIRST + len(slots)
        slots += [(member.arch_hash, start + i) for i in range(member.members)]
    return slots


def _train_members(folder: Path, slots, documents, evaluator, executor, on_learner):
    folder.mkdir(parents=True, exist_ok=True)
    path = {slot: folder / f"{slot[0]}-{slot[1]}.npz" for slot in slots}
    chunks: list[list[tuple[str, int]]] = []  # consecutive seeds of one architecture
    for slot in (slot for slot in slots if not path[slot].is_file()):
        last = chunks[-1][-1] if chunks else None
        if last and last[0] == slot[0] and last[1] + 1 == slot[1] and len(chunks[-1]) < _CHUNK:
            chunks[-1].append(slot)
        else:
            chunks.append([slot])
    requests = [
        TrainRequest(evaluator.parse(documents[chunk[0][0]]), len(chunk), chunk[0][1])
        for chunk in chunks
    ]
    for i, trained in executor.run(requests):
        if isinstance(trained, Outcome):
            raise MembersUnavailable(f"members of {chunks[i][0][0]}: {trained.reason}")
        for j, slot in enumerate(chunks[i]):
            val, test = trained.val_predictions[j], trained.test_predictions[j]
            np.savez(path[slot], val=val, test=test)
            on_learner(*slot)
    saved = {}
    for slot in slots:
        with np.load(path[slot]) as arrays:
            saved[slot] = {"val": arrays["val"], "test": arrays["test"]}
    return saved
