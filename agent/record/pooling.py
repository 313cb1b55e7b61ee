"""The run's pooled seed-noise model, read from its records (theory/seed_noise.py has the
model itself): the search's pooled floor, `verify` and `ensemble` all pool the same way."""

from __future__ import annotations

from edas_agent.record.schema import Record
from edas_agent.theory.gate import Stats
from edas_agent.theory.seed_noise import Pooled, pool_spreads


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
