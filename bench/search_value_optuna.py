"""bench/search_value.py's Optuna arms: what users run today, at the same compute.

    optuna-tpe           Optuna's TPE sampler over the whole space, one learner per trial,
                         objective: that learner's validation error E (single-model
                         search; M copies of the best trial's architecture are deployed)
    optuna-tpe-ensemble  the same sampler, two learners per trial, objective: the gate's
                         predicted E_M from them (the ensemble rule, without a proposer)
    optuna-asha          optuna-tpe with Optuna's successive-halving pruner (ASHA): each
                         trial reports its validation error after 1/9 and 1/3 of its
                         epochs and is stopped there unless it ranks in the top third of
                         the trials at that point (what users run against our screening)
    optuna-tpe-same      optuna-tpe confined to the space the builtin proposer walks by
    optuna-asha-same     default (its caps: evaluators/tabular/mutations.py SMALL: epochs,
                         tower widths and layers, cross layers); the rest as encoded below
    tuned-edas           a tuned start: optuna-tpe for half the compute, then the default
                         search from its best architecture for the other half ("more TPE"
                         from there is the optuna-tpe arm itself, which goes on sampling)

Every editable place of the space is a distribution, read from its JSON Schema by
edas_agent.integrations.optuna: a choice for an enum or a boolean, an integer or a float
between the bounds, on a log scale where the bounds are positive and span two decades or
more. A list (the tower's widths) is its length (0 .. maxItems) and one log-scale integer
per item up to that length; Optuna's define-by-run spaces take the varying length. Places
without bounds of both kinds (a nullable number such as /embeddings/hash_buckets, a
mapping such as /embeddings/per_field) keep the starting architecture's value. The first
trial is the starting architecture, as every arm's search starts there. A draw the space refuses (a
block that cannot act on this table) is a failed trial that trains nothing.

Trials run until they have spent the reference arm's compute, like every other arm; the
incumbent after any share of it is the best trial so far by the objective.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic import ValidationError
from search_value_judging import Searched, Spent

from edas_agent import (
    CandidateFailed,
    Record,
    build_evaluator,
    canonical_hash,
    document_of,
    load_config,
)
from edas_agent.evaluators.tabular import SMALL, Caps
from edas_agent.integrations import params_of, places, suggest
from edas_agent.record import Cost
from edas_agent.theory import residuals, statistics


class OptunaArm(NamedTuple):
    learners: int  # per trial
    objective: str  # "E" (one learner's error) or "E_M" (the gate's prediction)
    pruned: bool = False  # Optuna's successive-halving pruner over ASHA_FRACTIONS
    confined: bool = False  # to the builtin proposer's caps (SMALL)


OPTUNA_ARMS = {
    "optuna-tpe": OptunaArm(1, "E"),
    "optuna-tpe-ensemble": OptunaArm(2, "E_M"),
    "optuna-asha": OptunaArm(1, "E", pruned=True),
    "optuna-tpe-same": OptunaArm(1, "E", confined=True),
    "optuna-asha-same": OptunaArm(1, "E", pruned=True, confined=True),
}
ASHA_FRACTIONS = (1 / 9, 1 / 3, 1.0)  # rungs of the schedule; eta 3, as our screening's


def external_search(
    name: str, seed: int, base: dict[str, Any], budget: int, cap: float, unit: str,
    also: dict[str, float] | None = None,
) -> Searched:  # fmt: skip
    if name == "tuned-edas":
        return tuned_start(seed, base, budget, cap, unit, also)
    return optuna_search(name, seed, base, budget, cap, unit, also)


def tuned_start(
    seed: int, base: dict[str, Any], budget: int, cap: float, unit: str,
    also: dict[str, float] | None = None,
) -> Searched:  # fmt: skip
    """optuna-tpe for half of `cap` (and of `also`'s), then the default search from its
    best trial (whose starting learners count again: the default trains its start anew)."""
    from search_value_arms import Arm, search  # the default search, as the edas arm runs it

    half = {u: c / 2 for u, c in (also or {}).items()}
    tuned = optuna_search("optuna-tpe", seed, base, budget, cap / 2, unit, half)
    best = tuned.incumbent(tuned.compute)
    start = Path(base["runs_dir"]) / f"tuned-start-{seed}.json"
    start.parent.mkdir(parents=True, exist_ok=True)
    start.write_text(json.dumps(best))
    rest = cap - tuned.compute
    rest_also = {u: c - tuned.totals[u] for u, c in (also or {}).items()}
    arm = Arm("tuned-edas", {"baseline": str(start)})
    more = rest > 0 or any(c > 0 for c in rest_also.values())
    searched = search(arm, seed, base, budget, rest, unit, rest_also) if more else None
    if searched is None:
        return Searched("tuned-edas", seed, tuned.folder, tuned.records, tuned.wall_s,
                        tuned.spend, tuned.totals)  # fmt: skip
    spend = tuned.spend + [tuned.compute + s for s in searched.spend]
    totals = {u: tuned.totals[u] + searched.totals[u] for u in tuned.totals}
    return Searched("tuned-edas", seed, searched.folder, tuned.records + searched.records,
                    tuned.wall_s + searched.wall_s, spend, totals)  # fmt: skip


def optuna_search(
    name: str, seed: int, base: dict[str, Any], budget: int, cap: float, unit: str,
    also: dict[str, float] | None = None,
) -> Searched:  # fmt: skip
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    learners, objective, pruned_by_asha, confined_to_caps = OPTUNA_ARMS[name]
    config = load_config(None, {}, {**base, "seed": seed, "name": f"{name}-{seed}"})
    evaluator = build_evaluator(config)
    start = document_of(evaluator.default_architecture())
    schema = evaluator.space().model_json_schema()
    if confined_to_caps:
        schema = confined(schema, SMALL)
    pruner = optuna.pruners.SuccessiveHalvingPruner() if pruned_by_asha else None
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    study.enqueue_trial(params_of(start, schema))
    records: list[Record] = []
    spend: list[float] = []
    spent = Spent(unit, cap, also)
    best = math.inf
    started = time.perf_counter()
    refused = 0  # trials outside the space or failed: free, so only the limit stops them
    for asked in range(budget):  # a safety limit on trials, failed ones included
        if spent.reached():
            break
        if asked and asked % 500 == 0:  # a long arm says where it is
            print(f"  {name} seed {seed}: {asked} trials, {refused} refused or failed, "
                  f"{spent.totals}", file=sys.stderr, flush=True)  # fmt: skip
        trial = study.ask()
        document = suggest(trial, schema, start)
        try:
            architecture = evaluator.parse(document)
            if pruner is None:
                evaluation = evaluator.evaluate(architecture, learners, 0)
                predictions = evaluation.val_predictions
                cost = Cost(learners_trained=learners, train_seconds=evaluation.train_seconds,
                            train_flops=evaluation.train_flops or 0.0)  # fmt: skip
                pruned = False
            else:
                predictions, cost, pruned = _rungs(trial, evaluator, architecture)
        except (ValidationError, CandidateFailed):
            refused += 1
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        value, stats = _objective(predictions, evaluator.y_val, objective, config.members)
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        better = not pruned and value < best
        record = _record(len(records), document, stats, cost, better, config)
        best = value if better else best
        records.append(record)
        spend.append(spent.add(record))
    folder = Path(config.runs_dir) / f"{name}-{seed}"  # nothing is written there
    totals = dict(spent.totals)  # every unit, counted as the trials came
    return Searched(name, seed, folder, records, time.perf_counter() - started, spend, totals)


def confined(schema: dict[str, Any], caps: Caps) -> dict[str, Any]:
    """The tabular space's schema with the builtin proposer's caps as its bounds (where the
    space's own are wider): what the default search can reach, for TPE to search too."""
    schema = copy.deepcopy(schema)
    bounds = {"/training/epochs": caps.epochs, "/cross/layers": caps.cross}
    for path, node in places(schema):  # nodes of the copy: setting them sets the copy
        if path in bounds:
            node["maximum"] = min(node["maximum"], bounds[path])
        elif path == "/tower/widths":
            node["maxItems"] = min(node["maxItems"], caps.layers)
            node["items"]["maximum"] = min(node["items"]["maximum"], caps.width)
    return schema


def _rungs(trial, evaluator, architecture) -> tuple[np.ndarray, Cost, bool]:
    """One learner trained rung by rung (paused and resumed, nothing trained twice), its
    validation error reported at each; (last predictions, cost, whether it was pruned)."""
    paused, seconds, flops = None, 0.0, 0.0
    for rung, fraction in enumerate(ASHA_FRACTIONS):
        staged = evaluator.evaluate_staged(architecture, 1, 0, (fraction,), resume=paused)
        seconds, flops = seconds + staged.train_seconds, flops + (staged.train_flops or 0.0)
        predictions = staged.val_predictions[-1]
        value, _ = _objective(predictions, evaluator.y_val, "E", 2)
        trial.report(value, rung)
        pruned = fraction < 1.0 and trial.should_prune()
        if pruned or fraction == 1.0 or staged.paused is None:
            break
        paused = staged.paused
    cost = Cost(learners_trained=1, train_seconds=seconds, train_flops=flops)
    return predictions, cost, pruned


def _objective(predictions, y, objective: str, members: int):
    """(the trial's value, its statistics: None for one learner, which has no D)."""
    if objective == "E":  # one learner: its squared error, as the gate's E would be
        return float(np.mean(np.sum(residuals(predictions, y) ** 2, axis=-1))), None
    stats = statistics(predictions, y, members)
    return getattr(stats, objective), stats


def _record(step: int, document, stats, cost: Cost, better: bool, config) -> Record:
    """A trial as a trajectory record: 'accepted' when it is the best so far."""
    return Record(
        event="baseline" if step == 0 else "proposal", step=step,
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        status="accepted" if better else "rejected", reason="optuna trial",
        rule=config.gate.rule, members=config.members, architecture=document,
        arch_hash=canonical_hash(document), stats=stats, cost=cost,
    )  # fmt: skip
