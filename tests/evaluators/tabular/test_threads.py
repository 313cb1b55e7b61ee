"""The threads a training takes: what other processes leave free, at least one."""

from __future__ import annotations

import os

import pytest

from edas_agent.evaluators.tabular.threads import FairShare, allowed_cores, machine_busy_seconds


class Machine:
    """A machine whose other processes use `others` cores and this process `mine`."""

    def __init__(self, others: float, mine: float = 1.0):
        self.others, self.mine = others, mine
        self.now = self.busy = self.own = 0.0

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds
        self.busy += (self.others + self.mine) * seconds
        self.own += self.mine * seconds

    def share(self, cores: int) -> FairShare:
        return FairShare(cores, busy=lambda: self.busy, own=lambda: self.own,
                         clock=lambda: self.now)  # fmt: skip


@pytest.mark.parametrize(
    ("cores", "others", "threads"),
    [(2, 0.0, 2), (2, 0.2, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 2.0, 1), (8, 1.0, 7), (8, 3.2, 5)],
)
def test_the_cores_others_use_are_left_to_them(monkeypatch, cores, others, threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("time.sleep", lambda s: machine.tick(s))
    machine = Machine(others)
    share = machine.share(cores)
    assert share.threads() == threads  # the first call looks for a moment
    machine.tick()
    assert share.threads() == threads  # later ones since the last


def test_the_share_follows_the_machine(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("time.sleep", lambda s: machine.tick(s))
    machine = Machine(others=1.0)
    share = machine.share(2)
    assert share.threads() == 1
    machine.others = 0.0  # the other run ended: the next training may take both cores
    machine.tick()
    assert share.threads() == 2
    machine.others = 1.5  # two others, one busy, one half
    machine.tick()
    assert share.threads() == 1


def test_omp_num_threads_and_other_systems_fix_the_cap(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert allowed_cores() == 1 and Machine(0.0).share(4).threads() == 4  # a given cap: kept
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert FairShare(3, busy=lambda: None).threads() == 3  # no /proc/stat: every core
    (tmp_path / "stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 ...\n")
    assert machine_busy_seconds(tmp_path / "stat") == 200 / os.sysconf("SC_CLK_TCK")
    assert machine_busy_seconds(tmp_path / "missing") is None


def test_the_evaluator_takes_its_share_before_each_training(monkeypatch, table_csv):
    """Unset evaluator.threads: torch gets what the share says, training by training; a
    set one stays."""
    import torch

    from edas_agent.evaluators.settings import EvaluatorSettings
    from edas_agent.evaluators.tabular import DataSpec, TabularEvaluator
    from edas_agent.evaluators.tabular import evaluator as module

    class Share:
        def __init__(self):
            self.answers = [1, 2]

        def threads(self) -> int:
            return self.answers.pop(0)

    monkeypatch.setattr(module, "process_share", Share)
    before = torch.get_num_threads()
    try:
        spec = DataSpec(path=str(table_csv), target="label")
        shared = TabularEvaluator(spec, EvaluatorSettings(device="cpu"), seed=0)
        small = shared.parse({"training": {"epochs": 1}})
        seen = []

        def train_learners(*args, **kwargs):
            seen.append(torch.get_num_threads())
            raise RuntimeError("stop")  # the threads were all this test wanted

        monkeypatch.setattr(module, "train_learners", train_learners)
        for _ in range(2):
            with pytest.raises(Exception, match="stop"):
                shared.evaluate(small, 2)
        assert seen == [1, 2]
        fixed = TabularEvaluator(spec, EvaluatorSettings(device="cpu", threads=1), seed=0)
        assert fixed.fair_share is None and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
