"""bench/search_value.py's Optuna arms: what users run today, at the same compute.

    optuna-tpe           Optuna's TPE sampler over the whole space, one learner per trial,
                         objective: that learner's validation error E (single-model
                         search; M copies of the best trial's architecture are deployed)
    optuna-tpe-ensemble  the same sampler, two learners per trial, objective: the gate's
                         predicted E_M from them (the ensemble rule, without a proposer)

Every editable place of the space is a distribution, read from its JSON Schema: a choice
for an enum or a boolean, an integer or a float between the bounds, on a log scale where
the bounds are positive and span two decades or more. A list (the tower's widths) is its
length (0 .. maxItems) and one log-scale integer per item up to that length; Optuna's
define-by-run spaces take the varying length. Places without bounds of both kinds (a
nullable number such as /embeddings/hash_buckets, a mapping such as
/embeddings/per_field) keep the starting architecture's value. The first trial is the
starting architecture, as every arm's search starts there. A draw the space refuses (a
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
    study.enqueue_trial(_params_of(start, schema))
    records: list[Record] = []
    spend: list[float] = []
    best = math.inf
    started = time.perf_counter()
    for _ in range(budget):  # a safety limit on trials, failed ones included
        if spend and spend[-1] >= cap:
            break
        trial = study.ask()
        document = _suggest(trial, schema, start)
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


def _places(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(JSON pointer, property schema) of every leaf, $refs resolved."""
    definitions = schema.get("$defs", {})
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            node = definitions[node["$ref"].split("/")[-1]]
        if node.get("type") == "object" and "properties" in node:
            for key, child in node["properties"].items():
                walk(child, f"{path}/{key}")
        else:
            found.append((path, node))

    walk(schema, "")
    return found


def _suggest(trial, schema: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
    """The trial's architecture: each encodable place drawn, the rest from `start`."""
    document = _copy(start)
    for path, node in _places(schema):
        value = _draw(trial, path, node)
        if value is not _KEEP:
            _set(document, path, value)
    return document


_KEEP = object()


def _draw(trial, path: str, node: dict[str, Any]) -> Any:
    kind = _kind(node)
    if kind == "choice":
        return trial.suggest_categorical(path, node.get("enum", [False, True]))
    if kind in ("integer", "number"):
        low, high = node["minimum"], node["maximum"]
        log = low > 0 and high / low >= 100
        if kind == "integer":
            return trial.suggest_int(path, low, high, log=log)
        return trial.suggest_float(path, low, high, log=log)
    if kind == "list":
        length = trial.suggest_int(f"{path}/length", node.get("minItems", 0), node["maxItems"])
        low, high = node["items"]["minimum"], node["items"]["maximum"]
        return [trial.suggest_int(f"{path}/{i}", low, high, log=high / low >= 100)
                for i in range(length)]  # fmt: skip
    return _KEEP


def _kind(node: dict[str, Any]) -> str | None:
    """How a place is drawn: a choice, a bounded number, a bounded list; None: kept."""
    kind, items = node.get("type"), node.get("items", {})
    if "enum" in node or kind == "boolean":
        return "choice"
    if kind in ("integer", "number") and "minimum" in node and "maximum" in node:
        return kind
    if kind == "array" and "maxItems" in node and "minimum" in items and "maximum" in items:
        return "list"
    return None


def _params_of(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The start's values under the parameters' names, for enqueue_trial."""
    params: dict[str, Any] = {}
    for path, node in _places(schema):
        kind = _kind(node)
        value = _get(document, path)
        if kind is None:
            continue
        if kind == "list":
            params[f"{path}/length"] = len(value)
            params.update({f"{path}/{i}": v for i, v in enumerate(value)})
        else:
            params[path] = value
    return params


def _get(document: dict[str, Any], path: str) -> Any:
    node: Any = document
    for key in path.strip("/").split("/"):
        node = node[key]
    return node


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.strip("/").split("/")
    node = document
    for key in parents:
        node = node[key]
    node[leaf] = value.item() if isinstance(value, np.generic) else value


def _copy(document: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
            for k, v in document.items()}  # fmt: skip
