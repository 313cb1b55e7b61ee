"""`edas-agent verify`: train real M-member ensembles of a run's winners and compare them
with what the gate predicted from its decision learners.

Learners already trained in the run (decision, sequential and confirmation learners) are
members 1..k; only the rest are trained, one at a time, into <run>/learners/, so an
interrupted verify resumes without retraining finished members. Results go to verify.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edas_agent.config import Config, ExecutorSettings, load_config
from edas_agent.errors import UserError
from edas_agent.record import (
    Record,
    measured_selection,
    pooled_seed_noise,
    read_records,
    selected_learners,
    split_learners,
)
from edas_agent.theory.gate import ensemble_error, residuals, statistics
from edas_agent.theory.seed_noise import (
    LEVEL,
    Pooled,
    Selection,
    learner_errors,
    predictive_interval,
)
from edas_agent.training.executors import make_executor
from edas_agent.training.learners import LearnerStore

VERIFY = "verify.json"
VERIFY_FULL = "verify_full.json"  # verify --full-data, of a run searched on a sample
_SUBSETS = 20  # random member subsets averaged per ensemble size below M
_CHUNK = 2  # members per training request: small enough to spread over workers


def ensemble_sizes(members: int) -> list[int]:
    """1, 2, 4, ... up to M, with M itself last."""
    sizes = [1]
    while sizes[-1] * 2 < members:
        sizes.append(sizes[-1] * 2)
    return [*sizes, members] if sizes[-1] != members else sizes


def realised_error(
    predictions: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator
) -> float:
    """Squared-loss error of the averaged ensemble of `size` members, averaged over up to
    _SUBSETS random subsets of the available members (all of them when size is all)."""
    available = predictions.shape[0]
    if size > available:
        raise ValueError(f"{size} members requested, {available} trained")
    draws = 1 if size == available else _SUBSETS
    errors = []
    for _ in range(draws):
        members = rng.choice(available, size, replace=False) if draws > 1 else np.arange(size)
        r = residuals(predictions[members].mean(axis=0, keepdims=True), y)
        errors.append(float(np.mean(np.sum(r**2, axis=-1))))
    return float(np.mean(errors))


def choose_records(records: list[Record], steps: str) -> list[Record]:
    """The evaluated records named by --steps, plus the baselines they were compared with."""
    evaluated = [r for r in records if r.stats is not None and r.arch_hash]
    if steps == "accepted":
        chosen = [r for r in evaluated if r.accepted]
    elif steps == "all":
        chosen = evaluated
    elif steps == "disagreements":
        chosen = [r for r in evaluated if rules_disagree(r)]
    else:
        try:
            wanted = {int(s) for s in steps.split(",") if s.strip()}
        except ValueError:
            raise UserError(
                "--steps takes accepted, all, disagreements or step numbers like 3,8; "
                f"got {steps!r}"
            ) from None
        chosen = [r for r in evaluated if r.step in wanted]
        missing = wanted - {r.step for r in chosen}
        if missing:
            raise UserError(f"steps {sorted(missing)} have no evaluated architecture in the run")
    by_step = {r.step: r for r in evaluated}
    baselines = [
        by_step[r.baseline.step] for r in chosen if r.baseline and r.baseline.step in by_step
    ]
    unique = {r.step: r for r in [*chosen, *baselines]}
    return [unique[s] for s in sorted(unique)]


def rules_disagree(record: Record) -> bool:
    """Did the ensemble rule (exact: E_M at the run's M) and the single-learner rule (E
    alone) decide this proposal's decision round differently? Both are always logged."""
    rules = record.rules
    return (
        record.event == "proposal"
        and rules is not None
        and rules.single is not None
        and rules.exact != rules.single
    )


def verify(
    folder: Path,
    members: int | None,
    steps: str,
    on_learner: Callable[[str, int], None] = lambda arch_hash, j: None,
    full_data: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Members are trained in chunks of `_CHUNK` seeds, all architectures' chunks submitted
    together: spread over Ray workers with `executor.kind: ray`, over worker processes with
    `processes` or `workers` (that many, whatever the run's executor), one after another
    locally.

    `full_data`: a run that searched on a sample of the training rows (`data.sample_rows`)
    has its chosen steps' members trained on the whole training split instead (none of the
    run's learners is reused; they go to learners-full/, results to verify_full.json): do
    the steps it accepted on the sample still win at full size?"""
    from edas_agent.training.door import DataError, build_evaluator, keep_files

    config = with_workers(load_config(folder / "config.yaml", {}), workers)
    learners, output = "learners", VERIFY
    if full_data:
        if config.evaluator.data.sample_rows is None:
            raise DataError(
                f"{folder} trained on every training row (no data.sample_rows): "
                "plain verify checks it at full size"
            )
        whole = config.evaluator.data.model_copy(update={"sample_rows": None})
        evaluator_settings = config.evaluator.model_copy(update={"data": whole})
        config = config.model_copy(update={"evaluator": evaluator_settings})
        learners, output = "learners-full", VERIFY_FULL
    M = members or config.members
    records = choose_records(read_records(folder), steps)
    evaluator = build_evaluator(config)
    keep_files(evaluator, folder)
    executor = make_executor(evaluator, config.executor)
    try:
        store = LearnerStore(evaluator, folder / learners, executor)
        wanted = {r.arch_hash: evaluator.parse(r.architecture) for r in records if r.architecture}
        store.prefetch([(a, M) for a in wanted.values()], chunk=_CHUNK, on_learner=on_learner)
        result = _verify(records, store, evaluator, M, config.seed, read_records(folder))
    finally:
        executor.close()
    result["full_data"] = full_data
    (folder / output).write_text(json.dumps(result, indent=2))
    return result


def with_workers(config: Config, workers: int | None) -> Config:
    """The run's config, training on `workers` worker processes where given."""
    if workers is None:
        return config
    executor = ExecutorSettings(kind="processes", workers=workers)
    return config.model_copy(update={"executor": executor})


def _verify(
    records, store, evaluator, M: int, seed: int, everything: list[Record] | None = None
) -> dict[str, Any]:
    """`everything`: all the run's records, for its seed-noise model and its measured
    winner's curse (each architecture's interval leaves its own confirmation out)."""
    everything = records if everything is None else everything
    everything = _with_reference(everything, store, evaluator)
    noise = pooled_seed_noise(everything)
    architectures: dict[str, dict[str, Any]] = {}
    for record in records:
        assert record.arch_hash and record.architecture and record.stats
        entry = architectures.setdefault(record.arch_hash, {"steps": []})
        entry["steps"].append(record.step)
        if "realised" in entry:
            continue
        pool = store.require(evaluator.parse(record.architecture), M)
        others = [r for r in everything if r.arch_hash != record.arch_hash]
        selection = {split: measured_selection(others, noise, split) for split in ("val", "test")}
        chosen = min(record.stats.k, selected_learners(record.rounds))
        ys = (evaluator.y_val, evaluator.y_test)
        entry.update(_compare(pool, record.stats.k, *ys, M, seed, noise, selection, chosen))
    return {
        "members": M,
        "sizes": ensemble_sizes(M),
        "architectures": architectures,
        "decisions": _decisions(records, architectures, M),
        "coverage": coverage(architectures.values()),
    }


def _with_reference(records: list[Record], store, evaluator) -> list[Record]:
    """Runs before 2026-12-07 did not record the start's seed split (`reference`, what the
    winner's curse is measured against); the start's learners in the run folder have it."""
    start = records[0] if records else None
    if start is None or start.event != "baseline" or any(r.reference for r in records):
        return records
    pool = store.get(start.arch_hash) if start.arch_hash else None
    if pool is None:
        return records
    checks = [r.shrinkage.fresh for r in records if r.shrinkage and r.shrinkage.fresh]
    decision = checks[0].decision_learners if checks else 2
    total = decision + (checks[0].fresh_learners if checks else 2)
    reference = split_learners(
        {"val": pool.val, "test": pool.test},
        {"val": evaluator.y_val, "test": evaluator.y_test},
        start.members or len(pool),
        decision,
        min(total, len(pool)),
    )
    return [start.model_copy(update={"reference": reference}), *records[1:]]


def miss_side(interval, realised: float) -> str | None:
    """ "above": the realised ensemble was worse than the interval said (optimism);
    "below": better; None: covered."""
    if realised > interval.upper:
        return "above"
    return "below" if realised < interval.lower else None


def coverage(entries) -> dict[str, dict[str, Any]]:
    """Per split: how many realised M-member errors fell inside their seed-noise interval,
    and on which side the others missed."""
    out = {}
    for split in ("val", "test"):
        judged = [e["interval"][split] for e in entries if e.get("interval", {}).get(split)]
        out[split] = {
            "covered": sum(i["covered"] for i in judged),
            "of": len(judged),
            "above": sum(i.get("miss") == "above" for i in judged),
            "below": sum(i.get("miss") == "below" for i in judged),
            "level": judged[0]["level"] if judged else LEVEL,
            "sources": sorted({i["source"] for i in judged}),
        }
    return out


def _compare(
    pool,
    k: int,
    y_val,
    y_test,
    M: int,
    seed: int,
    noise: Pooled | None = None,
    selection: dict[str, Selection | None] | None = None,
    selected: int = 0,
) -> dict[str, Any]:
    """Predicted E_m from the first k (decision) learners against realised E_m, and
    whether the seed-noise interval at M covered the realised error (`noise`: the run's
    pooled model, for k = 2; `selection`, per split, its winner's curse, for the
    `selected` learners a gate chose)."""
    sizes = ensemble_sizes(M)
    out: dict[str, Any] = {
        "decision_learners": k,
        "predicted": {},
        "realised": {},
        "relative_error": {},
        "interval": {},
    }
    for split, predictions, y in (("val", pool.val, y_val), ("test", pool.test, y_test)):
        stats = statistics(predictions[:k], y, M)
        errors = learner_errors(predictions[:k], y)
        interval = predictive_interval(
            stats, M, noise, learner_errors=errors,
            selection=(selection or {}).get(split), selected=selected,
        )  # fmt: skip
        rng = np.random.default_rng([seed, M, 7])
        predicted = {m: ensemble_error(stats.E, stats.D, m) for m in sizes}
        realised = {m: realised_error(predictions, y, m, rng) for m in sizes}
        out["predicted"][split] = predicted
        out["realised"][split] = realised
        out["relative_error"][split] = {
            m: (predicted[m] - realised[m]) / realised[m] for m in sizes
        }
        if interval is not None:
            out["interval"][split] = {
                **interval.model_dump(
                    include={"lower", "upper", "level", "source", "shift", "selected"}
                ),
                "covered": interval.covers(realised[M]),
                "miss": miss_side(interval, realised[M]),
            }
    return out


def _decisions(
    records: list[Record], architectures: dict[str, dict[str, Any]], M: int
) -> list[dict[str, Any]]:
    """For each verified proposal whose baseline is verified: would the realised M-member
    ensembles have made the same decision?"""
    by_step = {r.step: r for r in records}
    rows = []
    for record in records:
        if (
            record.event != "proposal"
            or record.baseline is None
            or record.baseline.step not in by_step
        ):
            continue
        candidate = architectures[record.arch_hash]["realised"]
        baseline = architectures[by_step[record.baseline.step].arch_hash]["realised"]
        row = {
            "step": record.step,
            "baseline_step": record.baseline.step,
            "logged_accepted": record.accepted,
        }
        if record.rules is not None and record.rules.single is not None:
            # Each rule's verdict at decision: when they differ, the realised ensembles say
            # which one was right (the theory's value, apart from the proposer)
            row["rules"] = {"exact": record.rules.exact, "single": record.rules.single}
        for split in ("val", "test"):
            better = candidate[split][M] < baseline[split][M]
            row[f"realised_{split}_better"] = better
            row[f"agrees_{split}"] = better == record.accepted
        rows.append(row)
    return rows


def sided_with(decisions: list[dict[str, Any]], split: str = "test") -> dict[str, int]:
    """Of the decisions where the ensemble and single-learner rules disagreed, how many
    the realised M-member ensembles sided with, per rule."""
    split_rows = [d for d in decisions if d.get("rules") and
                  d["rules"]["exact"] != d["rules"]["single"]]  # fmt: skip
    better = f"realised_{split}_better"
    return {
        "disagreements": len(split_rows),
        "exact": sum(d["rules"]["exact"] == d[better] for d in split_rows),
        "single": sum(d["rules"]["single"] == d[better] for d in split_rows),
    }
