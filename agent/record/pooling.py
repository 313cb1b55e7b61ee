"""The run's pooled seed-noise model and its measured winner's curse, read from its records
(theory/seed_noise.py has the models themselves): the search's pooled floor, its intervals,
`verify` and `ensemble` all pool the same way."""

from __future__ import annotations

import numpy as np

from edas_agent.record.schema import FreshCheck, GateRound, Record
from edas_agent.theory.gate import Stats, statistics
from edas_agent.theory.seed_noise import Pooled, Selection, measure_selection, pool_spreads


def pooled_seed_noise(records: list[Record]) -> Pooled | None:
    """Per architecture, the validation statistics on the most learners, where those are
    three or more, pooled (None: no architecture has three learners yet)."""
    best: dict[str, Stats] = {}
    for record in records:
        judged = [record.stats, *(r.stats for r in record.rounds)]
        for stats in judged:
            if stats is None or record.arch_hash is None:
                continue
            if record.arch_hash not in best or stats.k > best[record.arch_hash].k:
                best[record.arch_hash] = stats
    return pool_spreads(best.values())


def measured_selection(
    records: list[Record], pooled: Pooled | None, split: str = "val"
) -> Selection | None:
    """The run's winner's curse on `split` from its confirmed candidates' fresh learners
    (None without a pooled spread to scale the prior by)."""
    if pooled is None:
        return None
    checks = [r.shrinkage.fresh for r in records if r.shrinkage and r.shrinkage.fresh]
    reference = next((r.reference for r in records if r.reference is not None), None)
    if not checks:
        return measure_selection([], pooled)
    return measure_selection(
        [check.optimism(split) for check in checks],
        pooled,
        checks[0].decision_learners,
        checks[0].fresh_learners,
        reference=None if reference is None else reference.optimism(split),
    )


def selected_learners(rounds: list[GateRound]) -> int:
    """How many learners a gate chose a candidate on: those of its last round before
    confirmation, when that round accepted (0: it never passed, nothing chose it)."""
    chosen = [r for r in rounds if r.kind != "confirmation"]
    return chosen[-1].stats.k if chosen and chosen[-1].accepted else 0


def split_learners(
    predictions: dict[str, np.ndarray],
    targets: dict[str, np.ndarray],
    members: int,
    decision: int,
    total: int,
) -> FreshCheck | None:
    """E_M of the first `decision` learners beside that of learners decision..total, on
    each split ("val", "test"); None when fewer than two follow (no E_M of their own)."""
    if total - decision < 2:
        return None
    pairs = {
        split: (
            statistics(predictions[split][:decision], targets[split], members).E_M,
            statistics(predictions[split][decision:total], targets[split], members).E_M,
        )
        for split in ("val", "test")
    }
    return FreshCheck(decision_learners=decision, fresh_learners=total - decision, **pairs)
