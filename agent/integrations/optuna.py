"""Optuna as a partner: a search space as Optuna distributions, and a run as an Optuna study.

The encoding, read from the space's JSON Schema (any pydantic or JSON Schema space): an
enum or a boolean is a categorical choice, a number or an integer with both bounds a
float or an int (on a log scale where the bounds are positive and span two decades or
more), a list with bounded items and a maximum length its length plus one int per item.
Places without such bounds (a nullable number, a mapping) are not parameters: they keep
the starting architecture's value. bench/search_value.py's Optuna arms search with it.

`export_run` writes a run folder into an Optuna storage as a study of two objectives, the
predicted ensemble error (E_M, or E_mix in a mixture search) and the forward FLOPs per
example of one member, so optuna-dashboard shows the trajectory, parameter importances
and the front of error against cost. Exporting again adds only the steps not yet there,
so re-running it while a search runs keeps a dashboard current.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import jsonpointer

from edas_agent.record import Record, read_records


def places(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(JSON pointer, property schema) of every leaf of the space, $refs resolved."""
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


def kind_of(node: dict[str, Any]) -> str | None:
    """How a place is drawn: 'choice', 'integer', 'number' or 'list'; None: it is kept."""
    kind, items = node.get("type"), node.get("items", {})
    if "enum" in node or kind == "boolean":
        return "choice"
    if kind in ("integer", "number") and "minimum" in node and "maximum" in node:
        return kind
    if kind == "array" and "maxItems" in node and "minimum" in items and "maximum" in items:
        return "list"
    return None


def suggest(trial, schema: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
    """An Optuna trial's architecture document: each parameter drawn, the rest `start`'s.
    A list's length is drawn first, then as many items (define-by-run)."""
    document = copy.deepcopy(start)
    for path, node in places(schema):
        places_of = _distributions_of(path, node)
        if not places_of:
            continue
        if kind_of(node) == "list":
            length = _draw(trial, f"{path}/length", places_of[f"{path}/length"])
            value = [_draw(trial, f"{path}/{i}", places_of[f"{path}/{i}"]) for i in range(length)]
        else:
            value = _draw(trial, path, places_of[path])
        jsonpointer.set_pointer(document, path, value)
    return document


def params_of(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A document's parameter values, under the names `suggest` gives them."""
    params: dict[str, Any] = {}
    for path, node in places(schema):
        kind = kind_of(node)
        if kind is None:
            continue
        value = jsonpointer.resolve_pointer(document, path)
        if kind == "list":
            params[f"{path}/length"] = len(value)
            params.update({f"{path}/{i}": item for i, item in enumerate(value)})
        else:
            params[path] = value
    return params


def distributions(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The Optuna distribution of each of `params` (a document's, from params_of)."""
    found: dict[str, Any] = {}
    for path, node in places(schema):
        found.update(_distributions_of(path, node))
    return {name: found[name] for name in params}


def _distributions_of(path: str, node: dict[str, Any]) -> dict[str, Any]:
    """The one place a place's kind becomes Optuna distributions, by parameter name (a
    list: its length and every item it may have); none for a place that is kept."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    kind = kind_of(node)
    if kind == "choice":
        return {path: CategoricalDistribution(node.get("enum", [False, True]))}
    if kind == "integer":
        return {path: IntDistribution(node["minimum"], node["maximum"], log=_log(node))}
    if kind == "number":
        return {path: FloatDistribution(node["minimum"], node["maximum"], log=_log(node))}
    if kind == "list":
        items = node["items"]
        item = IntDistribution(items["minimum"], items["maximum"], log=_log(items))
        length = IntDistribution(node.get("minItems", 0), node["maxItems"])
        return {f"{path}/length": length, **{f"{path}/{i}": item for i in range(node["maxItems"])}}
    return {}


def _draw(trial, name: str, distribution) -> Any:
    """The trial's value of one parameter, through its public suggest API."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    low, high, log = distribution.low, distribution.high, distribution.log
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, low, high, log=log)
    return trial.suggest_float(name, low, high, log=log)


def export_run(
    folder: Path, storage: str, space: dict[str, Any], study_name: str | None = None
) -> tuple[str, int]:
    """Write the run's records not yet in the study (by step) as trials; returns the study's
    name and how many trials were added. `space` is the run's space as a JSON Schema."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    records = read_records(folder)
    name = study_name or folder.name
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                directions=["minimize", "minimize"])  # fmt: skip
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and what the UI shows
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["predicted ensemble error", "forward FLOPs per example"])
    done = {t.user_attrs.get("step") for t in study.get_trials(deepcopy=False)}
    added = [_trial(r, space) for r in records if r.step not in done]
    study.add_trials(added)
    return name, len(added)


def _trial(record: Record, space: dict[str, Any]):
    from optuna.trial import TrialState, create_trial

    params = params_of(record.architecture, space) if record.architecture else {}
    error = record.predicted_error()
    attributes = {
        "step": record.step, "status": record.status, "reason": record.reason,
        "edits": record.edits, "arch_hash": record.arch_hash,
        "architecture": record.architecture,
        "train_flops": record.cost.train_flops, "train_seconds": record.cost.train_seconds,
    }  # fmt: skip
    given = {"params": params, "distributions": distributions(space, params),
             "user_attrs": attributes}  # fmt: skip
    if error is None or record.flops is None:  # invalid, failed, pruned: no statistics
        state = TrialState.PRUNED if record.status == "pruned" else TrialState.FAIL
        return create_trial(state=state, **given)
    return create_trial(values=[error, float(record.flops)], **given)


def _log(node: dict[str, Any]) -> bool:
    low, high = node["minimum"], node["maximum"]
    return low > 0 and high / low >= 100
