"""The weighted Gram matrix A21 W A12 that the Schur complement subtracts, for every θ.

When the eliminated factor has one column per level (K1 = 1), W is diagonal and
G = Σ_l w_l a_l a_lᵀ, a_l the l-th row of A12. Its non-zeros come from pairs of non-zeros in the
same row; those pairs are listed once, so each θ costs one gather and one bincount straight into
the dense result (no sparse-times-sparse product, whose pattern scipy recomputes every time).
Otherwise, or when the pair list would be larger than a dense product, scipy.sparse does it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Pair lists longer than this fall back to sparse products (memory: ~20 bytes per pair).
MAX_PAIRS = 40_000_000


class WeightedGram:
    def __init__(self, A12: sp.csr_matrix, K1: int):
        self.A12, self.A21 = A12, A12.T.tocsr()
        self.q2 = A12.shape[1]
        self.K1 = K1
        counts = np.diff(A12.indptr)
        n_pairs = int((counts.astype(np.int64) ** 2).sum())
        self.pairs = self.pair_cols = None
        if K1 == 1 and n_pairs <= MAX_PAIRS:
            self.pairs = _pairs(A12, counts, self.q2)
            self.pair_cols = np.divmod(self.pairs[0], self.q2)  # (i, j) of each pair

    def __call__(self, W: np.ndarray) -> np.ndarray:
        """Dense (q2, q2) A12ᵀ blockdiag(W) A12 for W of shape (L1, K1, K1)."""
        if self.pairs is not None:
            target, row, prod = self.pairs
            flat = np.bincount(target, weights=W[row, 0, 0] * prod, minlength=self.q2 ** 2)
            return flat.reshape(self.q2, self.q2)
        L1, K1, _ = W.shape
        indptr = np.arange(0, L1 * K1 * K1 + 1, K1)
        indices = ((np.arange(L1 * K1) // K1) * K1)[:, None] + np.arange(K1)
        Wd = sp.csr_matrix((W.ravel(), indices.ravel(), indptr), shape=(L1 * K1, L1 * K1))
        return (self.A21 @ (Wd @ self.A12)).toarray()


def _pairs(A12: sp.csr_matrix, counts: np.ndarray, q2: int):
    """Every ordered pair (e, f) of non-zeros in one row: target cell, row, product."""
    rows = np.repeat(np.arange(A12.shape[0]), counts)  # row of each non-zero
    reps = counts[rows]  # each non-zero pairs with all of its row
    first = np.repeat(np.arange(A12.nnz), reps)
    # Offsets 0..reps-1 within each run, then shifted to the row's first non-zero.
    starts = np.repeat(np.cumsum(reps) - reps, reps)
    second = A12.indptr[rows[first]] + (np.arange(first.size) - starts)
    cols = A12.indices
    target = cols[first].astype(np.int64) * q2 + cols[second]
    return target, rows[first], A12.data[first] * A12.data[second]
