"""Numba kernels of the Schur marginal likelihood (several grouping factors), with its gradient.

Notation as `hierbayes.bayes.marginal.model`: ``P = σ²I + TᵀAT`` (A = ZᵀZ, T block diagonal: per
level of factor f the lower-triangular K_f × K_f factor T_f), ``c = Tᵀw`` with ``w = Zᵀ(y − Xβ)``,

    log p(y) = −½ [n log 2π + (n − q) log σ² + log|P| + (rᵀr − cᵀP⁻¹c) / σ²].

The effects are ordered [largest factor | the rest]. The largest factor's block P11 is block
diagonal (one K1 × K1 block per level: a row has one level of each factor), so it is factored level
by level, L1_l; the rest is the Schur complement

    S = σ²I + T2ᵀA22T2 − Σ_l H_lᵀH_l,    H_l = L1_l⁻¹ T1ᵀ A12_l T2     (q2 × q2, dense),

where A12_l is level l's row of ZᵀZ between the largest factor and the rest: a few partner blocks
(the levels of the other factors that share rows with l). ``log|P| = Σ_l log|P11_l| + log|S|``;
with ``x1_l = L1_l⁻¹c1_l``, ``x2 = L_S⁻¹(c2 − Σ_l H_lᵀx1_l)``, ``cᵀP⁻¹c = Σ‖x1‖² + ‖x2‖²``.

Gradient (u = P⁻¹c, v = Tu):

    ∂/∂T_f = Σ_levels of f [(w_l − (Av)_l) u_lᵀ / σ² − T_f⁻ᵀ (I − σ² (P⁻¹)_ll)],
    ∂/∂σ²  = −½ [(n − q)/σ² + tr P⁻¹ − (rᵀr − cᵀu)/σ⁴ + uᵀu/σ²],
    ∂/∂δ   = (Xᵀr − (ZᵀX)ᵀv) / σ²       (δ = β − β̂),

using ``A T P⁻¹ = T⁻ᵀ(P − σ²I)P⁻¹ = T⁻ᵀ(I − σ²P⁻¹)``, so only the diagonal blocks of P⁻¹ are
needed: ``(P⁻¹)_ll = L1_l⁻ᵀ(I + H_l S⁻¹ H_lᵀ)L1_l⁻¹`` for the largest factor and the diagonal
blocks of S⁻¹ for the rest. The cost per evaluation is that of factoring and inverting S,
O(q2³), plus sums over the partner pairs of each level (the elimination's own work).

The partner blocks of all levels are stored flat: level l owns blocks ``bptr[l]:bptr[l+1]``;
block b belongs to factor ``bfac[b]``, starts at column ``bcol[b]`` of the rest, and holds the
K1 × K_f values ``bval[bvptr[b]:bvptr[b+1]]`` row-major.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_BLOCK = 96  # columns per block of the triangular inverse (BLAS-sized products)


@njit(cache=True, nogil=True)
def small_cholesky(P):
    """Lower Cholesky factor of a small SPD matrix (K ≤ 8: loops beat LAPACK calls)."""
    k = P.shape[0]
    L = np.zeros_like(P)
    for j in range(k):
        s = P[j, j]
        for t in range(j):
            s -= L[j, t] * L[j, t]
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, k):
            s = P[i, j]
            for t in range(j):
                s -= L[i, t] * L[j, t]
            L[i, j] = s / L[j, j]
    return L


@njit(cache=True, nogil=True)
def forward(L, b):
    """x with L x = b (L lower triangular)."""
    n = L.shape[0]
    x = b.copy()
    for i in range(n):
        s = x[i]
        for t in range(i):
            s -= L[i, t] * x[t]
        x[i] = s / L[i, i]
    return x


@njit(cache=True, nogil=True)
def backward(L, b):
    """x with Lᵀ x = b (L lower triangular)."""
    n = L.shape[0]
    x = b.copy()
    for i in range(n - 1, -1, -1):
        s = x[i]
        for t in range(i + 1, n):
            s -= L[t, i] * x[t]
        x[i] = s / L[i, i]
    return x


@njit(cache=True, nogil=True)
def lower_inverse(L):
    """L⁻¹ of a lower-triangular L, by blocks of rows with BLAS products."""
    n = L.shape[0]
    X = np.zeros_like(L)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        D = np.ascontiguousarray(L[start:stop, start:stop])
        Dinv = np.zeros_like(D)
        eye = np.zeros(stop - start)
        for j in range(stop - start):
            eye[:] = 0.0
            eye[j] = 1.0
            Dinv[:, j] = forward(D, eye)
        X[start:stop, start:stop] = Dinv
        if start > 0:
            # Row block i: X_i,<i = −D⁻¹ (L_i,<i X_<i,<i).
            left = np.ascontiguousarray(L[start:stop, :start])
            above = np.ascontiguousarray(X[:start, :start])
            X[start:stop, :start] = -np.dot(Dinv, np.dot(left, above))
    return X


@njit(cache=True, nogil=True)
def times_T(w, T, K, J, off):
    """Tᵀw (or T w with T transposed by the caller), level by level, for every factor."""
    out = np.empty_like(w)
    for f in range(K.shape[0]):
        k = K[f]
        for m in range(J[f]):
            o = off[f] + m * k
            for a in range(k):
                s = 0.0
                for b in range(k):
                    s += T[f, b, a] * w[o + b]
                out[o + a] = s
    return out


@njit(cache=True, nogil=True)
def times_T_plain(w, T, K, J, off):
    """T w, level by level."""
    out = np.empty_like(w)
    for f in range(K.shape[0]):
        k = K[f]
        for m in range(J[f]):
            o = off[f] + m * k
            for a in range(k):
                s = 0.0
                for b in range(k):
                    s += T[f, a, b] * w[o + b]
                out[o + a] = s
    return out


@njit(cache=True, nogil=True)
def rest_sandwich(A22, T, K, J, off, q1):
    """T2ᵀ A22 T2 for the factors after the first (dense q2 × q2)."""
    q2 = A22.shape[0]
    Y = np.empty_like(A22)
    for f in range(1, K.shape[0]):  # Y = A22 T2, column blocks
        k = K[f]
        for m in range(J[f]):
            o = off[f] - q1 + m * k
            for b in range(k):
                for i in range(q2):
                    s = 0.0
                    for a in range(b, k):
                        s += A22[i, o + a] * T[f, a, b]
                    Y[i, o + b] = s
    G = np.empty_like(A22)
    for f in range(1, K.shape[0]):  # G = T2ᵀ Y, row blocks
        k = K[f]
        for m in range(J[f]):
            o = off[f] - q1 + m * k
            for b in range(k):
                for j in range(q2):
                    s = 0.0
                    for a in range(b, k):
                        s += T[f, a, b] * Y[o + a, j]
                    G[o + b, j] = s
    return G


@njit(cache=True, nogil=True)
def sandwich(T, A, k):
    """Tᵀ A T for the leading k × k of T (lower triangular) and A (k × k)."""
    AT = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            s = 0.0
            for a in range(j, k):
                s += A[i, a] * T[a, j]
            AT[i, j] = s
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            s = 0.0
            for a in range(i, k):
                s += T[a, i] * AT[a, j]
            out[i, j] = s
    return out


@njit(cache=True, nogil=True)
def eliminate(T, var, c, A11, bptr, bfac, bcol, bvptr, bval, K, J, off, A22):
    """Factor the largest factor level by level and form the Schur complement.

    Returns (L1 (J1, K1, K1), H (flat, as bval), x1 (q1,), S (q2, q2), rhs2 (q2,), logdet1)."""
    K1, J1 = K[0], J[0]
    q1 = K1 * J1
    L1 = np.empty((J1, K1, K1))
    H = np.empty_like(bval)
    x1 = np.empty(q1)
    S = rest_sandwich(A22, T, K, J, off, q1)
    for i in range(S.shape[0]):
        S[i, i] += var
    rhs2 = c[q1:].copy()
    logdet1 = 0.0
    for level in range(J1):
        P = sandwich(T[0], A11[level], K1)
        for a in range(K1):
            P[a, a] += var
        L = small_cholesky(P)
        L1[level] = L
        for a in range(K1):
            logdet1 += 2.0 * np.log(L[a, a])
        x = forward(L, c[level * K1:(level + 1) * K1])
        x1[level * K1:(level + 1) * K1] = x
        _partner_blocks(level, L, T, bptr, bfac, bvptr, bval, K, H)
        _subtract_gram(level, H, x, bptr, bfac, bcol, bvptr, K, S, rhs2)
    return L1, H, x1, S, rhs2, logdet1


@njit(cache=True, nogil=True)
def _partner_blocks(level, L, T, bptr, bfac, bvptr, bval, K, H):
    """H_b = L⁻¹ T1ᵀ V_b T_f for the partner blocks b of one level (into H, flat row-major)."""
    K1 = L.shape[0]
    column = np.empty(K1)
    for b in range(bptr[level], bptr[level + 1]):
        f, k, o = bfac[b], K[bfac[b]], bvptr[b]
        for j in range(k):
            for a in range(K1):  # (T1ᵀ V T_f)[a, j]
                s = 0.0
                for a2 in range(a, K1):
                    for j2 in range(j, k):
                        s += T[0, a2, a] * bval[o + a2 * k + j2] * T[f, j2, j]
                column[a] = s
            solved = forward(L, column)
            for a in range(K1):
                H[o + a * k + j] = solved[a]


@njit(cache=True, nogil=True)
def _subtract_gram(level, H, x, bptr, bfac, bcol, bvptr, K, S, rhs2):
    """S −= H_lᵀH_l and rhs2 −= H_lᵀ x1_l over the partner blocks of one level."""
    K1 = x.shape[0]
    for b in range(bptr[level], bptr[level + 1]):
        kb, ob = K[bfac[b]], bvptr[b]
        for i in range(kb):
            s = 0.0
            for a in range(K1):
                s += H[ob + a * kb + i] * x[a]
            rhs2[bcol[b] + i] -= s
        for b2 in range(bptr[level], bptr[level + 1]):
            k2, o2 = K[bfac[b2]], bvptr[b2]
            for i in range(kb):
                for j in range(k2):
                    s = 0.0
                    for a in range(K1):
                        s += H[ob + a * kb + i] * H[o2 + a * k2 + j]
                    S[bcol[b] + i, bcol[b2] + j] -= s
