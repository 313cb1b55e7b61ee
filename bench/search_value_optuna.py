"""bench/search_value.py's Optuna arms: what users run today, at the same compute.

    optuna-tpe           Optuna's TPE sampler over the whole space, one learner per trial,
                         objective: that learner's validation error E (single-model
                         search; M copies of the best trial's architecture are deployed)
    optuna-tpe-ensemble  the same sampler, two learners per trial, objective: the gate's
                         predicted E_M from them (the ensemble rule, without a proposer)

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

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from search_value_judging import UNITS, Searched

from edas_agent import (
    CandidateFailed,
    Record,
    build_evaluator,
    canonical_hash,
    document_of,
    load_config,
)
from edas_agent.integrations.optuna import params_of, suggest
from edas_agent.theory import residuals, statistics
from edas_agent.training import Cost

# name: (learners per trial, objective)
OPTUNA_ARMS = {"optuna-tpe": (1, "E"), "optuna-tpe-ensemble": (2, "E_M")}


def optuna_search(
    name: str, seed: int, base: dict[str, Any], budget: int, cap: float, unit: str
) -> Searched:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    learners, objective = OPTUNA_ARMS[name]
    config = load_config(None, {}, {**base, "seed": seed, "name": f"{name}-{seed}"})
    evaluator = build_evaluator(config)
    start = document_of(evaluator.default_architecture())
    schema = evaluator.space().model_json_schema()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(params_of(start, schema))
    records: list[Record] = []
    spend: list[float] = []
    best = math.inf
    started = time.perf_counter()
    for _ in range(budget):  # a safety limit on trials, failed ones included
        if spend and spend[-1] >= cap:
            break
        trial = study.ask()
        document = suggest(trial, schema, start)
        try:
            architecture = evaluator.parse(document)
            evaluation = evaluator.evaluate(architecture, learners, 0)
        except (ValidationError, CandidateFailed):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        value, stats = _objective(evaluation.val_predictions, evaluator.y_val, objective,
                                  config.members)  # fmt: skip
        study.tell(trial, value)
        cost = Cost(learners_trained=learners, train_seconds=evaluation.train_seconds,
                    train_flops=evaluation.train_flops or 0.0)  # fmt: skip
        record = _record(len(records), document, stats, cost, value < best, config)
        best = min(best, value)
        records.append(record)
        spend.append((spend[-1] if spend else 0.0) + UNITS[unit](record))
    folder = Path(config.runs_dir) / f"{name}-{seed}"  # nothing is written there
    totals = {unit_name: sum(map(of, records)) for unit_name, of in UNITS.items()}
    return Searched(name, seed, folder, records, time.perf_counter() - started, spend, totals)


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
