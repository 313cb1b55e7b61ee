from __future__ import annotations

from edas_agent.evaluators.tabular.mutations import ACCURACY, DIVERSITY, MUTATIONS
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.base import HistoryEntry, ProposalContext
from edas_agent.proposers.builtin import BuiltinProposer
from edas_agent.proposers.edits import apply_edits
from edas_agent.theory.gate import Stats, ensemble_error


def context(rho: float, step: int = 1, history=(), evaluated=frozenset()) -> ProposalContext:
    sigma2, E = 0.05, 0.1
    D = sigma2 * (1 - rho)
    return ProposalContext(
        step=step,
        budget=50,
        members=50,
        rule="exact",
        baseline_step=0,
        architecture=Architecture().document(),
        stats=Stats(k=2, E=E, sigma2=sigma2, rho=rho, D=D, E_M=ensemble_error(E, D, 50)),
        history=list(history),
        space_schema=Architecture.model_json_schema(),
        dataset={"categorical_fields": {"colour": 5, "shape": 4}},
        evaluated_hashes=evaluated,
    )


def family(proposal) -> set[str]:
    return {name for name in DIVERSITY | ACCURACY if name in proposal.rationale}


def propose_one(proposer, ctx):
    (proposal,) = proposer.propose(ctx)
    return proposal


def test_same_seed_same_proposals():
    a = [propose_one(BuiltinProposer(4, MUTATIONS), context(0.9, step=s)) for s in range(1, 6)]
    b = [propose_one(BuiltinProposer(4, MUTATIONS), context(0.9, step=s)) for s in range(1, 6)]
    assert [p.edits for p in a] == [p.edits for p in b]


def test_several_proposals_per_round_are_distinct():
    proposals = BuiltinProposer(5, MUTATIONS).propose(
        context(0.9).model_copy(update={"proposals": 4})
    )
    hashes = {
        Architecture.model_validate(apply_edits(Architecture().document(), p.edits)).arch_hash()
        for p in proposals
    }
    assert len(proposals) == 4 and len(hashes) == 4


def test_proposals_stay_inside_the_space():
    proposer = BuiltinProposer(0, MUTATIONS)
    for step in range(1, 60):
        proposal = propose_one(proposer, context(0.5, step=step))
        Architecture.model_validate(apply_edits(Architecture().document(), proposal.edits))


def test_high_rho_favours_diversity_edits_and_low_rho_accuracy_edits():
    def diversity_share(rho: float) -> float:
        proposer = BuiltinProposer(1, MUTATIONS)
        names = [
            n for s in range(1, 200) for n in family(propose_one(proposer, context(rho, step=s)))
        ]
        return sum(n in DIVERSITY for n in names) / len(names)

    assert diversity_share(0.99) > 0.6 > 0.3 > diversity_share(0.05)


def test_already_evaluated_architectures_are_avoided():
    proposer = BuiltinProposer(2, MUTATIONS)
    seen = set()
    for step in range(1, 30):
        proposal = propose_one(proposer, context(0.9, step=step, evaluated=frozenset(seen)))
        architecture = Architecture.model_validate(
            apply_edits(Architecture().document(), proposal.edits)
        )
        assert architecture.arch_hash() not in seen
        seen.add(architecture.arch_hash())


def test_accepted_mutations_are_preferred_later():
    proposer = BuiltinProposer(3, MUTATIONS)
    first = propose_one(proposer, context(0.9, step=1))
    winner = sorted(family(first))
    entry = HistoryEntry(step=1, status="accepted", edits=[], rationale="", reason="")
    proposer.propose(context(0.9, step=2, history=[entry]))
    assert all(proposer.accepted[name] == 1 for name in winner)


def on_table(categorical: dict[str, int], numeric: list[str]):
    """Contexts of a table with these columns, and the space's check for that table."""
    fields = {"categorical_fields": list(categorical), "numeric_fields": numeric}
    base = context(0.5).model_copy(
        update={"dataset": {"categorical_fields": categorical, "numeric_fields": numeric}}
    )

    def valid(edits) -> Architecture:
        document = apply_edits(Architecture().document(), edits)
        return Architecture.model_validate(document, context=fields)

    return base, valid


def paths_proposed(base: ProposalContext, valid, rounds: int = 150) -> set[str]:
    proposer = BuiltinProposer(6, MUTATIONS)
    paths = set()
    for step in range(1, rounds):
        proposal = propose_one(proposer, base.model_copy(update={"step": step}))
        valid(proposal.edits)  # every proposal is inside the space for this table
        paths.update(edit.path for edit in proposal.edits)
    return paths


def test_no_embedding_edits_on_a_table_without_categorical_columns():
    paths = paths_proposed(*on_table({}, ["x0", "x1"]))
    assert not any(p.startswith("/embeddings") for p in paths)
    assert "/numeric/transform" in paths and "/bagging/fraction" in paths


def test_no_numeric_edits_on_a_table_without_numeric_columns():
    paths = paths_proposed(*on_table({"colour": 4, "shape": 3}, []))
    assert not any(p.startswith("/numeric") for p in paths)
    assert "/embeddings/dim" in paths


def test_no_shared_dimension_edits_once_every_field_has_its_own():
    base, valid = on_table({"user": 300, "item": 80}, ["x0"])
    own = Architecture().document()
    own["embeddings"]["per_field"] = {"user": 16, "item": 16}
    base = base.model_copy(update={"architecture": own})
    assert "/embeddings/dim" not in paths_proposed(base, valid)
    own["embeddings"]["per_field"] = {"user": 16}  # item still sized by the shared dim
    assert "/embeddings/dim" in paths_proposed(base.model_copy(update={"architecture": own}), valid)


def test_no_bagging_edits_on_a_single_column_table():
    paths = paths_proposed(*on_table({}, ["x0"]))
    assert not any(p.startswith("/bagging") for p in paths) and len(paths) > 5


def test_field_names_are_escaped_in_paths():
    """RFC 6901: '/' is written '~1' and '~' is written '~0' inside a JSON Pointer."""
    base, valid = on_table({"a/b": 50, "t~1": 40, "größe x": 30}, [])
    proposer = BuiltinProposer(7, MUTATIONS)
    overrides: set[str] = set()
    for step in range(1, 300):
        proposal = propose_one(proposer, base.model_copy(update={"step": step}))
        overrides.update(valid(proposal.edits).embeddings.per_field)
    assert overrides == {"a/b", "t~1", "größe x"}


def mutations_against_one_baseline(steps: int, **update) -> list[int]:
    """Mutations per proposal over `steps` rounds against one baseline that never moves,
    each round told every architecture proposed so far; asserts none is proposed twice."""
    proposer = BuiltinProposer(3, MUTATIONS)
    seen: set[str] = set()
    counts = []
    for step in range(1, steps + 1):
        ctx = context(0.9, step=step, evaluated=frozenset(seen)).model_copy(update=update)
        proposal = propose_one(proposer, ctx)
        arch_hash = Architecture.model_validate(
            apply_edits(Architecture().document(), proposal.edits)
        ).arch_hash()
        assert arch_hash not in seen, f"step {step} repeats an evaluated architecture"
        seen.add(arch_hash)
        counts.append(len(family(proposal)))
    return counts


def test_a_baseline_that_stops_moving_gets_farther_proposals_instead_of_repeats():
    # 300 rounds against one baseline exhaust its one- and two-edit draws; the proposer
    # then goes three or four edits out rather than proposing a seen architecture again.
    edit_counts = mutations_against_one_baseline(300)
    assert max(edit_counts[:20]) <= 2 and max(edit_counts) >= 3


def test_a_reach_spreads_a_rounds_proposals_over_one_to_that_many_mutations():
    round_of_8 = context(0.5).model_copy(update={"proposals": 8, "reach": 4})
    proposals = BuiltinProposer(2, MUTATIONS).propose(round_of_8)
    assert [len(family(p)) for p in proposals] == [1, 2, 3, 4, 1, 2, 3, 4]
    for proposal in proposals:
        Architecture.model_validate(apply_edits(Architecture().document(), proposal.edits))


def test_with_a_reach_an_exhausted_one_edit_draw_falls_back_to_two_edits_first():
    # reach 1: every proposal is meant to take one mutation; once 50 one-mutation draws in
    # a row are all seen, the next nearest draw (two mutations) replaces it, not three.
    edit_counts = mutations_against_one_baseline(199, reach=1)
    farther = [n for n in edit_counts if n > 1]
    assert edit_counts[0] == 1 and farther and farther[0] == 2


def test_without_a_reach_proposals_stay_one_or_two_mutations_away():
    round_of_8 = context(0.5).model_copy(update={"proposals": 8})
    proposals = BuiltinProposer(2, MUTATIONS).propose(round_of_8)
    assert {len(family(p)) for p in proposals} <= {1, 2}


def test_the_builtin_proposer_draws_only_from_the_mutations_an_evaluator_offers():
    from edas_agent.config import LLMSettings
    from edas_agent.evaluators.base import Mutations
    from edas_agent.proposers import make_proposer
    from edas_agent.proposers.generic import GenericProposer
    from edas_agent.testing import NumpyEvaluator
    from edas_agent.training.costs import LLMBudget
    from edas_agent.training.door import offered_mutations

    def set_dropout(doc, rng, dataset):
        return [{"op": "replace", "path": "/tower/dropout", "value": 0.3}]

    def layer_norm(doc, rng, dataset):
        return [{"op": "replace", "path": "/tower/norm", "value": "layer"}]

    own = Mutations(diversity={"set_dropout": set_dropout}, accuracy={"layer_norm": layer_norm})
    evaluator = NumpyEvaluator()
    assert offered_mutations(evaluator) is None  # its own space, no mutations: generic
    budget = LLMBudget(LLMSettings())
    assert isinstance(make_proposer(LLMSettings(), 0, budget, None), GenericProposer)
    evaluator.mutations = own
    assert offered_mutations(evaluator) is own
    proposer = make_proposer(LLMSettings(), 0, budget, offered_mutations(evaluator))
    assert isinstance(proposer, BuiltinProposer)
    paths = {e.path for p in proposer.propose(context(0.5).model_copy(update={"proposals": 3}))
             for e in p.edits}  # fmt: skip
    assert paths == {"/tower/dropout", "/tower/norm"}


def test_one_family_of_mutations_is_enough():
    import pytest

    from edas_agent.evaluators.base import Mutations

    def deeper(doc, rng, dataset):
        return [{"op": "replace", "path": "/cross/layers", "value": doc["cross"]["layers"] + 1}]

    with pytest.raises(ValueError, match="at least one mutation"):
        Mutations(diversity={}, accuracy={})
    only = Mutations(diversity={}, accuracy={"deeper": deeper})
    (proposal,) = BuiltinProposer(0, only).propose(context(0.99))  # diversity would be drawn
    assert [e.path for e in proposal.edits] == ["/cross/layers"]
