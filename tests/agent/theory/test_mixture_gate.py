"""The mixture search's gate (agent/theory/mixture_gate.py): a candidate judged as a newcomer to
the current mixture."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edas_agent.theory.mixture import mixture_error, moments
from edas_agent.theory.mixture_gate import Part, decide_mixture, judge_mixture
from edas_agent.training.learners import Pool

M = 12


def pools(rng, n: int = 400, k: int = 4):
    """Three architectures: a; a variant making the same errors, larger; and an independent
    one a little worse on its own (the diverse newcomer)."""
    y = rng.integers(0, 2, n)
    shared = rng.normal(0, 0.3, n)
    per_seed = rng.normal(0, 0.05, (k, n))

    def learners(bias, own_sd):
        return y + bias + per_seed + rng.normal(0, own_sd, (k, n))

    made = {
        "a": learners(shared, 0.05),
        "variant": learners(1.3 * shared, 0.05),  # the same errors, larger
        "diverse": learners(rng.normal(0, 0.33, n), 0.05),
    }
    return {h: Pool(p, p.copy(), parameters=1) for h, p in made.items()}, y


def judge(before, candidate, stored, y, **options):
    return judge_mixture(before, candidate, stored, y, y, M, seed=0, **options)


def start(learners: int = 4) -> list[Part]:
    return [Part(step=0, arch_hash="a", members=M, learners=learners)]


def newcomer(arch_hash: str, learners: int = 2) -> Part:
    return Part(step=3, arch_hash=arch_hash, members=0, learners=learners)


def test_a_diverse_newcomer_joins_at_the_brute_force_best_mixture():
    stored, y = pools(np.random.default_rng(0))
    judged = judge(start(), newcomer("diverse"), stored, y)
    m = moments([stored["a"].val, stored["diverse"].val[:2]], y)
    every = [np.array([n, M - n]) for n in range(M + 1)]
    best = min(every, key=lambda counts: mixture_error(m, counts))
    assert judged.accepted and judged.E_after < judged.E_before
    assert {p.arch_hash: p.members for p in judged.after} == {"a": best[0], "diverse": best[1]}
    assert judged.E_after == pytest.approx(mixture_error(m, best), abs=1e-12)
    assert judged.E_before == pytest.approx(mixture_error(m, np.array([M, 0])), abs=1e-12)
    assert 0 < best[1] < M  # a real mixture, not a replacement
    assert judged.interval.upper < 0 and judged.cross < judged.mixture_moment


def test_a_close_variant_that_is_worse_is_left_out():
    stored, y = pools(np.random.default_rng(1))
    judged = judge(start(), newcomer("variant"), stored, y)
    assert not judged.accepted
    assert judged.after == start() and judged.E_after == judged.E_before
    assert "leaves it out" in judged.reason
    assert judged.correlation is not None and judged.correlation > 0.9


def test_the_floor_and_the_confidence_can_each_refuse_a_gain():
    stored, y = pools(np.random.default_rng(0))
    gain = -judge(start(), newcomer("diverse"), stored, y).delta
    floored = judge(start(), newcomer("diverse"), stored, y, floor=gain * 1.01)
    assert not floored.accepted and "< floor" in floored.reason
    assert judge(start(), newcomer("diverse"), stored, y, floor=gain * 0.99).accepted
    tiny = {h: Pool(p.val[:, :12], p.test[:, :12], 1) for h, p in stored.items()}
    unsure = judge(start(), newcomer("diverse"), tiny, y[:12], confidence=0.99)
    assert unsure.E_after <= unsure.E_before
    assert unsure.accepted == (unsure.interval.upper < 0 and unsure.E_after < unsure.E_before)


def test_a_limit_on_architectures_is_kept():
    stored, y = pools(np.random.default_rng(0))
    two = [Part(step=0, arch_hash="a", members=6, learners=4),
           Part(step=1, arch_hash="variant", members=6, learners=4)]  # fmt: skip
    judged = judge(two, newcomer("diverse"), stored, y, max_architectures=2)
    assert len(judged.after) <= 2 and sum(p.members for p in judged.after) == M


def test_an_architecture_already_in_the_mixture_cannot_join_again():
    stored, y = pools(np.random.default_rng(0))
    again = judge(start(2), newcomer("a", learners=4), stored, y)
    assert not again.accepted and "already in the mixture" in again.reason


def test_decide_mixture_needs_every_condition():
    """The decision is a function of logged numbers only (what replay re-derives from)."""
    stored, y = pools(np.random.default_rng(0))
    judged = judge(start(), newcomer("diverse"), stored, y)
    logged = (judged.before, judged.after, judged.E_before, judged.E_after, judged.interval)
    for confidence, min_effect in itertools.product([None, 0.9], [None, 0.0, 1.0]):
        accepted, _ = decide_mixture("diverse", *logged, confidence, min_effect)
        assert accepted == (min_effect != 1.0)
    assert not decide_mixture("variant", *logged, None, None)[0]  # not the one that joined
