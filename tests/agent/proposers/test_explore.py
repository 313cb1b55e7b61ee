"""search.explore: global proposals in place of repeats and, in an adaptive share, of local
edits; draws bounded in cost; the builtin mutations' caps lifted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edas_agent.analysis.replay import replay
from edas_agent.config import Config, load_config
from edas_agent.evaluators.base import canonical_hash
from edas_agent.evaluators.tabular.mutations import MUTATIONS
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.base import HistoryEntry, Proposal
from edas_agent.proposers.edits import Edit, apply_edits
from edas_agent.proposers.explore import ExploringProposer
from edas_agent.proposers.random import RandomProposer
from edas_agent.record import LLMUsage, read_records
from edas_agent.session import RunSession

from .test_builtin import context


class Stubborn:
    """Always proposes the same edit: after its first step, a repeat."""

    replays_deterministically = True

    def __init__(self):
        self.forgotten: list[int] = []

    def propose(self, ctx, check=None):
        edit = Edit(op="replace", path="/training/epochs", value=4)
        usage = LLMUsage(provider="stub", model="stub")
        return [Proposal(rationale="epochs 4", edits=[edit], usage=usage)] * ctx.proposals

    def forget(self, from_step: int) -> None:
        self.forgotten.append(from_step)


def explore(**settings) -> Config:
    return load_config(None, {f"search.explore.{k}": v for k, v in settings.items()})


def test_a_repeat_becomes_a_draw_from_the_whole_space_only_when_asked():
    ctx = context(0.5)
    repeat = canonical_hash(apply_edits(ctx.architecture, Stubborn().propose(ctx)[0].edits))
    ctx = ctx.model_copy(update={"evaluated_hashes": frozenset({repeat})})
    kept = ExploringProposer(Stubborn(), RandomProposer(0), explore(on_repeat="repeat"))
    assert kept.propose(ctx)[0].rationale == "epochs 4"
    local = Stubborn()
    replaced = ExploringProposer(local, RandomProposer(0), explore(on_repeat="global"))
    (proposal,) = replaced.propose(ctx)
    assert proposal.rationale == "a random draw from the space"
    assert proposal.edits[0].path == ""  # the whole document
    assert local.forgotten == [ctx.step]  # its mutations are not credited with the draw


def test_the_global_share_grows_while_local_steps_are_not_accepted():
    proposer = ExploringProposer(Stubborn(), RandomProposer(0), explore(global_share=0.4))
    assert proposer.share() == 0.4 * 0.5  # Beta(1, 1): nothing seen yet
    kinds = []
    for step in range(1, 41):
        history = [HistoryEntry(step=step - 1, status="rejected", edits=[], rationale="",
                                reason="")]  # fmt: skip
        ctx = context(0.5, step=step, history=history)
        kinds.append(proposer.propose(ctx)[0].rationale)
    assert np.isclose(proposer.share(), 0.4 * 11 / 12)  # the last 10 local ones, all rejected
    assert 0.2 < kinds.count("a random draw from the space") / len(kinds) < 0.6
    accepting = ExploringProposer(Stubborn(), RandomProposer(0), explore(global_share=0.4))
    accepting.local_accepted = [True] * 10
    assert np.isclose(accepting.share(), 0.4 / 12)


def test_a_global_draw_costs_at_most_max_growth_times_the_baseline():
    def epochs(document):  # training cost grows with the epochs, as a stand-in
        return float(document["training"]["epochs"])

    config = explore(global_share=1.0, max_growth=2.0)
    proposer = ExploringProposer(Stubborn(), RandomProposer(0, draws=500), config, epochs)
    for step in range(1, 21):
        (proposal,) = proposer.propose(context(0.5, step=step))
        document = apply_edits(context(0.5).architecture, proposal.edits)
        assert document["training"]["epochs"] <= 2 * Architecture().training.epochs


def test_lifted_caps_reach_the_space_bounds():
    wide = Architecture(tower={"widths": [512]}).document()
    rng = np.random.default_rng(0)
    assert MUTATIONS.accuracy["widen_layer"](wide, rng, {}) is None  # capped at 512
    (edit,) = MUTATIONS.uncapped.accuracy["widen_layer"](wide, rng, {})
    assert edit["value"] == 1024
    long = Architecture(training={"epochs": 8}).document()
    assert MUTATIONS.accuracy["more_epochs"](long, rng, {}) is None
    assert MUTATIONS.uncapped.accuracy["more_epochs"](long, rng, {})[0]["value"] == 9


def test_an_exploring_run_replays_and_resumes(fast_config: Config, tmp_path: Path):
    explored = {"search.explore.lift_caps": True, "search.explore.on_repeat": "global",
                "search.explore.global_share": 0.5, "budget": 8}  # fmt: skip
    config = fast_config.model_copy(update={"name": "whole"})
    whole_config = load_config(None, {**_flat(config), **explored})
    with RunSession.start(whole_config) as session:
        whole = session.run()
    assert any(r.rationale == "a random draw from the space" for r in whole[1:])
    assert replay(session.journal.folder).ok
    stopped = load_config(None, {**_flat(config), **explored, "budget": 4, "name": "stopped"})
    with RunSession.start(stopped) as session:
        session.run()
    with RunSession.resume(session.journal.folder, {"budget": 8}) as resumed:
        records = resumed.run()
    assert [r.edits for r in records] == [r.edits for r in whole]
    assert [r.status for r in read_records(resumed.journal.folder)] == [r.status for r in whole]


def _flat(config: Config) -> dict:
    data = config.evaluator.data
    return {"runs_dir": config.runs_dir, "members": config.members, "data.path": data.path,
            "data.target": data.target, "evaluator.device": "cpu"}  # fmt: skip


def test_a_learning_sampler_is_told_the_local_proposals_outcomes():
    from edas_agent.proposers.sampler import OptunaProposer

    sampler = OptunaProposer(0, "tpe")
    proposer = ExploringProposer(Stubborn(), sampler, explore(global_share=0.0, sampler="tpe"))
    ctx = context(0.5)
    proposer.propose(ctx)  # local: epochs 4
    assert proposer.kind[ctx.step] == "local"
    assert len(sampler.study.trials) == 1  # the start, before any global draw
    judged = HistoryEntry(step=ctx.step, status="rejected", edits=[], rationale="", reason="",
                          E_M=0.123)  # fmt: skip
    proposer.propose(context(0.5, step=ctx.step + 2, history=[judged]))
    told = [t for t in sampler.study.trials if t.values == [0.123]]
    assert len(told) == 1
    assert told[0].params["/training/epochs"] == 4  # the local proposal's document
    not_judged = HistoryEntry(step=ctx.step + 2, status="failed", edits=[], rationale="",
                              reason="")  # fmt: skip
    before = len(sampler.study.trials)
    proposer.propose(context(0.5, step=ctx.step + 3, history=[not_judged]))
    assert len(sampler.study.trials) == before  # nothing measured, nothing told
