"""Does the search pay? Realised ensemble quality at equal training compute, per search arm.

A benchmark that prints and writes tables, not a test. For each search seed, every arm
searches from the same starting architecture with the same training compute, counted in
training FLOPs as the evaluator reports them (--compute; learner-epochs and measured
training hours are reported too, and can be chosen instead). The
`edas` arm runs `--budget` proposals and sets the compute; every other arm stops after the
first step that reaches it. Then a judge no arm sees trains `--members` fresh members (seeds
no search uses) of each arm's final architecture, and of the incumbents after 25 % and 50 %
of the compute, and measures the realised ensemble's squared error on the test split.

    python bench/search_value.py --seeds 3 --budget 50                     # built-in Adult
    python bench/search_value.py --data synthetic:200000:24 --seeds 3 --budget 50
    python bench/search_value.py --arms edas,random --seeds 1 --budget 10  # a quick look
    python bench/search_value.py --seeds 6 --first-seed 6 ...     # fresh seeds 6 .. 11
    python bench/search_value.py --compute tflop --also hours ...  # in FLOPs and in seconds

With --also, every other arm runs until it has spent the edas arm's compute in both
currencies, and tables.md and also.png (realised error against training seconds, log
axis) give the results at equal compute in the second one too.

Arms (`--arms`, comma-separated):
    edas           the default configuration (--set changes it, and every arm with it);
                   its gate.min_effect 0.5 asks every predicted gain to reach half the seed
                   noise measured on the starting baseline
    confident      the default + gate.confidence 0.9
    sequential     the default + gate.sequential (two more learners while unsure)
    no-floor       the default without the floor (gate.min_effect null: the old default)
    min-effect-1   the default with a floor of one seed noise (gate.min_effect 1)
    pooled-floor   the floor's seed noise from the run's pooled model (gate.floor_from pooled)
    accuracy-only  the same proposer and learners judged by single-learner error (M = 1)
    random         architectures drawn from the space, two learners each; the gate keeps
                   the best predicted E_M
    honest         candidates judged by really trained m-member ensembles (--honest-members,
                   the gate with M = k = m is exactly the realised m-ensemble error), so it
                   sees about 2/m as many candidates
    mixture        no search of its own: the best mixture of --members members over every
                   architecture the edas arm evaluated (agent/analysis/ensemble.py), chosen on
                   validation from the stored learners, at no extra training
    mixture-confirmed   the same over the architectures with >= 4 learners (those that
                   reached confirmation), as `edas-agent ensemble --min-learners 4`
    mixture-search the default with search.target mixture: a search whose baseline is a
                   mixture and whose gate accepts newcomers that lower the mixture's
                   predicted error; judged on its incumbent mixture, re-optimised for
                   --members members over that mixture's architectures on validation
    screening      the default + multi-fidelity screening (agent/fidelity/staging.py): rounds of 9
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
    optuna-tpe     Optuna's TPE over the whole space, one learner per trial judged by its
                   own validation error: single-model search as users run it today
    optuna-tpe-ensemble  the same sampler, two learners per trial, the gate's predicted E_M
                   as the objective (bench/search_value_optuna.py: how the space is encoded)
    optuna-asha    optuna-tpe with Optuna's successive-halving pruner on epochs
    tuned-edas     optuna-tpe for half the compute, then the default from its best trial
    uncapped       edas with search.explore.lift_caps and on_repeat: global (a repeat of an
                   evaluated architecture becomes a draw from the whole space)
    explore        uncapped with search.explore.global_share 0.3 (agent/proposers/explore.py)
    continuous     edas with search.continuous: after each acceptance, the bagging closed
                   form's steps and the surrogate's optimum of the other continuous knobs
    rounds-4, rounds-8  edas with llm.proposals_per_round 4 or 8: a round's proposals are
                   judged against one baseline (the best gated one adopted) and their full
                   trainings handed over together (evaluate_together: fused where shapes allow)
Writes results.json, tables.md and compute.png to --out (default runs/search_value/<data>);
judged ensembles are cached in judge.json there, so a rerun with more arms trains only what
is new, and each finished search in searched/, so a piece stopped part-way and run again
with the same --out repeats only the searches that had not finished.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

# The public API only, as a user's script would use it: edas_agent's names and those its
# subpackages export
from edas_agent import parse_sets
from edas_agent.config import DATA_OPTIONS, LIST_OPTIONS
from edas_agent.fidelity import predictor_track
from edas_agent.training import usable_cores

# The benchmark's other modules, beside this file however it is run (script, or a test)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_value_arms import Arm, arms, catalogue_arm, search
from search_value_judging import (
    FRACTIONS,
    JUDGE_FIRST,
    TRIALS_LEVEL,
    UNITS,
    Judge,
    Searched,
    accepted_gains_at,
    accepted_steps_that_improved,
    at_equal,
    audit_pruning,
    best_mixtures,
    incumbent_mixtures,
    learner_epochs,
    new_architectures,
    wanted,
)
from search_value_optuna import external_search
from search_value_tables import (
    _interval,
    _jsonable,
    _sizes_differ,
    _with_earlier_arms,
    _worse_at_judge,
    data_path,
    write_tables_and_plot,
)

__all__ = [  # besides what this file defines, what the tests reach through it
    "Searched",
    "_interval",
    "_sizes_differ",
    "_worse_at_judge",
    "accepted_gains_at",
    "learner_epochs",
    "new_architectures",
]


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
    saved = options.out / "searched"

    def start(searcher: Callable[..., Searched], arm: str, seed: int, *args: Any) -> Future:
        finished = Future()
        if (earlier := Searched.load(saved, arm, seed, options.compute)) is not None:
            finished.set_result(earlier)  # a rerun of a stopped piece: this one had finished
            return finished
        return pool.submit(searcher, *args)

    with pool, _workers_end_with(pool):
        pending = {
            start(search, reference.name, seed,
                  reference, seed, base, options.budget, None, options.compute): seed
            for seed in options.seeds
        }  # fmt: skip
        while pending:
            done = next(as_completed(pending))
            seed = pending.pop(done)
            if seed is None:  # a judgement
                judge.store(*done.result())
                continue
            run = done.result()
            run.save(saved)
            if catalogue_arm(chosen, run.arm).searches_mixtures:
                compute = runs[(seed, reference.name)].compute
                overrides = {**base, "seed": seed}
                mixtures = incumbent_mixtures(run, overrides, options.members, compute)
                run = replace(run, mixtures=mixtures)
            runs[(seed, run.arm)] = run
            print(f"seed {seed}: {run.arm}: {run.compute:.4g} {options.compute}, "
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
                        searcher = external_search if arm.external else search
                        who = arm.name if arm.external else arm
                        caps = {options.also: run.totals[options.also]} if options.also else None
                        searching = (searcher, who, seed, base, budget, run.compute,
                                     options.compute, caps)  # fmt: skip
                        pending[start(searcher, arm.name, seed, *searching[1:])] = seed
            ref = runs[(seed, reference.name)]
            also = (options.also, ref.totals[options.also]) if options.also else None
            for searched in finished:
                arm = catalogue_arm(chosen, searched.arm)
                steps = not searched.mixtures and arm.steps_judged
                needs = wanted(searched, ref.compute, arm is reference, steps, also)
                for judged, first in needs:
                    future = judge.submit(pool, {**base, "seed": seed}, judged, first)
                    if future is not None:
                        pending[future] = None
    return runs


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
    threads = max(1, usable_cores() // options.jobs)
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
                "train_tflop": run.totals["tflop"], "learner_epochs": run.totals["learner-epochs"],
                "train_hours": run.totals["hours"], "wall_s": run.wall_s,
                "proposals": sum(r.event == "proposal" for r in run.records),
                "new_architectures": new_architectures(run.records),
                "accepted": sum(r.event == "proposal" and r.accepted for r in run.records),
                "pruned": sum(r.status == "pruned" for r in run.records),
                "full_evaluations": sum(bool(r.rounds) for r in run.records),
                "gate_members": run.records[0].members,
            }  # fmt: skip
            if arm.external and len(run.spend) >= TRIALS_LEVEL:
                row["compute_of_50_trials"] = run.spend[TRIALS_LEVEL - 1]
            if row["pruned"]:
                track = predictor_track(run.records)
                row["predictor_track"] = track
                if options.audit:
                    row["audit"] = audit_pruning(run, config, options.audit)
            if not run.mixtures and arm.steps_judged:
                row["accepted_improved"] = accepted_steps_that_improved(run, judge, config)
                row["accepted_gain_at_judge"] = accepted_gains_at(run, options.members)
            if run.arm == reference.name:
                final = run.incumbent(run.compute)
                second = judge.error(config, final, JUDGE_FIRST + 10_000)
                row["judge_noise_final"] = abs(second - row["final_error"])
            if run.mixtures:
                row["architectures"] = len(run.mixtures[1.0])
            elif options.also:
                row["also"] = at_equal(run, ref, options.also, judge, config)
            rows.append(row)
            print(f"seed {seed}: {run.arm}: realised test error {row['final_error']:.5f} "
                  f"(start {start_error:.5f})", flush=True)  # fmt: skip
    return {"options": _jsonable(options), "rows": rows}


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
    parser.add_argument(
        "--compute", choices=list(UNITS), default="tflop",
        help="What equal compute counts: training TFLOP (default), learner-epochs, or "
        "measured training hours.",
    )  # fmt: skip
    parser.add_argument(
        "--also", choices=list(UNITS),
        help="A second currency: every arm also runs until it has spent the edas arm's "
        "compute in it, and is judged at equal compute in both (e.g. --compute tflop "
        "--also hours: at equal training FLOPs and at equal training seconds).",
    )  # fmt: skip
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
        "--floor", type=float,
        help="The judge's error no model can beat (a generated table's noise, standardised): "
        "tables then say what share of the start's reducible error each arm removed, and "
        "the plot of the second currency draws it (with --redraw too).",
    )  # fmt: skip
    parser.add_argument(
        "--redraw", action="store_true", help="Only rewrite tables and plot from results.json."
    )
    parser.add_argument(
        "--jobs", type=int, default=usable_cores(),
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
    tag = data_path(data).replace("/", "_").replace(":", "-")
    options.out = options.out or Path("runs") / "search_value" / tag
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    if options.redraw:
        result = json.loads((options.out / "results.json").read_text())
        if options.floor is not None:
            result["options"]["floor"] = options.floor
        text = write_tables_and_plot(result, options.out)
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
