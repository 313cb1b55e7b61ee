"""Mixtures of architectures: the predicted error of an ensemble with n_a members of each
architecture a (sum n_a = M), and the integer mixture that minimises it (DESIGN.md,
"Mixtures of architectures").

    E_mix = (1/M^2) [ sum_a n_a E_a + sum_a n_a (n_a - 1) C_aa + sum_{a != b} n_a n_b C_ab ]
          = (n^T C n + n . D) / M^2,          with D_a = E_a - C_aa

C_ab is the mean over examples of r_aj . r_bl, averaged over learner pairs with different
seed indices j != l: learner j of every architecture shares seed base+j (data order,
feature bags), and members of a deployed mixture would not. With n_a = M for one
architecture, E_mix is the gate's E_M exactly (C_aa = E - D).

Two optimisers, both finished by the same local search over single-member moves: greedy
forward selection with replacement (Caruana et al. 2004), and projected gradient on the
simplex of weights n/M followed by rounding. `best_mixture` runs both and keeps the lower
error; `ensemble` reports which one won, so the choice stays measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edas_agent.theory.gate import residuals

__all__ = ["Moments", "best_mixture", "example_terms", "mixture_error", "moments"]


@dataclass(frozen=True)
class Moments:
    """Residual second moments of A architectures on one split."""

    C: np.ndarray  # (A, A)
    D: np.ndarray  # (A,) E_a - C_aa: the disagreement of architecture a
    E: np.ndarray  # (A,) single-learner errors

    def __len__(self) -> int:
        return len(self.E)


def moments(predictions: list[np.ndarray], y: np.ndarray) -> Moments:
    """From each architecture's k_a >= 2 learners, (k_a, n) or (k_a, n, C) predictions,
    learner j of every architecture trained with seed base+j."""
    if any(p.shape[0] < 2 for p in predictions):
        raise ValueError("every architecture needs k >= 2 learners")
    R = [residuals(p, y).reshape(p.shape[0], -1) for p in predictions]
    n = predictions[0].shape[1]
    k = np.array([r.shape[0] for r in R])
    sums = np.stack([r.sum(axis=0) for r in R])
    every_pair = sums @ sums.T / n  # all (j, l) pairs, same seed included
    same_seed = np.zeros_like(every_pair)  # the j == l pairs, to be taken out
    for j in range(int(k.max())):
        having = np.flatnonzero(k > j)
        rows = np.stack([R[a][j] for a in having])
        same_seed[np.ix_(having, having)] += rows @ rows.T / n
    pairs = np.outer(k, k) - np.minimum.outer(k, k)
    C = (every_pair - same_seed) / pairs
    E = np.diag(same_seed) / k
    return Moments(C=C, D=E - np.diag(C), E=E)


def mixture_error(m: Moments, counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    members = counts.sum()
    return float((counts @ m.C @ counts + counts @ m.D) / members**2)


def example_terms(predictions: list[np.ndarray], y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """t_i, one per example, whose mean is mixture_error(moments(predictions, y), counts):
    what the paired bootstrap of a mixture decision resamples. O(A^2 n) for the A
    architectures with members, so it is meant for the few of one mixture."""
    counts = np.asarray(counts, dtype=np.float64)
    used = np.flatnonzero(counts)
    R = [residuals(predictions[a], y) for a in used]  # (k_a, n, C) each
    sums = [r.sum(axis=0) for r in R]
    terms = np.zeros(R[0].shape[1])
    for i, a in enumerate(used):
        for j, b in enumerate(used):
            k_a, k_b = R[i].shape[0], R[j].shape[0]
            shared = min(k_a, k_b)  # same-seed pairs, taken out as in `moments`
            same_seed = np.einsum("knc,knc->n", R[i][:shared], R[j][:shared])
            c = (np.sum(sums[i] * sums[j], axis=-1) - same_seed) / (k_a * k_b - shared)
            terms += counts[a] * counts[b] * c
            if a == b:  # D_a = E_a - C_aa, per example
                terms += counts[a] * (np.sum(R[i] ** 2, axis=(0, 2)) / k_a - c)
    return terms / counts.sum() ** 2


def best_mixture(
    m: Moments, members: int, max_architectures: int | None = None
) -> dict[str, np.ndarray]:
    """The integer mixtures of `members` members found by each optimiser, by name
    ("greedy", "simplex"), at most `max_architectures` different architectures."""
    limit = max_architectures or len(m)
    found = {
        "greedy": greedy(m, members, limit)[-1],
        "simplex": rounded_simplex(m, members, limit),
    }
    return {name: local_search(m, counts, limit) for name, counts in found.items()}


def greedy(m: Moments, members: int, limit: int) -> list[np.ndarray]:
    """Forward selection with replacement: add, one at a time, the member that lowers the
    error most. Returns the mixture after each addition (sizes 1 .. members)."""
    counts = np.zeros(len(m))
    path = []
    for size in range(1, members + 1):
        # error of counts + e_a, for every a at once: (q + 2 (C c)_a + C_aa + D.c + D_a)/size^2
        quadratic = counts @ m.C @ counts + 2 * (m.C @ counts) + np.diag(m.C)
        errors = (quadratic + counts @ m.D + m.D) / size**2
        if np.count_nonzero(counts) >= limit:
            errors[counts == 0] = np.inf
        counts = counts.copy()
        counts[int(np.argmin(errors))] += 1
        path.append(counts)
    return path


def rounded_simplex(m: Moments, members: int, limit: int, steps: int = 2000) -> np.ndarray:
    """Minimise w^T C w + w . D / M over the simplex (projected gradient), keep the `limit`
    largest weights (solving again on them), and round w M to integers."""
    support = np.arange(len(m))
    weights = _simplex_minimum(m.C, m.D / members, steps)
    if np.count_nonzero(weights > 1e-9) > limit:
        support = np.sort(np.argsort(-weights)[:limit])
        weights = np.zeros(len(m))
        weights[support] = _simplex_minimum(
            m.C[np.ix_(support, support)], m.D[support] / members, steps
        )
    return _round(weights, members)


def local_search(m: Moments, counts: np.ndarray, limit: int) -> np.ndarray:
    """Move one member from one architecture to another while that lowers the error."""
    counts = counts.copy()
    best = mixture_error(m, counts)
    while True:
        move = _best_move(m, counts, limit)
        if move is None:
            return counts
        trial = counts.copy()
        trial[move[0]] -= 1
        trial[move[1]] += 1
        error = mixture_error(m, trial)
        if error >= best - 1e-15:
            return counts
        counts, best = trial, error


def _best_move(m: Moments, counts: np.ndarray, limit: int) -> tuple[int, int] | None:
    """The single move a -> b that lowers n^T C n + n . D most (the size is unchanged)."""
    Cc = m.C @ counts
    diag = np.diag(m.C)
    # change of the objective for n - e_a + e_b, for all (a, b):
    # 2 (Cc_b - Cc_a) + C_aa + C_bb - 2 C_ab + D_b - D_a
    change = (2 * (Cc[None, :] - Cc[:, None]) + diag[:, None] + diag[None, :] - 2 * m.C
              + m.D[None, :] - m.D[:, None])  # fmt: skip
    change[counts == 0, :] = np.inf  # nothing to move away
    np.fill_diagonal(change, np.inf)
    if np.count_nonzero(counts) >= limit:
        # a new architecture may enter only where the one left empties
        newcomers = counts == 0
        change[np.ix_(counts > 1, newcomers)] = np.inf
    a, b = np.unravel_index(int(np.argmin(change)), change.shape)
    return (int(a), int(b)) if change[a, b] < 0 else None


def _simplex_minimum(C: np.ndarray, linear: np.ndarray, steps: int) -> np.ndarray:
    symmetric = (C + C.T) / 2
    # 1 / Lipschitz constant of the gradient; the largest absolute row sum bounds the
    # spectral radius and costs O(A^2), not an eigendecomposition
    step = 1.0 / (2 * max(np.abs(symmetric).sum(axis=1).max(), 1e-12))
    weights = np.full(len(linear), 1.0 / len(linear))
    for _ in range(steps):
        moved = _project(weights - step * (2 * symmetric @ weights + linear))
        if np.abs(moved - weights).max() < 1e-10:
            return moved
        weights = moved
    return weights


def _project(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1
    index = np.arange(1, len(v) + 1)
    rho = np.flatnonzero(u - cumulative / index > 0)[-1]
    return np.maximum(v - cumulative[rho] / (rho + 1), 0.0)


def _round(weights: np.ndarray, members: int) -> np.ndarray:
    """Largest remainders: integers summing to `members`, each within 1 of weights * M."""
    scaled = weights * members
    counts = np.floor(scaled)
    short = members - int(counts.sum())
    counts[np.argsort(-(scaled - counts))[:short]] += 1
    return counts
