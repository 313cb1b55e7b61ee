"""Does the search pay? Realised ensemble quality at equal training compute, per search arm.

A benchmark that prints and writes tables, not a test. For each search seed, every arm
searches from the same starting architecture with the same training compute, counted in
learner-epochs (a learner trained for e epochs costs e; wall time is reported too). The
`edas` arm runs `--budget` proposals and sets the compute; every other arm stops after the
first step that reaches it. Then a judge no arm sees trains `--members` fresh members (seeds
no search uses) of each arm's final architecture, and of the incumbents after 25 % and 50 %
of the compute, and measures the realised ensemble's squared error on the test split.

    python bench/search_value.py --seeds 3 --budget 50                     # built-in Adult
    python bench/search_value.py --data synthetic:200000:24 --seeds 3 --budget 50
    python bench/search_value.py --arms edas,random --seeds 1 --budget 10  # a quick look
    python bench/search_value.py --seeds 6 --first-seed 6 ...     # fresh seeds 6 .. 11
    python bench/search_value.py --set gate.min_effect=null ...   # arms over another base

Arms (`--arms`, comma-separated):
    edas           the default configuration (--set changes it, and every arm with it);
                   its gate.min_effect 0.5 asks every predicted gain to reach half the seed
                   noise measured on the starting baseline
    confident      the default + gate.confidence 0.9
    sequential     the default + gate.sequential (two more learners while unsure)
    no-floor       the default without the floor (gate.min_effect null: the old default)
    min-effect-1   the default with a floor of one seed noise (gate.min_effect 1)
    accuracy-only  the same proposer and learners judged by single-learner error (M = 1)
    random         architectures drawn from the space, two learners each; the gate keeps
                   the best predicted E_M
    honest         candidates judged by really trained m-member ensembles (--honest-members,
                   the gate with M = k = m is exactly the realised m-ensemble error), so it
                   sees about 2/m as many candidates
    mixture        no search of its own: the best mixture of --members members over every
                   architecture the edas arm evaluated (agent/ensemble.py), chosen on
                   validation from the stored learners, at no extra training
    mixture-confirmed   the same over the architectures with >= 4 learners (those that
                   reached confirmation), as `edas-agent ensemble --min-learners 4`
    mixture-search the default with search.target mixture: a search whose baseline is a
                   mixture and whose gate accepts newcomers that lower the mixture's
                   predicted error; judged on its incumbent mixture, re-optimised for
                   --members members over that mixture's architectures on validation
    screening      the default + multi-fidelity screening (agent/staging.py): rounds of 9
                   proposals trained to 1/9 and 1/3 of their schedule, a third kept at each
                   stage, only survivors fully trained and judged; partial training is
                   counted at its fraction. --audit N trains N of its pruned candidates
                   fully and judges them: the pruning's false negatives
    screening-eta4 the same with rounds of 16, stages at 1/16 and 1/4, a quarter kept
    screening-gentle  rounds of 9, one stage at 1/3 of the schedule, a third kept
    screening-curve-only  screening without the fused predictor (the curve model ranks)
    screening-one-stage   rounds of 9, one stage at 1/9 of the schedule, a third kept
    screening-wide rounds of 16, one stage at 1/16 of the schedule, the best 2 kept
    screening-ninth   rounds of 9, one stage at 1/9 of the schedule, the best 1 kept
    screening-independent, screening-eta4-independent, screening-wide-independent
                   the same three with screening.stage_seeds independent: stages train
                   learners of their own and a survivor's full training starts again on the
                   gate's seeds (the others: stages train the gate's learners, which go on)
    screening-survivors4, screening-eta4-survivors4, screening-wide-survivors4
                   the same three with screening.survivor_learners 4: a survivor's decision
                   round has two fresh learners besides the two its stages trained
    screening-reach3, screening-reach4, screening-eta4-survivors4-reach3, ...-reach4
                   the same with screening.reach 3 or 4: a round's builtin proposals take
                   1 .. 3 or 1 .. 4 mutations in equal shares, instead of one or two
Writes results.json, tables.md and compute.png to --out (default runs/search_value/<data>);
judged ensembles are cached in judge.json there, so a rerun with more arms trains only what
is new.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edas_agent import RunSession, load_config
from edas_agent.cli_shared import DATA_OPTIONS, LIST_OPTIONS, parse_sets
from edas_agent.curves import t_quantile
from edas_agent.door import build_evaluator
from edas_agent.ensemble import best_counts, load_candidates
from edas_agent.evaluators.base import canonical_hash
from edas_agent.gate import ensemble_error, seed_noise_floor
from edas_agent.journal import Record, read_records
from edas_agent.judging import Judge as GateJudge
from edas_agent.judging import make_gate
from edas_agent.learners import Failed, LearnerStore
from edas_agent.staging import predictor_track
from edas_agent.state import Baseline, mixture_of
from edas_agent.verify import realised_error

JUDGE_FIRST = 1_000_000  # learner indices of the judge; a search uses 0 .. a few dozen
FRACTIONS = (0.25, 0.5, 1.0)  # of the compute, for the anytime view


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: dict[str, Any]
    sets_compute: bool = False  # the arm whose spend every other arm matches
    mixes_reference: bool = False  # no search: the best mixture of the reference's candidates
    searches_mixtures: bool = False  # its incumbent is a mixture (search.target mixture)
    min_learners: int = 2  # of the architectures a mixture may use


def arms(honest_members: int) -> dict[str, Arm]:
    m = honest_members
    screened = (
        Arm("screening", {"screening.enabled": True}),
        Arm(
            "screening-eta4",
            {"screening.enabled": True, "screening.proposals": 16, "screening.eta": 4},
        ),
        Arm(
            "screening-wide",
            {
                "screening.enabled": True,
                "screening.proposals": 16,
                "screening.eta": 8,
                "screening.stage_fractions": [1 / 16],
            },
        ),
    )
    ninth = {"screening.enabled": True, "screening.eta": 9, "screening.stage_fractions": [1 / 9]}
    independent = tuple(
        Arm(f"{a.name}-independent", {**a.overrides, "screening.stage_seeds": "independent"})
        for a in screened
    )
    surviving = tuple(
        Arm(f"{a.name}-survivors4", {**a.overrides, "screening.survivor_learners": 4})
        for a in screened
    )
    reaching = tuple(
        Arm(f"{a.name}-reach{r}", {**a.overrides, "screening.reach": r})
        for a in (screened[0], surviving[1])  # screening, screening-eta4-survivors4
        for r in (3, 4)
    )
    return {
        arm.name: arm
        for arm in (
            Arm("edas", {}, sets_compute=True),
            Arm("confident", {"gate.confidence": 0.9}),
            Arm("sequential", {"gate.sequential": True}),
            Arm("no-floor", {"gate.min_effect": None}),
            Arm("min-effect-1", {"gate.min_effect": 1.0}),
            Arm("accuracy-only", {"gate.rule": "single"}),
            Arm("random", {"llm.provider": "random"}),
            Arm("honest", {"members": m, "evaluator.learners": m, "gate.confirm": False}),
            Arm("mixture", {}, mixes_reference=True),
            Arm("mixture-confirmed", {}, mixes_reference=True, min_learners=4),
            Arm("mixture-search", {"search.target": "mixture"}, searches_mixtures=True),
            *screened,
            Arm("screening-gentle", {"screening.enabled": True, "screening.stages": 1}),
            Arm("screening-curve-only", {"screening.enabled": True, "screening.predictor": False}),
            Arm(
                "screening-one-stage",
                {"screening.enabled": True, "screening.stage_fractions": [1 / 9]},
            ),
            Arm("screening-ninth", ninth),
            *independent,
            *surviving,
            *reaching,
        )
    }


def learner_epochs(record: Record) -> float:
    """Training compute of one record: learners trained times their epochs (1 for spaces
    without a `training.epochs`); a learner screening trained part of its schedule counts
    that fraction of it."""
    training = (record.architecture or {}).get("training") or {}
    return record.cost.learner_equivalents * int(training.get("epochs", 1))


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
    spend: list[float] = field(default_factory=list)  # cumulative learner-epochs per record
    # the mixture arm's incumbents: (architecture, members) parts per share of the compute
    mixtures: dict[float, Parts] = field(default_factory=dict)

    @property
    def compute(self) -> float:
        return self.spend[-1]

    def judged_at(self, share: float, reference_compute: int) -> dict[str, Any] | Parts:
        """What the judge measures after `share` of the reference's compute."""
        return self.mixtures[share] if self.mixtures else self.incumbent(share * reference_compute)

    def incumbent(self, compute: float) -> dict[str, Any]:
        """The adopted architecture once `compute` learner-epochs were spent."""
        current = self.records[0].architecture
        for record, spent in zip(self.records, self.spend, strict=True):
            if spent > compute:
                break
            if record.event == "proposal" and record.accepted:
                current = record.architecture
        assert current is not None
        return current


def search(arm: Arm, seed: int, base: dict[str, Any], budget: int, cap: float | None) -> Searched:
    """One arm's search; with `cap`, it stops after the first step that reaches cap
    learner-epochs (its budget is then only a safety limit)."""
    overrides = {**base, "seed": seed, "budget": budget, "name": f"{arm.name}-{seed}",
                 **arm.overrides}  # fmt: skip
    config = load_config(None, {}, overrides)  # every value explicit: None is null
    spend: list[float] = []
    started = time.perf_counter()
    with RunSession.start(config) as session:

        def on_record(record: Record) -> None:
            spend.append((spend[-1] if spend else 0) + learner_epochs(record))
            if cap is not None and spend[-1] >= cap:
                session.search.stop_requested = True

        records = session.run(on_record)
        folder = session.journal.folder
    return Searched(arm.name, seed, folder, records, time.perf_counter() - started, spend)


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
    """The best mixture of `members` members (on validation, agent/ensemble.py) over the
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


def wanted(run: Searched, reference_compute: int, reference: bool) -> list[tuple[dict, int]]:
    """(architecture, first learner index) of every judgement this run's rows will need."""
    needs = [(run.judged_at(f, reference_compute), JUDGE_FIRST) for f in FRACTIONS]
    if reference:
        start = run.records[0].architecture
        final = run.incumbent(run.compute)  # the judge's noise, on the start and on a winner
        needs += [(start, JUDGE_FIRST), (start, JUDGE_FIRST + 10_000)]
        needs += [(final, JUDGE_FIRST + 10_000)]
    if not run.mixtures:
        needs += [(d, JUDGE_FIRST) for step in accepted_steps(run) for d in step]
    return needs


def run_searches(
    chosen: list[Arm], reference: Arm, options: argparse.Namespace, base: dict[str, Any],
    judge: Judge,
) -> dict[tuple[int, str], Searched]:  # fmt: skip
    """Every (seed, arm) search, `options.jobs` at a time: a seed's reference arm first,
    since it sets the compute of that seed's other arms. Each finished search sends its
    judgements to the same pool."""
    runs: dict[tuple[int, str], Searched] = {}
    spawn = multiprocessing.get_context("spawn")  # no forked torch thread pools
    pool = (
        ThreadPoolExecutor(1)  # in this process: no pickling, plain tracebacks
        if options.jobs == 1
        else ProcessPoolExecutor(options.jobs, mp_context=spawn)
    )
    with pool, _workers_end_with(pool):
        pending = {
            pool.submit(search, reference, seed, base, options.budget, None): seed
            for seed in options.seeds
        }
        while pending:
            done = next(as_completed(pending))
            seed = pending.pop(done)
            if seed is None:  # a judgement
                judge.store(*done.result())
                continue
            run = done.result()
            if catalogue_arm(chosen, run.arm).searches_mixtures:
                compute = runs[(seed, reference.name)].compute
                overrides = {**base, "seed": seed}
                mixtures = incumbent_mixtures(run, overrides, options.members, compute)
                run = replace(run, mixtures=mixtures)
            runs[(seed, run.arm)] = run
            print(f"seed {seed}: {run.arm}: {run.compute:.0f} learner-epochs, "
                  f"{sum(r.event == 'proposal' for r in run.records)} proposals, "
                  f"{run.wall_s:.0f} s", flush=True)  # fmt: skip
            finished = [run]
            if run.arm == reference.name:
                for arm in chosen:
                    if arm.mixes_reference:
                        overrides = {**base, "seed": seed}
                        mixtures = best_mixtures(run, overrides, options.members, arm.min_learners)
                        finished.append(replace(run, arm=arm.name, mixtures=mixtures))
                        runs[(seed, arm.name)] = finished[-1]
                    elif arm is not reference:
                        budget = options.budget * 20  # a safety limit: the compute stops it
                        pending[pool.submit(search, arm, seed, base, budget, run.compute)] = seed
            compute = runs[(seed, reference.name)].compute
            for searched in finished:
                for judged, first in wanted(searched, compute, searched.arm == reference.name):
                    future = judge.submit(pool, {**base, "seed": seed}, judged, first)
                    if future is not None:
                        pending[future] = None
    return runs


def catalogue_arm(chosen: list[Arm], name: str) -> Arm:
    return next(arm for arm in chosen if arm.name == name)


@contextmanager
def _workers_end_with(pool: Executor):
    """Stopping the benchmark (Ctrl-C, or SIGTERM, which main turns into SystemExit) ends
    its worker processes too, instead of leaving them to finish searches nobody reads."""
    try:
        yield
    except BaseException:
        processes = getattr(pool, "_processes", None) or {}  # no public way to stop a task
        for process in list(processes.values()):
            process.terminate()
        raise


def run_benchmark(options: argparse.Namespace) -> dict[str, Any]:
    catalogue = arms(options.honest_members)
    chosen = [catalogue[name] for name in options.arms]
    reference = next((a for a in chosen if a.sets_compute), None)
    if reference is None:
        sys.exit("--arms must include edas: it sets the compute every other arm gets")
    out: Path = options.out
    base = {**options.data, **options.sets, "runs_dir": str(out / "runs")}
    threads = max(1, (os.cpu_count() or 1) // options.jobs)
    base["evaluator.threads"] = threads
    judge = Judge(out / "judge.json", options.members)
    runs = run_searches(chosen, reference, options, base, judge)
    rows: list[dict[str, Any]] = []
    for seed in options.seeds:
        config = {**base, "seed": seed}  # what the judgements were submitted with
        ref = runs[(seed, reference.name)]
        start_doc = ref.records[0].architecture  # every arm's starting baseline
        start_error = judge.error(config, start_doc)
        judge_noise = abs(judge.error(config, start_doc, JUDGE_FIRST + 10_000) - start_error)
        for arm in chosen:
            run = runs[(seed, arm.name)]
            anytime = {
                str(f): judge.error(config, run.judged_at(f, ref.compute)) for f in FRACTIONS
            }
            row = {
                "seed": seed, "arm": run.arm, "folder": str(run.folder),
                "start_error": start_error, "judge_noise": judge_noise,
                "final_error": anytime["1.0"], "anytime": anytime,
                "compute": run.compute, "compute_ratio": run.compute / ref.compute,
                "wall_s": run.wall_s,
                "proposals": sum(r.event == "proposal" for r in run.records),
                "new_architectures": new_architectures(run.records),
                "accepted": sum(r.event == "proposal" and r.accepted for r in run.records),
                "pruned": sum(r.status == "pruned" for r in run.records),
                "full_evaluations": sum(bool(r.rounds) for r in run.records),
                "gate_members": run.records[0].members,
            }  # fmt: skip
            if row["pruned"]:
                track = predictor_track(run.records)
                row["predictor_track"] = track
                if options.audit:
                    row["audit"] = audit_pruning(run, config, options.audit)
            if not run.mixtures:
                row["accepted_improved"] = accepted_steps_that_improved(run, judge, config)
                row["accepted_gain_at_judge"] = accepted_gains_at(run, options.members)
            if run.arm == reference.name:
                final = run.incumbent(run.compute)
                second = judge.error(config, final, JUDGE_FIRST + 10_000)
                row["judge_noise_final"] = abs(second - row["final_error"])
            if run.mixtures:
                row["architectures"] = len(run.mixtures[1.0])
            rows.append(row)
            print(f"seed {seed}: {run.arm}: realised test error {row['final_error']:.5f} "
                  f"(start {start_error:.5f})", flush=True)  # fmt: skip
    return {"options": _jsonable(options), "rows": rows}


def audit_pruning(run: Searched, overrides: dict[str, Any], sample: int) -> dict[str, Any]:
    """Full training and the gate (decision, then confirmation) for a random sample of a
    screening run's pruned candidates, against the baseline each was screened against:
    those it would have accepted are the pruning's false negatives."""
    pruned = [r for r in run.records if r.status == "pruned"]
    rng = np.random.default_rng(overrides["seed"])
    chosen = sorted(rng.choice(len(pruned), size=min(sample, len(pruned)), replace=False))
    config = load_config(run.folder / "config.yaml", {})
    evaluator = evaluator_for(overrides)
    gate = make_gate(config)
    if config.gate.min_effect is not None:
        gate.min_effect = seed_noise_floor(run.records[0].stats, config.gate.min_effect)
    store = LearnerStore(evaluator, run.folder / "learners")
    judge = GateJudge(config, gate, store, evaluator)
    by_step = {r.step: r for r in run.records}
    would: list[dict[str, Any]] = []
    for index in chosen:
        record = pruned[index]
        assert record.baseline is not None and record.architecture is not None
        baseline = Baseline.of(by_step[record.baseline.step], evaluator.parse)
        judged = judge.rounds(baseline, record.step, evaluator.parse(record.architecture))
        if not isinstance(judged, Failed) and judged.rounds[-1].accepted:
            assert record.screening is not None
            would.append({"step": record.step, "pruned_by": record.screening.pruned_by,
                          "stage": record.screening.pruned_at,
                          "E_M": judged.rounds[-1].stats.E_M})  # fmt: skip
    return {"audited": len(chosen), "would_accept": would}


def tables(result: dict[str, Any]) -> str:
    rows, options = result["rows"], result["options"]
    arms_seen = list(dict.fromkeys(r["arm"] for r in rows))
    M = options["members"]
    lines = [
        f"Data `{options['data'].get('data.path', 'adult')}`, seeds {options['seeds']}, "
        f"budget {options['budget']} (edas), judge: {M} fresh members, squared error (Brier "
        "score for classification) of the averaged ensemble on the test split. Mean ± sd "
        "over seeds; improvement is relative to the starting architecture, paired by seed. "
        "The 90 % interval is of the mean paired difference (Student t over seeds): an arm "
        "is resolved better or worse than edas only where it excludes 0.",
        "",
        f"| arm | realised test error ({M} members) | improvement over start | minus edas, "
        "paired | 90 % interval | seeds better than edas | proposals | accepted | "
        "learner-epochs (ratio to edas) | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    edas = {r["seed"]: r["final_error"] for r in rows if r["arm"] == "edas"}
    for arm in arms_seen:
        mine = [r for r in rows if r["arm"] == arm]
        final = np.array([r["final_error"] for r in mine])
        gain = np.array([(r["start_error"] - r["final_error"]) / r["start_error"] for r in mine])
        versus = np.array([r["final_error"] - edas[r["seed"]] for r in mine])
        paired = (
            "- | - | -" if arm == "edas"
            else f"{_mean_sd(versus, 5)} | {_interval(versus, 0.9)} | "
            f"{sum(v < 0 for v in versus)}/{len(versus)}"
        )  # fmt: skip
        lines.append(
            f"| {arm} | {_mean_sd(final, 5)} | {_mean_sd(gain * 100, 2)} % | {paired} | "
            f"{np.mean([r['proposals'] for r in mine]):.0f} | "
            f"{np.mean([r['accepted'] for r in mine]):.1f} | "
            f"{np.mean([r['compute'] for r in mine]):.0f} "
            f"({np.mean([r['compute_ratio'] for r in mine]):.2f}) | "
            f"{np.mean([r['wall_s'] for r in mine]):.0f} |"
        )
    starts = {r["seed"]: (r["start_error"], r["judge_noise"]) for r in rows}
    noise = np.mean([n for _, n in starts.values()])
    finals = [r["judge_noise_final"] for r in rows if "judge_noise_final" in r]
    lines += [
        "",
        f"Start: {_mean_sd(np.array([s for s, _ in starts.values()]), 5)}. Judge noise: two "
        f"independent {M}-member ensembles of the start differ by {noise:.5f} on average "
        "(differences between arms below that are not resolved)"
        + (
            f"; on the edas arm's final architectures they differ by {np.mean(finals):.5f}."
            if finals
            else "."
        ),
        *_sizes_differ(rows, M),
        "",
        "Anytime: realised test error of each arm's incumbent after a share of the compute.",
        "",
        "| arm | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " |",
        "|---|" + "---:|" * len(FRACTIONS),
    ]
    for arm in arms_seen:
        mine = [r for r in rows if r["arm"] == arm]
        cells = [_mean_sd(np.array([r["anytime"][str(f)] for r in mine]), 5) for f in FRACTIONS]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    for arm in arms_seen:
        mixed = [r["architectures"] for r in rows if r["arm"] == arm and "architectures" in r]
        if not mixed:
            continue
        whose = " (proposals and accepted: the edas search it mixes)" if arms(8)[
            arm].mixes_reference else ""  # fmt: skip
        lines += ["", f"The {arm} arm's final mixtures hold {np.mean(mixed):.1f} architectures "
                  f"on average{whose}."]  # fmt: skip
    lines += _screening_table(rows, arms_seen)
    lines += _accepted_steps_table(rows, arms_seen, M)
    return "\n".join(lines) + "\n"


def _sizes_differ(rows: list[dict], members: int) -> list[str]:
    """A warning when the edas gate was asked about another ensemble size than the judge's."""
    asked = {r["gate_members"] for r in rows if r["arm"] == "edas" and "gate_members" in r}
    if not asked or asked == {members}:
        return []
    return ["", f"The gate predicted E_M at M = {', '.join(map(str, sorted(asked)))} and the "
            f"judge builds {members} members: a step accepted for a gain that exists only in "
            "larger ensembles is scored here as a loss, and an arm that judges more proposals "
            f"finds more such steps. `--set members={members}` asks the gate for the judge's "
            "size."]  # fmt: skip


def _accepted_steps_table(rows: list[dict], arms_seen: list[str], members: int) -> list[str]:
    """Per arm, its accepted steps whose realised ensemble beat their baseline's: how often
    the gate's acceptances were real (a low share means it adopted lucky seeds). Of those
    that were not, how many the gate itself predicted to be worse at the judge's M (a gain
    accepted for a larger ensemble than the judge builds, not only a lucky seed)."""
    cells = []
    for arm in arms_seen:
        mine = [r for r in rows if r["arm"] == arm and "accepted_improved" in r]
        if not mine:
            continue
        verdicts = [v for r in mine for v in r["accepted_improved"]]
        share = f" ({np.mean(verdicts):.0%})" if verdicts else ""
        cells.append(f"| {arm} | {sum(verdicts)}/{len(verdicts)}{share} | "
                     f"{_worse_at_judge(mine)} |")  # fmt: skip
    if not cells:
        return []
    return ["", f"Accepted steps whose realised {members}-member test error beat their "
            "baseline's:", "", "| arm | accepted steps that were real improvements | of the "
            f"others, predicted worse at {members} members by the gate's own statistics |",
            "|---|---:|---:|", *cells]  # fmt: skip


def _worse_at_judge(rows: list[dict]) -> str:
    if any("accepted_gain_at_judge" not in r for r in rows):
        return "-"  # results written before it was recorded
    unreal = [gain for r in rows
              for real, gain in zip(r["accepted_improved"], r["accepted_gain_at_judge"],
                                    strict=True) if not real]  # fmt: skip
    return f"{sum(g >= 0 for g in unreal)}/{len(unreal)}"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        # Relative to each seed's start: the seeds' splits differ more than the arms do.
        curve = np.array([[0.0] + [100 * (1 - r["anytime"][str(f)] / r["start_error"])
                                   for f in FRACTIONS] for r in mine])  # fmt: skip
        x = [0.0, *FRACTIONS]
        axes.errorbar(x, curve.mean(axis=0), yerr=curve.std(axis=0), label=arm, capsize=3,
                      marker="o")  # fmt: skip
    axes.set_xlabel("share of the training compute (learner-epochs of the edas arm)")
    axes.set_ylabel(f"% lower realised test error than the start\n"
                    f"({result['options']['members']} fresh members)")  # fmt: skip
    axes.set_title("Incumbent improvement against compute (mean ± sd over seeds)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


_SETUP = ("data", "sets", "seeds", "budget", "members", "honest_members")


def _screening_table(rows: list[dict], arms_seen: list[str]) -> list[str]:
    """Screening arms: proposals per edas proposal, where they went, the audit of the pruned
    and the predictor's last rank correlation with realised E_M (per seed)."""
    screened = [a for a in arms_seen if any("full_evaluations" in r and r["pruned"]
                                            for r in rows if r["arm"] == a)]  # fmt: skip
    if not screened:
        return []
    edas = {r["seed"]: r for r in rows if r["arm"] == "edas"}
    lines = ["", "Screening: proposals per edas proposal at the same compute, and new "
             "architectures judged (trained to a stage or fully; repeats, invalid proposals "
             "and untrained skips not counted) per edas one; pruned, fully trained, pruned "
             "candidates an audit trained fully and the gate would have accepted (false "
             "negatives), and the fused predictor's Spearman rank correlation with realised "
             "full-training E_M at the end of each run.", "",
             "| arm | proposals / edas | new architectures / edas | pruned | fully trained | "
             "false negatives | predictor rank correlation |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for arm in screened:
        mine = [r for r in rows if r["arm"] == arm and "full_evaluations" in r]
        ratio = np.mean([r["proposals"] / edas[r["seed"]]["proposals"] for r in mine])
        counted = [(_new(r), _new(edas[r["seed"]])) for r in mine]
        new = (
            np.mean([a / b for a, b in counted if a and b])
            if all(all(c) for c in counted)
            else None
        )
        audits = [r["audit"] for r in mine if "audit" in r]
        audited = sum(a["audited"] for a in audits)
        missed = sum(len(a["would_accept"]) for a in audits)
        fn = f"{missed}/{audited} ({missed / audited:.0%})" if audited else "-"
        last = [r["predictor_track"][-1][2] for r in mine if r.get("predictor_track")]
        track = ", ".join("-" if c is None else f"{c:.2f}" for c in last) or "-"
        lines.append(
            f"| {arm} | {ratio:.1f}x | {'-' if new is None else f'{new:.1f}x'} | "
            f"{np.mean([r['pruned'] for r in mine]):.0f} | "
            f"{np.mean([r['full_evaluations'] for r in mine]):.0f} | {fn} | {track} |"
        )
    return lines


def _new(row: dict) -> int | None:
    """A row's new architectures, counted from its run's folder for rows written before
    the count was kept (None when that folder is not where it was)."""
    if "new_architectures" not in row:
        folder = Path(row["folder"])
        if not (folder / "trajectory.jsonl").is_file():
            return None
        row["new_architectures"] = new_architectures(read_records(folder))
    return row["new_architectures"]


def _with_earlier_arms(options: argparse.Namespace, rows: list[dict]) -> list[dict]:
    """Rows of arms an earlier invocation ran into the same --out with the same setup are
    kept, so arms can be added later; the edas arm is rerun each time (it sets the
    compute) and must have spent exactly what it spent before."""
    path = options.out / "results.json"
    if not path.is_file():
        return rows
    earlier = json.loads(path.read_text())
    mine = _jsonable(options)
    if any(earlier["options"].get(key) != mine[key] for key in _SETUP):
        return rows
    reference = {r["seed"]: r["compute"] for r in rows if r["arm"] == "edas"}
    if any(reference[r["seed"]] != r["compute"] for r in earlier["rows"] if r["arm"] == "edas"):
        sys.exit(f"the edas arm spent differently than in {path}: not merging; use a new --out")
    kept = [r for r in earlier["rows"] if r["arm"] not in options.arms]
    order = list(arms(options.honest_members))
    return sorted(kept + rows, key=lambda r: (r["seed"], order.index(r["arm"])))


def _mean_sd(values: np.ndarray, digits: int) -> str:
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _interval(values: np.ndarray, level: float) -> str:
    """Two-sided Student t interval of the mean; with three seeds it is wide, which is the
    point: paired differences smaller than it are not resolved."""
    if len(values) < 2:
        return "-"
    half = t_quantile(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"[{values.mean() - half:+.5f}, {values.mean() + half:+.5f}]"


def _jsonable(options: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, _, help_ in DATA_OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, help=help_)
    parser.add_argument("--seeds", type=int, default=3, help="How many search seeds.")
    parser.add_argument(
        "--first-seed", type=int, default=0,
        help="The first search seed (seeds first .. first + N - 1): fresh seeds for a check "
        "of an arm that was chosen on the earlier ones.",
    )  # fmt: skip
    parser.add_argument("--budget", type=int, default=50, help="Proposals of the edas arm.")
    parser.add_argument("--members", type=int, default=16, help="Fresh members per judgement.")
    parser.add_argument("--honest-members", type=int, default=8, help="m of the honest arm.")
    parser.add_argument("--arms", default=",".join(arms(8)), help="Comma-separated arms.")
    parser.add_argument("--out", type=Path, help="Output folder.")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[],
        help="Config override for every arm, under the arm's own: --set gate.min_effect=null.",
    )  # fmt: skip
    parser.add_argument(
        "--audit", type=int, default=0,
        help="Screening arms: fully train and judge this many pruned candidates per run.",
    )  # fmt: skip
    parser.add_argument(
        "--redraw", action="store_true", help="Only rewrite tables and plot from results.json."
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1,
        help="Searches run at once, each on cores/jobs torch threads (default: one per core).",
    )  # fmt: skip
    options = parser.parse_args(argv)
    options.arms = [a.strip() for a in options.arms.split(",") if a.strip()]
    unknown = set(options.arms) - set(arms(8))
    if unknown:
        parser.error(f"unknown arms {sorted(unknown)}; choose from {', '.join(arms(8))}")
    data = {}
    for name, key, _ in DATA_OPTIONS:
        value = getattr(options, name)
        if value is not None:
            data[key] = [c.strip() for c in value.split(",")] if name in LIST_OPTIONS else value
    options.data = data
    options.sets = parse_sets(options.sets)
    options.seeds = list(range(options.first_seed, options.first_seed + options.seeds))
    tag = str(data.get("data.path", "adult")).replace("/", "_").replace(":", "-")
    options.out = options.out or Path("runs") / "search_value" / tag
    return options


def write_tables_and_plot(result: dict[str, Any], out: Path) -> str:
    text = tables(result)
    (out / "tables.md").write_text(text)
    plot(result, out / "compute.png")
    return text


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    if options.redraw:
        text = write_tables_and_plot(json.loads((options.out / "results.json").read_text()),
                                     options.out)  # fmt: skip
        print(text)
        return
    options.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = run_benchmark(options)
    result["wall_s"] = time.perf_counter() - started
    result["rows"] = _with_earlier_arms(options, result["rows"])
    (options.out / "results.json").write_text(json.dumps(result, indent=1))
    print(write_tables_and_plot(result, options.out))
    print(f"Total {result['wall_s'] / 60:.1f} min; tables, results and plot in {options.out}")


if __name__ == "__main__":
    # SIGTERM (kill, a CI timeout) unwinds like Ctrl-C, so the workers are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
