"""Test doubles shipped with the package, for your tests and ours: a proposer that answers
from a script, and a small evaluator in plain numpy (no torch, no network), so the whole
loop (screening, gate rounds, journal, replay, resume) runs in a second.

    from edas_agent.testing import NumpyEvaluator, ScriptedProposer, proposal
    evaluator = NumpyEvaluator(seed=0)
    script = ScriptedProposer([proposal({"op": "replace", "path": "/l2", "value": 0.1})])
    build_search(config, evaluator, script, journal).run()    # edas_agent.session
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edas_agent.evaluators.base import Evaluation, canonical_hash
from edas_agent.outcome import Outcome
from edas_agent.proposers.base import Check, Proposal, ProposalContext
from edas_agent.proposers.edits import Edit
from edas_agent.record import LLMUsage


def proposal(*edits: dict[str, Any], problem: str | None = None, status="invalid") -> Proposal:
    """A proposal of these JSON Patch operations (or, with `problem`, a refused answer)."""
    return Proposal(
        rationale="scripted",
        edits=[Edit.model_validate(e) for e in edits],
        usage=LLMUsage(provider="script", model="script"),
        refused=None if problem is None else Outcome(status, problem),
    )


class ScriptedProposer:
    """Answers each call with the next prepared proposal, and keeps the contexts it was
    shown. The same script gives the same proposals, so a resumed run can replay it."""

    replays_deterministically = True

    def __init__(self, proposals: list[Proposal]):
        self.proposals = list(proposals)
        self.contexts: list[ProposalContext] = []

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        self.contexts.append(context)
        return [self.proposals.pop(0)]


class RidgeArchitecture(BaseModel):
    """The search space of NumpyEvaluator: a ridge regression on a random subset of the
    features, fitted on a bootstrap sample of the rows (each learner its own draw)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    l2: float = Field(1.0, ge=1e-4, le=1e4, description="Ridge penalty.")
    features: float = Field(1.0, ge=0.1, le=1.0, description="Fraction of features kept.")
    rows: float = Field(1.0, ge=0.2, le=1.0, description="Bootstrap sample, as a fraction.")

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def arch_hash(self) -> str:
        return canonical_hash(self.document())


class NumpyEvaluator:
    """A regression task generated from `seed`; learner j uses seed base + j."""

    task = "regression"
    notes: tuple[str, ...] = ()

    def __init__(self, seed: int = 0, rows: int = 600, features: int = 8, noise: float = 1.0):
        rng = np.random.default_rng([seed, 0x7E57])
        x = rng.normal(size=(rows, features))
        y = x @ rng.normal(size=features) + noise * rng.normal(size=rows)
        cut_val, cut_test = int(rows * 0.6), int(rows * 0.8)
        self.x_train, self.y_train = x[:cut_val], y[:cut_val]
        self.x_val, self.y_val = x[cut_val:cut_test], y[cut_val:cut_test]
        self.x_test, self.y_test = x[cut_test:], y[cut_test:]
        self.seed_base = seed * 1000

    def space(self) -> type[RidgeArchitecture]:
        return RidgeArchitecture

    def parse(self, document: dict[str, Any]) -> RidgeArchitecture:
        return RidgeArchitecture.model_validate(document)

    def default_architecture(self) -> RidgeArchitecture:
        return RidgeArchitecture()

    def describe(self) -> dict[str, Any]:
        return {"dataset": "numpy ridge", "task": self.task, "rows": len(self.y_train)}

    def evaluate(self, architecture: BaseModel, learners: int, first: int = 0) -> Evaluation:
        assert isinstance(architecture, RidgeArchitecture)
        fits = [self._fit(architecture, self.seed_base + j) for j in range(first, first + learners)]
        val = np.stack([self.x_val[:, kept] @ w for kept, w in fits]).astype(np.float32)
        test = np.stack([self.x_test[:, kept] @ w for kept, w in fits]).astype(np.float32)
        n, d = self.x_train.shape
        # X^T X of each fit dominates its cost: 2 n d^2 FLOPs
        return Evaluation(val, test, d + 1, 2 * d, 0.0, (0.0,) * learners,
                          train_flops=2.0 * n * d * d * learners)  # fmt: skip

    def _fit(self, architecture: RidgeArchitecture, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        n, d = self.x_train.shape
        kept = np.sort(rng.permutation(d)[: max(1, round(architecture.features * d))])
        rows = rng.integers(0, n, max(2, round(architecture.rows * n)))
        x, y = self.x_train[np.ix_(rows, kept)], self.y_train[rows]
        w = np.linalg.solve(x.T @ x + architecture.l2 * np.eye(len(kept)), x.T @ y)
        return kept, w
