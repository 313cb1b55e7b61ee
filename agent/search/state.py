"""What a run knows at any moment, derived from its records alone.

The baseline is the last accepted record; every architecture a record names was first
trained at the step of its first record. Nothing else is kept, so resuming a run is
"observe the recorded records", not a second copy of the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from edas_agent.record import BaselineRef, Record
from edas_agent.theory.gate import Stats
from edas_agent.theory.logloss import LogLossStats
from edas_agent.theory.mixture_gate import Part

Parse = Callable[[dict[str, Any]], BaseModel]


@dataclass(frozen=True)
class Baseline:
    step: int
    architecture: BaseModel
    arch_hash: str
    learners: int  # how many of its pool's learners its statistics use
    stats: Stats
    logloss: LogLossStats | None
    # The ensemble the search has: in a mixture search the last accepted mixture, otherwise
    # (and at the start) this architecture's M copies
    mixture: list[Part]
    flops: int | None = None  # forward FLOPs per example of one learner, where reported

    @classmethod
    def of(cls, record: Record, parse: Parse) -> Baseline:
        """An accepted record as the baseline, with the statistics it carries forward."""
        assert record.arch_hash is not None and record.architecture is not None
        assert record.learners is not None
        stats, logloss = record.carried()
        assert stats is not None
        return cls(
            step=record.step,
            architecture=parse(record.architecture),
            arch_hash=record.arch_hash,
            learners=record.learners,
            stats=stats,
            logloss=logloss,
            mixture=mixture_of(record),
            flops=record.flops,
        )

    def ref(self, with_mixture: bool = False) -> BaselineRef:
        return BaselineRef(
            step=self.step,
            arch_hash=self.arch_hash,
            stats=self.stats,
            logloss=self.logloss,
            mixture=self.mixture if with_mixture else None,
        )


def mixture_of(record: Record) -> list[Part]:
    """The ensemble an accepted record leaves the search with: its mixture judgement's
    `after` in a mixture search, otherwise M copies of its architecture."""
    if (judged := record.mixture()) is not None:
        return judged.after
    assert record.arch_hash is not None and record.learners is not None
    return [Part(step=record.step, arch_hash=record.arch_hash, members=record.members,
                 learners=record.learners)]  # fmt: skip


@dataclass
class RunState:
    baseline: Baseline
    records: list[Record] = field(default_factory=list)
    first_step: dict[str, int] = field(default_factory=dict)  # arch hash -> first trained at

    @classmethod
    def starting_from(
        cls, record: Record, parse: Parse, records: list[Record] | None = None
    ) -> RunState:
        """The state after the starting baseline's record, appending to `records`."""
        state = cls(Baseline.of(record, parse), records if records is not None else [])
        state.observe(record)
        return state

    def observe(self, record: Record) -> None:
        self.records.append(record)
        if record.arch_hash is not None:
            self.first_step.setdefault(record.arch_hash, record.step)

    def adopt(self, record: Record, parse: Parse) -> None:
        self.baseline = Baseline.of(record, parse)

    def proposals(self) -> list[Record]:
        return [r for r in self.records if r.event == "proposal"]


def training_failures(records: list[Record]) -> dict[str, str]:
    """Architecture hash -> why its training failed, from the records that trained it."""
    return {
        r.arch_hash: r.reason
        for r in records
        if r.status == "failed" and r.arch_hash is not None and r.cached_from is None
    }


def batches(records: list[Record]) -> list[tuple[int, list[Record]]]:
    """Proposal records grouped by the batch (proposals of one propose call) they came in,
    as (first step of the batch, its records), in order."""
    grouped: dict[int, list[Record]] = {}
    for record in records:
        start = record.round if record.round is not None else record.step
        grouped.setdefault(start, []).append(record)
    return sorted(grouped.items())
