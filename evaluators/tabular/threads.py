"""How many CPU threads torch may use for the next training: the cores other processes
leave free (`evaluator.threads` unset).

torch's CPU kernels run in OpenMP thread teams that meet at a barrier after every small
operation. When two processes each run a team as large as the machine, a team's barrier
waits for a thread the other process holds, every operation: on 2 cores, two default
searches side by side each ran about 10 times slower than one alone, where two searches
on one thread each ran at about 1.5 times (docs/pages/benchmarks/performance.md, "A
shared machine"). So before each training the evaluator asks how busy the machine was
since it last asked, apart from this process, and takes what is left, at least one core.
On a quiet machine that is every core, as before.

Linux only (/proc/stat); elsewhere, and where OMP_NUM_THREADS is set (Ray sets it for
its workers), the cap is fixed: every allowed core, or OMP_NUM_THREADS.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# Other processes using at least this share of a core count as holding it: a shell, a
# monitor or the kernel's own work leave the cores free
HELD = 0.35


def machine_busy_seconds(stat: Path = PROC_STAT) -> float | None:
    """CPU seconds all cores have spent busy since boot (None: not Linux)."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def allowed_cores() -> int:
    """The cores this process may run on, capped by OMP_NUM_THREADS when it is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else cores


class FairShare:
    """Threads for the next training, from the machine's busy time since the last call
    minus this process's own."""

    def __init__(
        self,
        cores: int | None = None,
        busy: Callable[[], float | None] = machine_busy_seconds,
        own: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cores = cores or allowed_cores()
        self.busy, self.own, self.clock = busy, own, clock
        self.last: tuple[float, float, float] | None = None  # busy, own, clock

    def threads(self) -> int:
        if self.cores == 1 or "OMP_NUM_THREADS" in os.environ:
            return self.cores
        sample = self._sample()
        if sample is None:
            return self.cores
        if self.last is None:  # the first call: look at the machine for a moment
            self.last = sample
            time.sleep(0.1)
            sample = self._sample()
            assert sample is not None
        (busy, own, now), (busy0, own0, then) = sample, self.last
        self.last = sample
        elapsed = now - then
        if elapsed <= 0:
            return self.cores
        others = max(0.0, (busy - busy0) - (own - own0)) / elapsed  # cores they used
        return max(1, self.cores - math.floor(others + (1 - HELD)))

    def _sample(self) -> tuple[float, float, float] | None:
        busy = self.busy()
        return None if busy is None else (busy, self.own(), self.clock())


_process_share: FairShare | None = None


def process_share() -> FairShare:
    """This process's FairShare: torch's threads are the process's, whichever evaluator
    trains, and its samples go on from one training to the next."""
    global _process_share
    if _process_share is None:
        _process_share = FairShare()
    return _process_share
