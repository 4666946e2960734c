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

The partners of all levels are stored flat, column by column of the rest: level l owns the
columns ``pcol[pptr[l]:pptr[l+1]]`` (sorted; m_l of them) and the K1 × m_l values of A12_l,
row-major, in ``pval`` from ``K1 * pptr[l]`` (H_l is stored the same way). The columns come in
whole level blocks of the other factors (K_f columns each, zeros kept): level l owns the blocks
``bptr[l]:bptr[l+1]``, block b of factor ``bfac[b]`` starting at column ``bpos[b]`` of ``pcol``.
The pair loops run over scalar columns, tight for the common one-term factors.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True)
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


@njit(nogil=True)
def forward(L, b):
    """x with L x = b (L lower triangular)."""
    x = np.empty_like(b)
    forward_into(L, b, x)
    return x


@njit(nogil=True)
def forward_into(L, b, x):
    """x with L x = b, written into `x`."""
    for i in range(L.shape[0]):
        s = b[i]
        for t in range(i):
            s -= L[i, t] * x[t]
        x[i] = s / L[i, i]


@njit(nogil=True)
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


@njit(nogil=True)
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


@njit(nogil=True)
def rest_sandwich(A22, T, K, J, off, q1):
    """T2ᵀ A22 T2 for the factors after the first (dense q2 × q2)."""
    q2 = A22.shape[0]
    if K.max() == 1:  # diagonal T2: a scaling of rows and columns
        scale = column_scales(T, K, J, off, q1)
        G = np.empty_like(A22)
        for i in range(q2):
            for j in range(q2):
                G[i, j] = scale[i] * A22[i, j] * scale[j]
        return G
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


@njit(nogil=True)
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


@njit(nogil=True)
def eliminate(T, var, c, D):
    """Factor the largest factor level by level and form the Schur complement; `D` is the
    design tuple (`schur_gradient.DESIGN`).

    Returns (L1 (J1, K1, K1), H (as pval), x1 (q1,), S (q2, q2), rhs2 (q2,), logdet1)."""
    A11, K, J, off, A22, bptr, bfac, bpos, pptr, pcol, pval, cval, Gcls = D
    K1, J1 = K[0], J[0]
    q1 = K1 * J1
    L1 = np.empty((J1, K1, K1))
    H = np.empty_like(pval)
    x1 = np.empty(q1)
    S = rest_sandwich(A22, T, K, J, off, q1)
    for i in range(S.shape[0]):
        S[i, i] += var
    rhs2 = c[q1:].copy()
    logdet1 = 0.0
    column, solved, x = np.empty(K1), np.empty(K1), np.empty(K1)
    classes = Gcls.shape[0] > 0
    scalar = K.max() == 1
    scale = column_scales(T, K, J, off, q1) if scalar else np.empty(0)
    for level in range(J1):
        if K1 == 1:  # no small matrices to allocate for one term
            root = np.sqrt(var + T[0, 0, 0] ** 2 * A11[level, 0, 0])
            L1[level, 0, 0] = root
            logdet1 += 2.0 * np.log(root)
            x[0] = c[level] / root
        else:
            P = sandwich(T[0], A11[level], K1)
            for a in range(K1):
                P[a, a] += var
            L1[level] = small_cholesky(P)
            for a in range(K1):
                logdet1 += 2.0 * np.log(L1[level, a, a])
            forward_into(L1[level], c[level * K1:(level + 1) * K1], x)
        x1[level * K1:(level + 1) * K1] = x
        if scalar:  # H_l = t1 a_l D / L1_l: one pass over the level's partners
            ratio = T[0, 0, 0] / L1[level, 0, 0]
            for u in range(pptr[level], pptr[level + 1]):
                H[u] = ratio * pval[u] * scale[pcol[u]]
        else:
            _level_H(level, L1[level], T, K, bptr, bfac, bpos, pptr, pval, H, column, solved)
        _subtract_gram(level, H, x, pptr, pcol, S, rhs2, not classes)
    if classes:
        _subtract_classes(S, T, var, cval, Gcls, scale)
    for i in range(S.shape[0]):  # the updates filled the lower triangle
        for j in range(i):
            S[j, i] = S[i, j]
    return L1, H, x1, S, rhs2, logdet1


@njit(nogil=True)
def column_scales(T, K, J, off, q1):
    """The SD of each column of the rest (every factor one term)."""
    out = np.empty(int(np.sum(K[1:] * J[1:])))
    for f in range(1, K.shape[0]):
        out[off[f] - q1:off[f] - q1 + J[f]] = T[f, 0, 0]
    return out


@njit(nogil=True)
def _subtract_classes(S, T, var, cval, Gcls, scale):
    """S −= D (Σ_c t1² / (σ² + t1² n_c) G_c) D: the Gram of all levels of a one-term largest
    factor, its levels grouped by their ZᵀZ value n_c (G_c: Σ a_l a_lᵀ over the class)."""
    t1sq = T[0, 0, 0] ** 2
    for k in range(cval.shape[0]):
        weight = t1sq / (var + t1sq * cval[k])
        G = Gcls[k]
        for i in range(S.shape[0]):
            wi = weight * scale[i]
            for j in range(i + 1):
                S[i, j] -= wi * G[i, j] * scale[j]


@njit(nogil=True)
def _level_H(level, L, T, K, bptr, bfac, bpos, pptr, pval, H, column, solved):
    """H_l = L⁻¹ T1ᵀ V_l T2 over the partner blocks of one level (into H)."""
    K1 = L.shape[0]
    first, m = pptr[level], pptr[level + 1] - pptr[level]
    h0 = K1 * first
    for b in range(bptr[level], bptr[level + 1]):
        f, start = bfac[b], bpos[b] - first
        k = K[f]
        for j in range(k):
            for a in range(K1):  # (T1ᵀ V T_f)[a, j]
                s = 0.0
                for a2 in range(a, K1):
                    for j2 in range(j, k):
                        s += T[0, a2, a] * pval[h0 + a2 * m + start + j2] * T[f, j2, j]
                column[a] = s
            forward_into(L, column, solved)
            for a in range(K1):
                H[h0 + a * m + start + j] = solved[a]


@njit(nogil=True)
def _subtract_gram(level, H, x, pptr, pcol, S, rhs2, gram):
    """rhs2 −= H_lᵀ x1_l and, with `gram`, S −= H_lᵀH_l (lower triangle) for one level."""
    K1 = x.shape[0]
    first, m = pptr[level], pptr[level + 1] - pptr[level]
    h0 = K1 * first
    cols = pcol[first:first + m]
    if K1 == 1:  # one term: the common case, a plain outer product
        h = H[h0:h0 + m]
        for u in range(m):
            hu, cu = h[u], cols[u]
            rhs2[cu] -= hu * x[0]
            if gram:
                for v in range(u + 1):
                    S[cu, cols[v]] -= hu * h[v]
        return
    for u in range(m):
        cu = cols[u]
        s = 0.0
        for a in range(K1):
            s += H[h0 + a * m + u] * x[a]
        rhs2[cu] -= s
        if not gram:
            continue
        for v in range(u + 1):
            s = 0.0
            for a in range(K1):
                s += H[h0 + a * m + u] * H[h0 + a * m + v]
            S[cu, cols[v]] -= s
