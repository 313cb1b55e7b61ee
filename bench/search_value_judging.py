"""bench/search_value.py's judge: realised ensembles of fresh members, the compute an arm
spent, and what its accepted steps did."""

from __future__ import annotations

import json
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

# The public API only, as a user's script would use it: edas_agent's names and those its
# subpackages export
from edas_agent import Outcome, Record, build_evaluator, canonical_hash, load_config
from edas_agent.analysis import best_counts, load_candidates, realised_error, rejudge
from edas_agent.search import mixture_of
from edas_agent.theory import ensemble_error
from edas_agent.training import LearnerStore

JUDGE_FIRST = 1_000_000  # learner indices of the judge; a search uses 0 .. a few dozen


FRACTIONS = (0.25, 0.5, 1.0)  # of the compute, for the anytime view
TRIALS_LEVEL = 50  # Optuna's usual tens of trials: the compute of this many is a budget level


def learner_epochs(record: Record) -> float:
    """Training compute of one record: learners trained times their epochs (1 for spaces
    without a `training.epochs`); a learner screening trained part of its schedule counts
    that fraction of it."""
    training = (record.architecture or {}).get("training") or {}
    return record.cost.learner_equivalents * int(training.get("epochs", 1))


# What "equal compute" counts (--compute): training TFLOP as the evaluator reports them,
# what users pay for (the default); learner-epochs, blind to model size (the unit before);
# measured training hours, which vary with the machine's load
UNITS = {
    "tflop": lambda record: record.cost.train_flops / 1e12,
    "learner-epochs": learner_epochs,
    "hours": lambda record: record.cost.train_seconds / 3600,
}


class Spent:
    """An arm's running spend in every unit, and whether it has reached the reference's:
    `cap` in --compute's unit and, with --also, `also`'s caps too (it stops once all are)."""

    def __init__(self, unit: str, cap: float | None, also: dict[str, float] | None = None):
        self.unit, self.caps = unit, {**(also or {}), **({unit: cap} if cap is not None else {})}
        self.totals = dict.fromkeys(UNITS, 0.0)

    def add(self, record: Record) -> float:
        """Counts `record`; returns the spend so far in --compute's unit."""
        for name, of in UNITS.items():
            self.totals[name] += of(record)
        return self.totals[self.unit]

    def reached(self) -> bool:
        return bool(self.caps) and all(self.totals[u] >= c for u, c in self.caps.items())


def new_architectures(records: list[Record]) -> int:
    """Distinct architectures a search trained, to a stage or fully: what it really judged.
    A repeat (an architecture seen before: its learners are reused, or a pruned one is
    screened again), an invalid proposal and a candidate the predictor skipped untrained
    add nothing."""
    return len(
        {
            r.arch_hash
            for r in records
            if r.event == "proposal"
            and r.arch_hash is not None
            and r.cached_from is None
            and r.status != "invalid"
            and not (r.screening is not None and r.screening.pruned_at == -1)
        }
    )


Parts = list[tuple[dict[str, Any], int]]  # an ensemble: (architecture, members) per part


@dataclass
class Searched:
    arm: str
    seed: int
    folder: Path
    records: list[Record]
    wall_s: float
    spend: list[float] = field(default_factory=list)  # cumulative compute per record, --compute
    # every unit's total, for the tables (the spend above is in one of them)
    totals: dict[str, float] = field(default_factory=dict)
    # the mixture arm's incumbents: (architecture, members) parts per share of the compute
    mixtures: dict[float, Parts] = field(default_factory=dict)

    @property
    def compute(self) -> float:
        return self.spend[-1]

    def judged_at(self, share: float, reference_compute: int) -> dict[str, Any] | Parts:
        """What the judge measures after `share` of the reference's compute."""
        return self.mixtures[share] if self.mixtures else self.incumbent(share * reference_compute)

    def save(self, folder: Path) -> None:
        """Kept under `folder` as it finishes, so a stopped benchmark rerun with the same
        --out takes the searches that finished instead of running them again."""
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "arm": self.arm, "seed": self.seed, "folder": str(self.folder),
            "records": [r.model_dump(mode="json") for r in self.records],
            "wall_s": self.wall_s, "spend": self.spend, "totals": self.totals,
        }  # fmt: skip
        path = folder / f"{self.arm}-{self.seed}.json"
        path.with_suffix(".tmp").write_text(json.dumps(document))
        path.with_suffix(".tmp").replace(path)  # a stop mid-write leaves no torn file

    @classmethod
    def load(cls, folder: Path, arm: str, seed: int, unit: str) -> Searched | None:
        """A finished search, its spend counted again in `unit` (--compute's now): a piece
        run before with another --compute saved its spend in that one."""
        path = folder / f"{arm}-{seed}.json"
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        records = [Record.model_validate(r) for r in document["records"]]
        searched = cls(arm, seed, Path(document["folder"]), records, document["wall_s"],
                       [], document["totals"])  # fmt: skip
        return replace(searched, spend=searched.spend_in(unit))

    def spend_in(self, unit: str) -> list[float]:
        """Cumulative compute per record in any of UNITS (the spend is in --compute's)."""
        return np.cumsum([UNITS[unit](r) for r in self.records]).tolist()

    def incumbent(self, compute: float, unit: str | None = None) -> dict[str, Any]:
        """The adopted architecture once `compute` (in `unit`; by default the spend's) was
        spent."""
        current = self.records[0].architecture
        spend = self.spend if unit is None else self.spend_in(unit)
        for record, spent in zip(self.records, spend, strict=True):
            if spent > compute:
                break
            if record.event == "proposal" and record.accepted:
                current = record.architecture
        assert current is not None
        return current


class Judge:
    """Realised test (and validation) error of `members` fresh members of an architecture,
    cached by seed and architecture in judge.json. Judgements are trained in the worker
    pool as soon as a search finishes (`submit`), beside the searches still running; `error`
    reads the cache and trains only what is missing."""

    def __init__(self, path: Path, members: int):
        self.path, self.members = path, members
        self.cache: dict[str, dict[str, float]] = (
            json.loads(path.read_text()) if path.is_file() else {}
        )
        self.submitted: set[str] = set()

    def parts(self, judged: dict[str, Any] | Parts) -> Parts:
        """An architecture (all members of it) or a mixture, as parts."""
        return [(judged, self.members)] if isinstance(judged, dict) else judged

    def key(self, seed: int, judged: dict[str, Any] | Parts, first: int) -> str:
        parts = self.parts(judged)
        if len(parts) == 1:
            return f"{seed}:{first}:{self.members}:{canonical_hash(parts[0][0])}"
        mixed = canonical_hash({"parts": [[canonical_hash(d), n] for d, n in parts]})
        return f"{seed}:{first}:{self.members}:mixture-{mixed}"

    def submit(self, pool: Executor, overrides: dict[str, Any], judged, first: int):
        """A future of (key, errors), or None when it is known or on its way."""
        key = self.key(overrides["seed"], judged, first)
        if key in self.cache or key in self.submitted:
            return None
        self.submitted.add(key)
        return pool.submit(judged_ensemble, key, overrides, self.parts(judged), first)

    def store(self, key: str, errors: dict[str, float]) -> None:
        self.cache[key] = errors
        self.path.write_text(json.dumps(self.cache, indent=1))

    def error(self, overrides: dict[str, Any], judged, first: int = JUDGE_FIRST) -> float:
        """`overrides` are the config's, as `submit` got them (they name the seed)."""
        key = self.key(overrides["seed"], judged, first)
        if key not in self.cache:
            self.store(*judged_ensemble(key, overrides, self.parts(judged), first))
        return self.cache[key]["test"]


_EVALUATORS: dict[str, Any] = {}  # per process: each seed's data is loaded and encoded once


def evaluator_for(overrides: dict[str, Any]):
    settings = json.dumps(overrides, sort_keys=True)
    if settings not in _EVALUATORS:
        _EVALUATORS[settings] = build_evaluator(load_config(None, {}, overrides))
    return _EVALUATORS[settings]


def judged_ensemble(key: str, overrides: dict[str, Any], parts: Parts,
                    first: int) -> tuple[str, dict[str, float]]:  # fmt: skip
    """Trains fresh members, every one with its own learner index (first, first+1, ...
    across the parts), and measures their averaged ensemble; runs in a worker."""
    evaluator = evaluator_for(overrides)
    val, test = [], []
    for document, members in parts:
        evaluation = evaluator.evaluate(evaluator.parse(document), members, first=first)
        val.append(evaluation.val_predictions)
        test.append(evaluation.test_predictions)
        first += members
    every_member = np.random.default_rng(0)  # unused: with all members there is one subset
    members = sum(n for _, n in parts)
    return key, {
        "test": realised_error(np.concatenate(test), evaluator.y_test, members, every_member),
        "val": realised_error(np.concatenate(val), evaluator.y_val, members, every_member),
    }


def best_mixtures(
    run: Searched, overrides: dict[str, Any], members: int, min_learners: int
) -> dict[float, Parts]:
    """The best mixture of `members` members (on validation, agent/analysis/ensemble.py) over the
    architectures `run` had evaluated after each share of its compute."""
    evaluator = evaluator_for(overrides)
    store = LearnerStore(evaluator, run.folder / "learners")
    documents = {r.arch_hash: r.architecture for r in run.records if r.arch_hash}
    mixtures = {}
    for share in FRACTIONS:
        # the start always counts, as it does for incumbent(): it is where every arm begins
        so_far = [r for i, (r, spent) in enumerate(zip(run.records, run.spend, strict=True))
                  if i == 0 or spent <= share * run.compute]  # fmt: skip
        mixtures[share] = best_parts(load_candidates(so_far, store, min_learners), documents,
                                     members)  # fmt: skip
    return mixtures


def incumbent_mixtures(
    run: Searched, overrides: dict[str, Any], members: int, reference_compute: int
) -> dict[float, Parts]:
    """A mixture search's incumbent mixture after each share of the reference's compute,
    re-optimised for `members` members (the search optimised it for the run's M) over that
    mixture's architectures, from the stored learners, on validation."""
    store = LearnerStore(evaluator_for(overrides), run.folder / "learners")
    documents = {r.arch_hash: r.architecture for r in run.records if r.arch_hash}
    mixtures = {}
    for share in FRACTIONS:
        incumbent = run.records[0]
        for record, spent in zip(run.records, run.spend, strict=True):
            if spent <= share * reference_compute and record.accepted:
                incumbent = record
        parts = mixture_of(incumbent)
        hashes = {p.arch_hash for p in parts}
        candidates = load_candidates([r for r in run.records if r.arch_hash in hashes], store)
        mixtures[share] = best_parts(candidates, documents, members)
    return mixtures


def best_parts(candidates, documents: dict[str, Any], members: int) -> Parts:
    counts = best_counts(candidates, members)
    chosen = zip(candidates.hashes, counts, strict=True)
    return [(documents[h], int(n)) for h, n in chosen if n]


def accepted_records(run: Searched) -> list[Record]:
    return [
        r for r in run.records
        if r.event == "proposal" and r.accepted and r.baseline is not None
    ]  # fmt: skip


def accepted_steps(run: Searched) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(accepted architecture, the baseline it replaced) for each accepted step."""
    documents = {r.step: r.architecture for r in run.records}
    return [(r.architecture, documents[r.baseline.step]) for r in accepted_records(run)]


def accepted_gains_at(run: Searched, members: int) -> list[float]:
    """For each accepted step, the change of E_M at `members` that the gate's own statistics
    predicted (its last round against its baseline). Positive where the gain it accepted
    at the gate's M was predicted only for ensembles larger than `members`, so a judge of
    `members` scores it as a loss even when the gate was right about its own M."""
    return [
        ensemble_error(last.E, last.D, members) - ensemble_error(base.E, base.D, members)
        for record in accepted_records(run)
        for last, base in [(record.rounds[-1].stats, record.baseline.stats)]
    ]


def accepted_steps_that_improved(
    run: Searched, judge: Judge, overrides: dict[str, Any]
) -> list[bool]:
    """For each accepted step: is its realised ensemble better than its baseline's?"""
    return [
        judge.error(overrides, after) < judge.error(overrides, before)
        for after, before in accepted_steps(run)
    ]


def audit_pruning(run: Searched, overrides: dict[str, Any], sample: int) -> dict[str, Any]:
    """Full training and the gate (decision, then confirmation) for a random sample of a
    screening run's pruned candidates, against the baseline each was screened against:
    those it would have accepted are the pruning's false negatives."""
    pruned = [r for r in run.records if r.status == "pruned"]
    rng = np.random.default_rng(overrides["seed"])
    chosen = sorted(rng.choice(len(pruned), size=min(sample, len(pruned)), replace=False))
    steps = [pruned[int(index)].step for index in chosen]
    judged = rejudge(run.folder, run.records, steps, evaluator_for(overrides))
    by_step = {r.step: r for r in run.records}
    would: list[dict[str, Any]] = []
    for step, result in judged.items():
        if not isinstance(result, Outcome) and result.rounds[-1].accepted:
            trace = by_step[step].screening
            assert trace is not None
            would.append({"step": step, "pruned_by": trace.pruned_by, "stage": trace.pruned_at,
                          "E_M": result.rounds[-1].stats.E_M})  # fmt: skip
    return {"audited": len(chosen), "would_accept": would}


def wanted(
    run: Searched, reference_compute: int, reference: bool, steps: bool,
    also: tuple[str, float] | None = None,
) -> list[tuple[dict, int]]:  # fmt: skip
    """(architecture, first learner index) of every judgement this run's rows will need;
    `also`: (a second unit, the reference's total in it)."""
    needs = [(run.judged_at(f, reference_compute), JUDGE_FIRST) for f in FRACTIONS]
    if also is not None and not run.mixtures:
        needs += [(run.incumbent(f * also[1], also[0]), JUDGE_FIRST) for f in FRACTIONS]
    if reference:
        start = run.records[0].architecture
        final = run.incumbent(run.compute)  # the judge's noise, on the start and on a winner
        needs += [(start, JUDGE_FIRST), (start, JUDGE_FIRST + 10_000)]
        needs += [(final, JUDGE_FIRST + 10_000)]
    if steps:  # each accepted step's baseline and candidate, judged
        needs += [(d, JUDGE_FIRST) for step in accepted_steps(run) for d in step]
    return needs


def at_equal(
    run: Searched, ref: Searched, unit: str, judge: Judge, config: dict[str, Any]
) -> dict[str, Any]:
    """The run judged at the reference's compute in a second currency (--also): its
    incumbents after each share of it, and what it spent in that unit against the
    reference (below 1: it stopped before reaching it, so the comparison is cut short)."""
    total = ref.totals[unit]
    anytime = {str(f): judge.error(config, run.incumbent(f * total, unit)) for f in FRACTIONS}
    return {"unit": unit, "reference_total": total, "final_error": anytime["1.0"],
            "anytime": anytime, "compute_ratio": run.totals[unit] / total}  # fmt: skip
