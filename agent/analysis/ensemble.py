"""`edas-agent ensemble`: the best mixture of a run's architectures, and the smallest
ensemble nearly as good, predicted from the learners the search already trained.

Every evaluated, non-failed candidate left k >= 2 learners in <run>/learners/. From them
agent/theory/mixture.py predicts the error of any integer mixture. Mixtures are chosen on the
validation split and reported on the test split as well: the validation number of a chosen
mixture is optimistic (it won a selection over many mixtures), the test number is not.
`verify --mixture` trains the chosen mixture's members with fresh seeds to check it.
Results go to <run>/ensemble.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from edas_agent.config import load_config
from edas_agent.errors import UserError
from edas_agent.record import Record, pooled_seed_noise, read_records
from edas_agent.theory.gate import Stats, statistics
from edas_agent.theory.mixture import (
    Moments,
    best_mixture,
    greedy,
    local_search,
    mixture_error,
    moments,
)
from edas_agent.theory.mixture_gate import summary
from edas_agent.theory.seed_noise import Pooled, PredictedError, mixture_interval
from edas_agent.training.learners import LearnerStore

ENSEMBLE = "ensemble.json"


class Member(BaseModel):
    step: int  # the first step that evaluated the architecture (0: the start)
    arch_hash: str
    members: int
    flops: int  # forward FLOPs per example of one member


class Choice(BaseModel):
    """An ensemble: its composition, cost and predicted errors."""

    members: int
    architectures: int
    flops: int  # inference FLOPs per example: sum of n_a * flops_a
    val: float  # predicted on validation, where it was chosen
    test: float  # predicted on test
    composition: list[Member]
    # the seed-noise intervals of the realised errors (theory/pooled_seed_noise.py), when the
    # learners measure a spread or the run pooled one
    val_interval: PredictedError | None = None
    test_interval: PredictedError | None = None

    def summary(self) -> str:
        return summary(self.composition)


class Pruned(BaseModel):
    """The cheapest ensembles predicted within `tolerance` of the best mixture, by cost."""

    members: Choice
    architectures: Choice
    flops: Choice


class EnsembleResult(BaseModel):
    members: int
    candidates: int  # architectures with >= min_learners learners
    min_learners: int = 2
    tolerance: float  # relative, on predicted validation error
    max_architectures: int | None
    max_flops: int | None
    optimisers: dict[str, float]  # validation error of each optimiser's M-member mixture
    mixture: Choice  # the best within the limits
    homogeneous: Choice  # the best single architecture repeated M times
    incumbent: Choice | None  # the run's final baseline repeated M times
    pruned: Pruned
    front: list[Choice]  # predicted validation error against inference cost, non-dominated


@dataclass(frozen=True)
class Candidates:
    steps: list[int]
    hashes: list[str]
    flops: np.ndarray
    val: Moments
    test: Moments
    # per architecture, its statistics at the deployed M on each split, and the run's
    # pooled seed noise: what the choices' intervals come from (none: no intervals)
    stats: dict[str, list[Stats]] = field(default_factory=dict)
    pooled: Pooled | None = None

    def choice(self, counts: np.ndarray) -> Choice:
        used = np.flatnonzero(counts)
        composition = [
            Member(step=self.steps[a], arch_hash=self.hashes[a], members=int(counts[a]),
                   flops=int(self.flops[a]))
            for a in used
        ]  # fmt: skip
        val, test = mixture_error(self.val, counts), mixture_error(self.test, counts)
        return Choice(
            members=int(counts.sum()),
            architectures=len(used),
            flops=int(counts @ self.flops),
            val=val,
            test=test,
            composition=composition,
            val_interval=self._interval("val", val, counts),
            test_interval=self._interval("test", test, counts),
        )

    def _interval(self, split: str, error: float, counts: np.ndarray) -> PredictedError | None:
        if split not in self.stats:
            return None
        parts = [(int(counts[a]), self.stats[split][a]) for a in np.flatnonzero(counts)]
        return mixture_interval(error, parts, self.pooled)


def ensemble(
    folder: Path,
    members: int | None = None,
    max_architectures: int | None = None,
    max_flops: int | None = None,
    tolerance: float = 0.005,
    min_learners: int = 2,
) -> EnsembleResult:
    from edas_agent.training.door import build_evaluator

    config = load_config(folder / "config.yaml", {})
    records = read_records(folder)
    store = LearnerStore(build_evaluator(config), folder / "learners")  # read, never trained
    M = members or config.members
    candidates = load_candidates(records, store, min_learners, M, pooled_seed_noise(records))
    result = analyse(candidates, M, max_architectures, max_flops, tolerance,
                     incumbent_hash(records))  # fmt: skip
    result = result.model_copy(update={"min_learners": max(2, min_learners)})
    (folder / ENSEMBLE).write_text(result.model_dump_json(indent=2))
    return result


def load_candidates(
    records: list[Record],
    store: LearnerStore,
    min_learners: int = 2,
    members: int | None = None,
    pooled: Pooled | None = None,
) -> Candidates:
    """Every evaluated, non-failed architecture with at least `min_learners` stored learners
    (4 keeps those that reached confirmation: fewer lucky 2-learner draws to choose from).
    With `members`, each architecture's statistics at that M too: its choices then carry
    seed-noise intervals (with `pooled` for architectures of two learners)."""
    first_step: dict[str, int] = {}
    for record in records:
        if record.stats is not None and record.arch_hash and record.status != "failed":
            first_step.setdefault(record.arch_hash, record.step)
    pools = {h: store.get(h) for h in first_step}
    least = max(2, min_learners)
    usable = [h for h, pool in pools.items() if pool is not None and len(pool) >= least]
    if not usable:
        raise UserError(f"the run has no evaluated architecture with {least} stored learners")
    evaluator = store.evaluator
    chosen = [pools[h] for h in usable]
    return Candidates(
        steps=[first_step[h] for h in usable],
        hashes=usable,
        flops=np.array([p.flops for p in chosen], dtype=np.int64),  # type: ignore[union-attr]
        val=moments([p.val for p in chosen], evaluator.y_val),  # type: ignore[union-attr]
        test=moments([p.test for p in chosen], evaluator.y_test),  # type: ignore[union-attr]
        stats={} if members is None else {
            split: [statistics(getattr(p, split), y, members) for p in chosen]
            for split, y in (("val", evaluator.y_val), ("test", evaluator.y_test))
        },
        pooled=pooled,
    )  # fmt: skip


def incumbent_hash(records: list[Record]) -> str | None:
    adopted = [
        r.arch_hash for r in records if r.arch_hash and (r.accepted or r.event == "baseline")
    ]
    return adopted[-1] if adopted else None


def analyse(
    c: Candidates,
    members: int,
    max_architectures: int | None,
    max_flops: int | None,
    tolerance: float,
    incumbent: str | None,
) -> EnsembleResult:
    limit = max_architectures or len(c.hashes)
    by_optimiser = best_mixture(c.val, members, limit)
    best = _lowest(c.val, by_optimiser.values())
    pool = _ensembles_of_every_size(c, members, limit, max_flops)
    affordable = [counts for counts in pool if max_flops is None or counts @ c.flops <= max_flops]
    if max_flops is not None:
        if not affordable:
            cheapest = int(c.flops.min())
            raise UserError(
                f"no ensemble fits --max-flops {max_flops}: one member of the cheapest "
                f"architecture costs {cheapest:,} FLOPs per example"
            )
        best = _lowest(c.val, affordable)
    homogeneous = _homogeneous(c, members, int(np.argmin(c.val.C.diagonal() + c.val.D / members)))
    current = c.hashes.index(incumbent) if incumbent in c.hashes else None
    return EnsembleResult(
        members=members,
        candidates=len(c.hashes),
        tolerance=tolerance,
        max_architectures=max_architectures,
        max_flops=max_flops,
        optimisers={name: mixture_error(c.val, counts) for name, counts in by_optimiser.items()},
        mixture=c.choice(best),
        homogeneous=c.choice(homogeneous),
        incumbent=None if current is None else c.choice(_homogeneous(c, members, current)),
        pruned=_pruned(c, members, pool, mixture_error(c.val, best) * (1 + tolerance)),
        front=[c.choice(counts) for counts in _front(c, pool)],
    )


def best_counts(c: Candidates, members: int, limit: int | None = None) -> np.ndarray:
    """Members per candidate of the best mixture on validation, whichever optimiser found it."""
    return _lowest(c.val, best_mixture(c.val, members, limit).values())


def _lowest(m: Moments, mixtures) -> np.ndarray:
    return min(mixtures, key=lambda counts: mixture_error(m, counts))


def _homogeneous(c: Candidates, members: int, a: int) -> np.ndarray:
    counts = np.zeros(len(c.hashes))
    counts[a] = members
    return counts


def _ensembles_of_every_size(
    c: Candidates, members: int, limit: int, max_flops: int | None
) -> list[np.ndarray]:
    """For every size 1..M: the best mixture found, and every architecture alone (cheap
    architectures repeated can be on the cost front); with a FLOPs budget, also greedy
    selection that never exceeds it."""
    pool = []
    for size, start in enumerate(greedy(c.val, members, limit), start=1):
        found = [local_search(c.val, start, limit), *best_mixture(c.val, size, limit).values()]
        pool.append(_lowest(c.val, found))
        pool += [_homogeneous(c, size, a) for a in range(len(c.hashes))]
    if max_flops is not None:
        pool += _greedy_within(c, members, limit, max_flops)
    return pool


def _greedy_within(c: Candidates, members: int, limit: int, budget: int) -> list[np.ndarray]:
    counts = np.zeros(len(c.hashes))
    path = []
    for _ in range(members):
        trials = []
        for a in range(len(c.hashes)):
            trial = counts.copy()
            trial[a] += 1
            if trial @ c.flops <= budget and np.count_nonzero(trial) <= limit:
                trials.append(trial)
        if not trials:
            break
        counts = _lowest(c.val, trials)
        path.append(counts)
    return path


def _pruned(c: Candidates, members: int, pool: list[np.ndarray], threshold: float) -> Pruned:
    within = [counts for counts in pool if mixture_error(c.val, counts) <= threshold]
    by_size = [counts for counts in within if counts.sum() <= members]
    fewest_members = min(by_size, key=lambda counts: (counts.sum(), mixture_error(c.val, counts)))
    fewest_architectures = _fewest_architectures(c, members, threshold)
    cheapest = min(within, key=lambda counts: (counts @ c.flops, mixture_error(c.val, counts)))
    return Pruned(
        members=c.choice(fewest_members),
        architectures=c.choice(fewest_architectures),
        flops=c.choice(cheapest),
    )


def _fewest_architectures(c: Candidates, members: int, threshold: float) -> np.ndarray:
    """Bisection on the architecture limit: the best error only falls as the limit grows."""
    low, high = 1, len(c.hashes)
    found = {high: best_counts(c, members, high)}
    while low < high:
        middle = (low + high) // 2
        found[middle] = best_counts(c, members, middle)
        if mixture_error(c.val, found[middle]) <= threshold:
            high = middle
        else:
            low = middle + 1
    return found[high]


def _front(c: Candidates, pool: list[np.ndarray]) -> list[np.ndarray]:
    """Non-dominated in (inference cost, predicted validation error); the cost is FLOPs
    where the evaluator reports them, the member count where it does not."""
    cost = (lambda counts: counts @ c.flops) if c.flops.any() else (lambda counts: counts.sum())
    front: list[np.ndarray] = []
    for counts in sorted(pool, key=lambda counts: (cost(counts), mixture_error(c.val, counts))):
        if not front or mixture_error(c.val, counts) < mixture_error(c.val, front[-1]):
            front.append(counts)
    return front


def read_ensemble(folder: Path) -> EnsembleResult:
    path = folder / ENSEMBLE
    if not path.is_file():
        raise UserError(f"{path} is missing: run `edas-agent ensemble {folder}` first")
    return EnsembleResult.model_validate(json.loads(path.read_text()))
