"""The local executor hands a batch's full trainings to an evaluator that can train them
together, in one call, and keeps staged ones and single requests on their own path."""

from __future__ import annotations

from edas_agent.evaluators.base import CandidateFailed, Request
from edas_agent.outcome import Outcome
from edas_agent.training.executors import LocalExecutor, TrainRequest


class _Recording:
    """Records which path each request took; 'bad' fails."""

    def __init__(self, together: bool = True):
        self.calls: list[tuple[str, list[str]]] = []
        if together:
            self.evaluate_together = self._together

    def evaluate(self, architecture, learners, first=0):
        self.calls.append(("alone", [architecture]))
        if architecture == "bad":
            raise CandidateFailed("bad alone")
        return f"{architecture}:{first}"

    def evaluate_staged(self, architecture, learners, first, fractions, resume=None):
        self.calls.append(("staged", [architecture]))
        return f"{architecture}:staged"

    def _together(self, requests: list[Request]):
        self.calls.append(("together", [r.architecture for r in requests]))
        for index, r in reversed(list(enumerate(requests))):  # in any order
            yield index, (CandidateFailed("bad together") if r.architecture == "bad"
                          else f"{r.architecture}:{r.first}")  # fmt: skip


def test_full_trainings_of_a_batch_go_together_and_failures_stay_values():
    evaluator = _Recording()
    requests = [TrainRequest("a", 2, 0), TrainRequest("s", 2, 0, fractions=(0.5,)),
                TrainRequest("bad", 2, 0), TrainRequest("a", 2, 2)]  # fmt: skip
    results = dict(LocalExecutor(evaluator).run(requests))
    assert evaluator.calls == [("together", ["a", "bad", "a"]), ("staged", ["s"])]
    assert results[0] == "a:0" and results[3] == "a:2" and results[1] == "s:staged"
    assert isinstance(results[2], Outcome) and results[2].reason == "bad together"


def test_one_request_or_an_evaluator_without_rounds_trains_alone():
    evaluator = _Recording()
    assert dict(LocalExecutor(evaluator).run([TrainRequest("a", 2, 0)])) == {0: "a:0"}
    plain = _Recording(together=False)
    results = dict(LocalExecutor(plain).run([TrainRequest("a", 2, 0), TrainRequest("bad", 2, 0)]))
    assert [c[0] for c in evaluator.calls + plain.calls] == ["alone", "alone", "alone"]
    assert isinstance(results[1], Outcome) and results[1].reason == "bad alone"
