"""One outcome type: an exception from training becomes an Outcome in one place."""

from __future__ import annotations

from edas_agent import CandidateFailed, Outcome
from edas_agent.outcome import failed, failure


def test_a_candidate_failed_keeps_the_evaluators_whole_reason():
    reason = "learner 1: loss is NaN\n(after 3 epochs)"
    assert failure(CandidateFailed(reason)) == Outcome("failed", reason)


def test_any_other_exception_gives_its_last_line_after_the_context():
    error = RuntimeError("Traceback (most recent call last):\n  ...\nOSError: node died")
    assert failure(error, "worker lost: ") == failed("worker lost: OSError: node died")
    assert failure(RuntimeError()).reason == "RuntimeError"  # no message: its type
