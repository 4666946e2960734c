"""ZᵀWZ's pieces for new weights W on a fixed pattern: a GLMM's PIRLS step without sparse algebra.

PIRLS re-weights the same design at every Newton step (hundreds per fit). The Schur backend needs
A12 = Z1ᵀWZ2 (on the pattern of the unweighted A12) and the dense A22 = Z2ᵀWZ2, Z1 the columns
of the eliminated grouping factor and Z2 the rest. Each row i of Z holds a fixed set of columns,
so every product z_ia·z_ib lands at a fixed place: in A12's data array or in A22's flat index.
Those places and products are listed once here (`Scatter`); each re-weighting is then one
bincount per piece, instead of a sparse product whose pattern scipy recomputes every time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Scatter:
    """Where the row products of the unweighted Z land in A12.data and in the flat A22."""

    def __init__(self, Zt: sp.csr_matrix, A12: sp.csr_matrix, q1: int):
        q, n = Zt.shape
        q2 = q - q1
        Z = Zt.T.tocsr()
        Z.sort_indices()
        per_row = np.diff(Z.indptr)
        if Z.nnz == 0 or np.any(per_row != per_row[0]):
            raise ValueError("rows with different numbers of stored entries")
        k = int(per_row[0])
        cols, vals = Z.indices.reshape(n, k), Z.data.reshape(n, k)
        k1 = int(np.count_nonzero(cols[0] < q1))
        if np.any((cols[:, :k1] >= q1) | (cols[:, k1:] < q1)):
            raise ValueError("rows that do not hold the same number of eliminated columns")
        c1, c2 = cols[:, :k1], cols[:, k1:] - q1
        v1, v2 = vals[:, :k1], vals[:, k1:]
        keys = (np.repeat(np.arange(A12.shape[0]), np.diff(A12.indptr)).astype(np.int64) * q2
                + A12.indices)
        want = (c1[:, :, None].astype(np.int64) * q2 + c2[:, None, :]).reshape(n, -1)
        self.at12 = np.searchsorted(keys, want).ravel()
        self.prod12 = (v1[:, :, None] * v2[:, None, :]).reshape(n, -1)
        self.at22 = (c2[:, :, None].astype(np.int64) * q2 + c2[:, None, :]).reshape(n, -1).ravel()
        self.prod22 = (v2[:, :, None] * v2[:, None, :]).reshape(n, -1)
        self.nnz12, self.q2 = A12.nnz, q2
        self.indptr, self.indices, self.shape12 = A12.indptr, A12.indices, A12.shape

    def pieces(self, weights: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """(A12, dense A22) of ZᵀWZ."""
        data = np.bincount(self.at12, weights=(weights[:, None] * self.prod12).ravel(),
                           minlength=self.nnz12)
        A12 = sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape12)
        A12.has_sorted_indices = True
        A22 = np.bincount(self.at22, weights=(weights[:, None] * self.prod22).ravel(),
                          minlength=self.q2 * self.q2).reshape(self.q2, self.q2)
        return A12, A22
