"""One outcome type for a candidate that goes no further, from evaluator to record.

A round takes each proposal through stages, each `candidate -> candidate or Outcome`:

    proposal      --edit checks (search/checks.py)-->  Candidate  | Outcome invalid, failed
    Candidate     --screening stages (fidelity/)---->  Candidate  | Outcome pruned, failed
    Candidate     --training, gate rounds---------->   Judged     | Outcome failed

and the record of an Outcome carries its status and reason (search/recorder.py), like a
judged candidate's carries accepted or rejected. As in Optuna, where FAIL and PRUNED are
trial states, these are values: nothing is raised through the layers. An exception from
training (an evaluator's CandidateFailed, a lost Ray worker) becomes an Outcome in one
place, `failure`, called by the executors that run the training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edas_agent.evaluators.base import CandidateFailed

# A stopped candidate's record status; "accepted" and "rejected" are the gate's verdicts
Stopped = Literal["invalid", "failed", "pruned"]


@dataclass(frozen=True)
class Outcome:
    status: Stopped
    reason: str


def failed(reason: str) -> Outcome:
    return Outcome("failed", reason)


def failure(error: BaseException, context: str = "") -> Outcome:
    """The one place an exception from training becomes an outcome, whichever executor
    ran it: a CandidateFailed's reason whole (the evaluator wrote it for the record), any
    other exception's last line (its message, not a traceback), after `context`."""
    if isinstance(error, CandidateFailed):
        return failed(context + str(error))
    lines = str(error).strip().splitlines()
    return failed(context + (lines[-1] if lines else type(error).__name__))
