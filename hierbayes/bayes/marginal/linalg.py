"""Small symmetric positive-definite systems, many at once, as element-wise array code.

The exact draws of a grouped model's effects (`hierbayes.bayes.marginal.draws`) need, for every
posterior draw and every level j of the grouping factor, the Cholesky factor of a k × k matrix
P_j (k = the terms of the factor's blocks: 1 to a handful). Batched LAPACK calls pay a fixed cost
per matrix; with k this small it is cheaper to unroll the factorization over the k(k + 1)/2
entries, each entry a numpy array over draws and levels. (During sampling the same systems are
factored by the numba kernel of `hierbayes.bayes.marginal.grouped`.)

A matrix is a list of rows of arrays, ``P[a][b]`` the (a, b) entry of every matrix of the batch;
only the lower triangle (``b <= a``) is read or returned.
"""

from __future__ import annotations

import numpy as np

MAX_UNROLLED = 8  # k³/6 element-wise operations: beyond this a dense factorization is cheaper


def cholesky(P):
    """Lower Cholesky factor L (P = L Lᵀ) of each matrix of the batch, entry by entry."""
    k = len(P)
    L = [[None] * k for _ in range(k)]
    for j in range(k):
        L[j][j] = np.sqrt(_minus(P[j][j], (L[j][t] * L[j][t] for t in range(j))))
        for i in range(j + 1, k):
            L[i][j] = _minus(P[i][j], (L[i][t] * L[j][t] for t in range(j))) / L[j][j]
    return L


def forward(L, c):
    """x with L x = c (c: list of k arrays)."""
    x: list = []
    for i in range(len(L)):
        x.append(_minus(c[i], (L[i][t] * x[t] for t in range(i))) / L[i][i])
    return x


def backward(L, x):
    """u with Lᵀ u = x."""
    k = len(L)
    u: list = [None] * k
    for i in reversed(range(k)):
        u[i] = _minus(x[i], (L[m][i] * u[m] for m in range(i + 1, k))) / L[i][i]
    return u


def congruence(A, T):
    """G = Tᵀ A T (A symmetric); entries of T that are None are structural zeros, skipped, so a
    diagonal or block-diagonal T costs only its nonzero entries. Lower triangle only."""
    k = len(T)
    AT = [[_sum(A[c][d] * T[d][b] for d in range(k) if T[d][b] is not None) for b in range(k)]
          for c in range(k)]  # fmt: skip
    return [[_sum(T[c][a] * AT[c][b] for c in range(k) if T[c][a] is not None)
             for b in range(a + 1)] for a in range(k)]  # fmt: skip


def transpose_times(T, w):
    """Tᵀ w (w: list of k arrays)."""
    k = len(T)
    return [_sum(T[c][a] * w[c] for c in range(k) if T[c][a] is not None) for a in range(k)]


def _sum(terms):
    """Sum of the terms; 0.0 if there are none (an all-zero column of T is a zero too)."""
    terms = list(terms)
    return sum(terms[1:], start=terms[0]) if terms else 0.0


def _minus(value, terms):
    """value - Σ terms, with no subtraction when there are no terms (numpy would copy)."""
    terms = list(terms)
    return value - _sum(terms) if terms else value
