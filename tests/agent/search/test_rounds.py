"""The gate's protocol in the loop: sequential rounds and confirmation.

The gate's answers are scripted by the number of learners, so stopping and confirmation are
tested exactly; the statistics themselves are tested in test_gate and test_uncertainty.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edas_agent.analysis.replay import replay
from edas_agent.config import Config, dump_config
from edas_agent.evaluators.tabular.evaluator import TabularEvaluator
from edas_agent.record import Journal, read_records
from edas_agent.search.rounds import RoundPlan
from edas_agent.session import build_search
from edas_agent.theory.gate import Judgement, Rules, Stats
from edas_agent.theory.uncertainty import Interval
from tests.agent.search.test_loop import ScriptedProposer, proposal

STRADDLING = Interval(confidence=0.9, lower=-0.01, upper=0.01, p_improve=0.5, resamples=100)
BETTER = Interval(confidence=0.9, lower=-0.02, upper=-0.01, p_improve=1.0, resamples=100)


def scripted_judge(accept_at: dict[int, bool], straddle_below: int):
    """A gate whose answer depends only on the candidate's number of learners."""

    def judge(baseline, candidate, y, task, seed, floor=None):
        k = candidate.shape[0]
        E_M = 0.1 - 0.001 * k
        stats = Stats(k=k, E=0.1, sigma2=0.05, rho=0.9, D=0.005, E_M=E_M)
        accepted = accept_at.get(k, False)
        base = Stats(k=baseline.shape[0], E=0.1, sigma2=0.05, rho=0.9, D=0.005, E_M=0.1)
        judgement = Judgement(
            stats=stats,
            delta_E=0.0,
            rules=Rules(paper=accepted, exact=accepted),
            rule="exact",
            interval=STRADDLING if k < straddle_below else BETTER,
            accepted=accepted,
            reason=f"scripted at k={k}",
        )
        return judgement, (base, None)

    return judge


def run(config: Config, judge, steps: int = 1):
    config = config.model_copy(update={"budget": steps})
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    edits = [
        proposal({"op": "replace", "path": "/tower/dropout", "value": 0.1 * (i + 1)})
        for i in range(steps)
    ]
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    search = build_search(config, evaluator, ScriptedProposer(edits), journal)
    search.gate.judge = judge
    search.run()
    return read_records(journal.folder), search


def with_gate(config: Config, **gate) -> Config:
    return config.model_copy(update={"gate": config.gate.model_copy(update=gate)})


def test_sequential_rounds_stop_when_the_interval_clears_zero(fast_config):
    config = with_gate(fast_config, sequential=True, max_learners=8, confirm=False)
    records, _ = run(config, scripted_judge({6: True}, straddle_below=6))
    rounds = records[1].rounds
    assert [(r.kind, r.stats.k) for r in rounds] == [
        ("decision", 2),
        ("sequential", 4),
        ("sequential", 6),
    ]
    assert [r.cost.learners_trained for r in rounds] == [2, 2, 2]
    assert (
        records[1].accepted and records[1].learners == 6 and records[1].cost.learners_trained == 6
    )


def test_sequential_rounds_stop_at_the_cap(fast_config):
    config = with_gate(fast_config, sequential=True, max_learners=6, confirm=False)
    records, _ = run(config, scripted_judge({}, straddle_below=99))
    assert [r.stats.k for r in records[1].rounds] == [2, 4, 6]
    assert records[1].status == "rejected"


def test_no_sequential_rounds_unless_configured(fast_config):
    config = with_gate(fast_config, sequential=False, confirm=False)
    records, _ = run(config, scripted_judge({}, straddle_below=99))
    assert [r.kind for r in records[1].rounds] == ["decision"]


def test_a_winner_that_is_not_confirmed_is_rejected(fast_config):
    config = with_gate(fast_config, confirm=True, confirm_learners=2)
    records, search = run(config, scripted_judge({2: True, 4: False}, straddle_below=0), steps=2)
    first = records[1]
    assert [(r.kind, r.stats.k, r.accepted) for r in first.rounds] == [
        ("decision", 2, True),
        ("confirmation", 4, False),
    ]
    assert first.status == "rejected" and first.reason.startswith("not confirmed on 4 learners")
    assert first.shrinkage.delta_E_M_at_decision == pytest.approx(0.098 - records[0].stats.E_M)
    assert first.shrinkage.delta_E_M_confirmed == pytest.approx(0.096 - records[0].stats.E_M)
    assert records[2].baseline.step == 0 and search.baseline.step == 0


def test_a_confirmed_winner_carries_all_its_learners(fast_config):
    config = with_gate(fast_config, confirm=True, confirm_learners=3)
    records, search = run(config, scripted_judge({2: True, 5: True}, straddle_below=0), steps=2)
    assert records[1].accepted and records[1].learners == 5
    assert records[1].reason.startswith("confirmed on 5 learners")
    assert search.baseline.step in (1, 2) and records[2].baseline.step == 1
    assert records[2].baseline.stats.k == 5  # compared with the confirmed statistics
    assert records[0].learners == 2 + 3  # the start gets as many learners as a winner


def test_real_gate_with_sequential_testing_replays(fast_config):
    config = with_gate(fast_config, sequential=True, max_learners=6, confidence=0.8).model_copy(
        update={"budget": 8}
    )
    from edas_agent.evaluators.tabular.mutations import MUTATIONS
    from edas_agent.proposers.builtin import BuiltinProposer

    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    build_search(config, evaluator, BuiltinProposer(0, MUTATIONS), journal).run()
    records = read_records(journal.folder)
    for record in records[1:]:
        for previous, current in zip(record.rounds, record.rounds[1:], strict=False):
            if current.kind == "sequential":
                assert (
                    previous.interval.straddles_zero() and current.stats.k == previous.stats.k + 2
                )
        if record.accepted:
            assert record.rounds[-1].kind == "confirmation"
            assert all(r.interval.upper < 0 for r in record.rounds if r.accepted)
    assert replay(journal.folder).ok
    stored = list((journal.folder / "learners").glob("*.npz"))
    assert len(stored) == len({r.arch_hash for r in records if r.rounds or r.event == "baseline"})


class PairProposer:
    """Two proposals per round: distinct, then a duplicate of the first."""

    def __init__(self):
        self.round = 0

    def propose(self, context, check=None):
        from edas_agent.proposers.base import Proposal
        from edas_agent.proposers.edits import Edit
        from edas_agent.record import LLMUsage

        self.round += 1
        usage = LLMUsage(provider="script", model="script")

        def proposal(path, value):
            edit = Edit(op="replace", path=path, value=value)
            return Proposal(rationale="pair", edits=[edit], usage=usage)

        width = 8 * (self.round + 1)
        if self.round == 1:
            return [proposal("/tower/widths/0", width), proposal("/tower/widths/0", width)]
        return [proposal("/tower/widths/0", width), proposal("/tower/widths/1", width)]


def test_several_proposals_per_round_share_a_baseline_and_one_is_adopted(fast_config):
    config = with_gate(fast_config, confirm=False).model_copy(
        update={"budget": 4, "llm": fast_config.llm.model_copy(update={"proposals_per_round": 2})}
    )

    def judge_by_mean(baseline, candidate, y, task, seed, floor=None):  # both pass; lower mean wins
        k = candidate.shape[0]
        E_M = float(candidate.mean())
        stats = Stats(k=k, E=E_M, sigma2=0.05, rho=0.9, D=0.0, E_M=E_M)
        base = Stats(k=baseline.shape[0], E=1.0, sigma2=0.05, rho=0.9, D=0.0, E_M=1.0)
        rules = Rules(paper=True, exact=True)
        judgement = Judgement(
            stats=stats, delta_E=E_M - 1.0, rules=rules, rule="exact", accepted=True, reason="ok"
        )
        return judgement, (base, None)

    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    search = build_search(config, evaluator, PairProposer(), journal)
    search.gate.judge = judge_by_mean
    search.run()
    records = read_records(journal.folder)[1:]
    assert [r.round for r in records] == [1, 1, 3, 3]
    assert (
        records[1].status == "invalid"
        and "duplicate of step 1 in the same round" in records[1].reason
    )
    assert records[0].accepted  # alone among its round's valid proposals
    second_round = records[2:]
    assert all(r.baseline.step == 1 for r in second_round)  # siblings share the baseline
    winner = min(second_round, key=lambda r: r.stats.E_M)
    loser = next(r for r in second_round if r is not winner)
    assert winner.accepted and not loser.accepted and loser.outranked_by == winner.step
    assert loser.status == "rejected" and loser.reason.startswith("passed the gate, but step")


def test_real_gate_with_three_proposals_per_round_replays(fast_config):
    from edas_agent.evaluators.tabular.mutations import MUTATIONS
    from edas_agent.proposers.builtin import BuiltinProposer

    llm = fast_config.llm.model_copy(update={"proposals_per_round": 3})
    config = fast_config.model_copy(update={"budget": 10, "llm": llm})
    evaluator = TabularEvaluator(config.evaluator.data, config.evaluator, config.seed)
    journal = Journal.create(Path(config.runs_dir), config.name, dump_config(config))
    build_search(config, evaluator, BuiltinProposer(3, MUTATIONS), journal).run()
    records = read_records(journal.folder)[1:]
    assert [r.round for r in records] == [1, 1, 1, 4, 4, 4, 7, 7, 7, 10]  # the last round is short
    for start in (1, 4, 7, 10):
        siblings = [r for r in records if r.round == start]
        assert sum(r.accepted for r in siblings) <= 1
        assert len({r.baseline.step for r in siblings}) == 1
    report = replay(journal.folder)
    assert report.ok, report.mismatches


def test_an_unstable_learner_gets_two_more_learners_under_sequential_as_replay_expects(
    fast_config, monkeypatch
):
    from edas_agent.search import target

    # The decision's two learners look unstable (one far from the other); four do not
    monkeypatch.setattr(target, "unstable_learners", lambda errors: [1] if len(errors) == 2 else [])
    config = with_gate(fast_config, sequential=True, max_learners=8, confirm=False)
    records, _ = run(config, scripted_judge({4: True}, straddle_below=0))
    rounds = records[1].rounds
    assert [(r.kind, r.stats.k, r.unstable) for r in rounds] == [
        ("decision", 2, True),
        ("sequential", 4, False),
    ]
    assert records[1].accepted
    # replay checks logged rounds against the plan: the flag logged is what it needs
    assert RoundPlan(config).check(rounds) == []
    assert RoundPlan(config).check(rounds[:1]) == ["no sequential round after round 0"]
