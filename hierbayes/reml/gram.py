"""The weighted Gram matrix A21 W A12 that the Schur complement subtracts, for every θ.

When the eliminated factor has one column per level (K1 = 1), W is diagonal and
G = Σ_l w_l a_l a_lᵀ, a_l the l-th row of A12. Its non-zeros come from pairs of non-zeros in the
same row; those pairs are listed once, so each θ costs one gather and one bincount straight into
the dense result (no sparse-times-sparse product, whose pattern scipy recomputes every time).
Otherwise, or when the pair list would be larger than a dense product, scipy.sparse does it.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

# Pair lists longer than this fall back to sparse products (memory: ~50 bytes per pair).
MAX_PAIRS = 40_000_000


class WeightedGram:
    def __init__(self, A12: sp.csr_matrix, K1: int, like: WeightedGram | None = None):
        """`like`: the Gram of the same design under other weights (a GLMM's previous PIRLS
        step); its pair list is reused when A12 has the same pattern (it almost always has)."""
        self.A12 = A12
        self.q2 = A12.shape[1]
        self.K1 = K1
        counts = np.diff(A12.indptr).astype(np.int64)
        n_pairs = int((counts * (counts + 1) // 2).sum())
        self.pairs = None
        if like is not None and like.pairs is not None and _same_pattern(like.A12, A12):
            self.pairs = like.pairs.with_values(A12)
        elif K1 == 1 and n_pairs <= MAX_PAIRS:
            self.pairs = Pairs(A12, counts, self.q2)

    def __call__(self, W: np.ndarray) -> np.ndarray:
        """(q2, q2) A12ᵀ blockdiag(W) A12 for W of shape (L1, K1, K1).

        From the pair list only the lower triangle (with the diagonal) is filled: that is all
        LAPACK's Cholesky reads; `symmetric()` completes it where a full matrix is needed.
        """
        if self.pairs is not None:
            pairs = self.pairs
            flat = np.bincount(pairs.target, weights=W[pairs.row, 0, 0] * pairs.prod,
                               minlength=self.q2 ** 2)
            return flat.reshape(self.q2, self.q2)
        L1, K1, _ = W.shape
        indptr = np.arange(0, L1 * K1 * K1 + 1, K1)
        indices = ((np.arange(L1 * K1) // K1) * K1)[:, None] + np.arange(K1)
        Wd = sp.csr_matrix((W.ravel(), indices.ravel(), indptr), shape=(L1 * K1, L1 * K1))
        return np.tril((self.A12.T @ (Wd @ self.A12)).toarray())


def _same_pattern(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and a.nnz == b.nnz and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices))


def symmetric(lower: np.ndarray) -> np.ndarray:
    """A full symmetric matrix from the lower triangle of `lower` (its upper one is ignored)."""
    return np.tril(lower) + np.tril(lower, -1).T


class Pairs:
    """Unordered pairs {e, f} of non-zeros of one row of A12 (e's column i >= f's column j),
    listed row by row.

    With the columns sorted within each row, the non-zero at position k of a row pairs with
    those at positions 0..k (itself included): k + 1 partners, so only the lower triangle of
    each row's square is ever formed."""

    def __init__(self, A12: sp.csr_matrix, counts: np.ndarray, q2: int):
        A12 = A12.sorted_indices() if not A12.has_sorted_indices else A12
        small = np.int32 if A12.nnz < 2**31 and A12.shape[0] < 2**31 else np.int64
        indptr = A12.indptr.astype(small, copy=False)
        rows = np.repeat(np.arange(A12.shape[0], dtype=small), counts)  # row of each non-zero
        reps = np.arange(A12.nnz, dtype=small) - indptr[rows] + 1  # position in its row + 1
        first = np.repeat(np.arange(A12.nnz, dtype=small), reps)
        # Offsets 0..reps-1 within each run, shifted to the row's first non-zero.
        offsets = np.arange(first.size, dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
        self.first = first
        self.row = rows[first]
        self.second = (indptr[self.row] + offsets).astype(small)
        cols = A12.indices.astype(small, copy=False)
        self.i, self.j = cols[self.first], cols[self.second]
        self.target = self.i.astype(np.int64) * q2 + self.j  # lower triangle
        self.prod = A12.data[self.first] * A12.data[self.second]
        self.off = self.i != self.j  # off-diagonal pairs stand for both orders
        self._bins: dict = {}

    def with_values(self, A12: sp.csr_matrix) -> Pairs:
        """The same pairs for a matrix of the same pattern with other values."""
        A12 = A12.sorted_indices() if not A12.has_sorted_indices else A12
        out = copy.copy(self)
        out.prod = A12.data[self.first] * A12.data[self.second]
        return out

    def bins(self, column_group: np.ndarray, n_groups: int) -> np.ndarray:
        """Per pair, its bin (row, group of i, group of j, off-diagonal): pair sums binned so
        are all that a gradient over scalar groups needs (schur_grad.binned_sums)."""
        key = n_groups
        if key not in self._bins:
            gi, gj = column_group[self.i], column_group[self.j]
            self._bins[key] = (((self.row.astype(np.int64) * n_groups + gi) * n_groups + gj) * 2
                               + self.off)
        return self._bins[key]
