"""Random search: whole architectures drawn from any bounded space, valid and new, seeded."""

from __future__ import annotations

from pathlib import Path

from edas_agent.config import load_config
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.edits import apply_edits
from edas_agent.proposers.random import RandomProposer
from edas_agent.record import read_records
from edas_agent.session import RunSession
from edas_agent.testing import NumpyEvaluator
from tests.agent.proposers.test_builtin import context


def draws(seed: int, count: int) -> list[dict]:
    proposer, ctx = RandomProposer(seed), context(0.9)
    return [apply_edits(ctx.architecture, proposer.propose(ctx)[0].edits) for _ in range(count)]


def test_draws_are_whole_valid_architectures_far_from_the_start_and_seeded():
    start = Architecture().document()
    drawn = draws(seed=3, count=30)
    assert drawn == draws(seed=3, count=30) and drawn != draws(seed=4, count=30)
    for document in drawn:
        Architecture.model_validate(document)  # inside the space
        changed = [block for block in start if document[block] != start[block]]
        assert len(changed) >= 2, changed  # a walk of many steps, not one edit
    assert len({d["training"]["epochs"] for d in drawn}) >= 5
    assert len({len(d["tower"]["widths"]) for d in drawn}) >= 2
    assert len({d["tower"]["activation"] for d in drawn}) >= 2


def test_draws_the_check_refuses_are_replaced(monkeypatch):
    calls = []

    def check(items):
        calls.append(items)
        return ["repeat: evaluated before"] if len(calls) < 4 else [None]

    (proposal,) = RandomProposer(0).propose(context(0.9), check)
    assert len(calls) == 4 and proposal.refused is None
    assert proposal.edits[0].path == "" and proposal.edits[0].op == "replace"


def test_a_random_run_goes_through_the_gate_and_resumes_to_the_same_trajectory(tmp_path: Path):
    build = lambda config: NumpyEvaluator(seed=config.seed)  # noqa: E731
    settings = {"llm.provider": "random", "members": 10, "runs_dir": str(tmp_path)}
    with RunSession.start(load_config(None, {**settings, "budget": 6}), build) as session:
        straight = session.run()
    assert all(r.edits[0]["path"] == "" for r in straight[1:])
    assert {r.status for r in straight[1:]} <= {"accepted", "rejected"}
    assert len({r.arch_hash for r in straight}) == 7  # every draw new
    with RunSession.start(load_config(None, {**settings, "budget": 3}), build) as session:
        session.run()
        folder = session.journal.folder
    with RunSession.resume(folder, {"budget": 6}, build) as session:
        session.run()
    resumed = read_records(folder)
    assert [r.arch_hash for r in resumed] == [r.arch_hash for r in straight]
    assert [r.status for r in resumed] == [r.status for r in straight]


def test_the_prompt_history_shows_a_whole_architecture_as_its_difference(tmp_path):
    from edas_agent.config import load_config
    from edas_agent.search.context import proposal_context
    from edas_agent.session import RunSession
    from edas_agent.testing import NumpyEvaluator

    config = load_config(None, {"budget": 3, "members": 10, "runs_dir": str(tmp_path),
                                "llm.provider": "random"})  # fmt: skip
    with RunSession.start(config, lambda c: NumpyEvaluator(seed=c.seed)) as session:
        records = session.run()
        search = session.search
        context = proposal_context(config, search.evaluator, search.run_state, 4, 1)
    assert all(r.edits[0]["path"] == "" for r in records[1:])  # logged whole
    for entry in context.history:  # shown as the places that changed
        assert entry.edits and all(e["path"].startswith("/") for e in entry.edits)
