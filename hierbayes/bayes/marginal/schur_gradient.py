"""The Schur marginal log-likelihood, its gradient and exact draws of the group effects (numba).

See `hierbayes.bayes.marginal.schur_kernels` for the notation and the formulas. The arguments
``data`` are the design's statistics in the order of `DATA` (`hierbayes.bayes.marginal.schur`
builds them once per fit); ``T`` is (factors, Kmax, Kmax), factor f's lower-triangular K_f × K_f
factor in its leading corner.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .schur_kernels import (
    backward,
    column_scales,
    eliminate,
    forward,
    times_T,
)
from .schur_lapack import cholesky_in_place, invert_in_place

# The design's statistics, in the order the kernels take them.
# The design's layout (a tuple `D` inside the kernels; see `.schur_kernels`): cval and Gcls are
# the level classes of a one-term largest factor (empty when the pair loops are cheaper).
DESIGN = ("A11", "K", "J", "off", "A22", "bptr", "bfac", "bpos", "pptr", "pcol", "pval", "cval",
          "Gcls")
DATA = ("n", "q", "ete", "Xte", "XtX", "Zte", "ZtX", *DESIGN)
INDEX_DATA = ("K", "J", "off", "bptr", "bfac", "bpos", "pptr", "pcol")  # int64
_LOG_2PI = float(np.log(2.0 * np.pi))
# S⁻¹ enters only the gradient (the traces of P⁻¹), never the log-density: from this size on it
# is computed in single precision, when S's condition number is at most `SINGLE_MAX_COND`
# (bounded by ‖S‖∞ / σ², as S ≥ σ²I), so the gradient keeps ~1e-4 relative accuracy or better.
# NUTS stays exact with an inexact gradient: a leapfrog step with any force that depends on the
# position alone preserves volume and is reversible, and every acceptance uses the exact
# log-density; the error only costs a little acceptance. InstEval (q2 = 1,156): 63 → 41 ms of
# LAPACK per gradient.
SINGLE_MIN = 400
SINGLE_MAX_COND = 2000.0


@njit(nogil=True)
def _factor(delta, var, T, ete, Xte, XtX, Zte, ZtX, D, single):
    """w, rᵀr, the factorization and x = L⁻¹c of one parameter value, and whether S⁻¹ is to be
    taken in single precision (`single` 1 or 0; −1: as `single_precision` decides)."""
    K, J, off = D[1], D[2], D[3]
    w = Zte - np.dot(ZtX, delta)
    rr = ete - 2.0 * np.dot(Xte, delta) + np.dot(delta, np.dot(XtX, delta))
    c = times_T(w, T, K, J, off)
    L1, H, x1, S, rhs2, logdet1 = eliminate(T, var, c, D)
    chosen = single == 1 if single >= 0 else single_precision(S, var)
    LS = cholesky_in_place(S)
    x2 = forward(LS, rhs2)
    logdet = logdet1
    for i in range(LS.shape[0]):
        logdet += 2.0 * np.log(LS[i, i])
    return w, rr, L1, H, x1, LS, x2, logdet, chosen


@njit(nogil=True)
def single_precision(S, var):
    """Whether the gradient may invert S in single precision (see `SINGLE_MIN`)."""
    n = S.shape[0]
    if n < SINGLE_MIN:
        return False
    norm = 0.0
    for i in range(n):
        norm = max(norm, np.sum(np.abs(S[i])))
    return norm / var <= SINGLE_MAX_COND


@njit(nogil=True)
def back_substitute(L1, H, LS, t1, t2, pptr, pcol):
    """z = L⁻ᵀ t for the block factor L = [[L1, 0], [Hᵀ, L_S]]."""
    K1 = L1.shape[1]
    z2 = backward(LS, t2)
    z1 = np.empty_like(t1)
    rest = np.empty(K1)
    for level in range(L1.shape[0]):
        first, m = pptr[level], pptr[level + 1] - pptr[level]
        h0 = K1 * first
        for a in range(K1):
            s = t1[level * K1 + a]
            for u in range(m):
                s -= H[h0 + a * m + u] * z2[pcol[first + u]]
            rest[a] = s
        z1[level * K1:(level + 1) * K1] = backward(L1[level], rest)
    return np.concatenate((z1, z2))


@njit(nogil=True)
def value_and_gradient(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, D):
    """(log p(y | β, T, σ²), ∂/∂δ, ∂/∂σ², ∂/∂T) at δ = β − β̂; `D`: the `DESIGN` tuple."""
    return value_and_gradient_in(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, D, -1)


@njit(nogil=True)
def value_and_gradient_in(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, D, single):
    """`value_and_gradient` with S⁻¹ in single precision (`single` 1), double (0) or as
    `single_precision` decides (−1)."""
    A11, K, J, off, A22, pptr, pcol, pval = D[0], D[1], D[2], D[3], D[4], D[8], D[9], D[10]
    w, rr, L1, H, x1, LS, x2, logdet, chosen = _factor(delta, var, T, ete, Xte, XtX, Zte, ZtX, D,
                                                       single)
    quad = np.dot(x1, x1) + np.dot(x2, x2)
    value = -0.5 * (n * _LOG_2PI + (n - q) * np.log(var) + logdet + (rr - quad) / var)
    u = back_substitute(L1, H, LS, x1, x2, pptr, pcol)
    v = times_T(u, np.ascontiguousarray(T.transpose((0, 2, 1))), K, J, off)  # T u
    Av = _A_times(v, A11, K, J, A22, pptr, pcol, pval)
    blocks = _inverse_block_sums(L1, H, LS, T, var, D, chosen)
    trace = 0.0
    gT = np.zeros_like(T)
    for f in range(K.shape[0]):
        k = K[f]
        for a in range(k):
            trace += blocks[f, a, a]
        outer = _outer_sum(w - Av, u, K[f], J[f], off[f])
        Tinv = np.zeros((k, k))
        unit = np.zeros(k)
        for j in range(k):
            unit[:] = 0.0
            unit[j] = 1.0
            Tinv[:, j] = forward(np.ascontiguousarray(T[f, :k, :k]), unit)
        inner = -var * blocks[f, :k, :k]
        for a in range(k):
            inner[a, a] += J[f]
        gT[f, :k, :k] = outer / var - np.dot(Tinv.T, inner)
    g_var = -0.5 * ((n - q) / var + trace - (rr - quad) / var**2 + np.dot(u, u) / var)
    g_delta = (Xte - np.dot(XtX, delta) - np.dot(ZtX.T, v)) / var
    return value, g_delta, g_var, gT


@njit(nogil=True)
def _outer_sum(d, u, k, levels, offset):
    """Σ over a factor's levels of d_l u_lᵀ (k × k)."""
    out = np.zeros((k, k))
    for m in range(levels):
        o = offset + m * k
        for a in range(k):
            for b in range(k):
                out[a, b] += d[o + a] * u[o + b]
    return out


@njit(nogil=True)
def _A_times(v, A11, K, J, A22, pptr, pcol, pval):
    """ZᵀZ v from its stored pieces."""
    K1, J1 = K[0], J[0]
    q1 = K1 * J1
    out = np.zeros_like(v)
    if A22.shape[0]:
        out[q1:] = np.dot(A22, np.ascontiguousarray(v[q1:]))
    for level in range(J1):
        o = level * K1
        first, m = pptr[level], pptr[level + 1] - pptr[level]
        h0 = K1 * first
        for a in range(K1):
            s = 0.0
            for b in range(K1):
                s += A11[level, a, b] * v[o + b]
            for u in range(m):
                col = q1 + pcol[first + u]
                value = pval[h0 + a * m + u]
                s += value * v[col]
                out[col] += value * v[o + a]
            out[o + a] += s
    return out


@njit(nogil=True)
def _inverse_block_sums(L1, H, LS, T, var, D, single):
    """Per factor, the sum over its levels of the diagonal blocks of P⁻¹ (factors, Kmax, Kmax)."""
    K, J, off, pptr, pcol, cval, Gcls = D[1], D[2], D[3], D[8], D[9], D[11], D[12]
    kmax = T.shape[1]
    K1, J1 = K[0], J[0]
    q1 = K1 * J1
    Sinv = invert_in_place(LS, single)  # LS is not used after this
    out = np.zeros((K.shape[0], kmax, kmax))
    for f in range(1, K.shape[0]):
        k = K[f]
        for level in range(J[f]):
            o = off[f] - q1 + level * k
            out[f, :k, :k] += Sinv[o:o + k, o:o + k]
    if Gcls.shape[0] > 0:
        scale = column_scales(T, K, J, off, q1)
        out[0, 0, 0] = _first_factor_classes(L1, Sinv, T, var, cval, Gcls, scale)
        return out
    if K1 == 1:
        out[0, 0, 0] = _first_factor_scalar(L1, H, Sinv, pptr, pcol)
        return out
    Linv = np.zeros((K1, K1))
    unit = np.zeros(K1)
    Q = np.zeros((K1, K1))
    for level in range(J1):
        first, m = pptr[level], pptr[level + 1] - pptr[level]
        h0 = K1 * first
        for a in range(K1):
            for a2 in range(K1):  # (I + H S⁻¹ Hᵀ)[a, a2]
                s = 1.0 if a == a2 else 0.0
                for u in range(m):
                    row = Sinv[pcol[first + u]]
                    t = 0.0
                    for v in range(m):
                        t += row[pcol[first + v]] * H[h0 + a2 * m + v]
                    s += H[h0 + a * m + u] * t
                Q[a, a2] = s
        for j in range(K1):
            unit[:] = 0.0
            unit[j] = 1.0
            Linv[:, j] = forward(L1[level], unit)
        out[0, :K1, :K1] += np.dot(Linv.T, np.dot(Q, Linv))
    return out


@njit(nogil=True)
def _first_factor_scalar(L1, H, Sinv, pptr, pcol):
    """Σ_l (P⁻¹)_ll over the levels of a one-term largest factor: (1 + h_lᵀS⁻¹h_l) / L1_l²."""
    total = 0.0
    for level in range(L1.shape[0]):
        first, last = pptr[level], pptr[level + 1]
        quad = 0.0
        for u in range(first, last):
            row, hu = Sinv[pcol[u]], H[u]
            t = 0.5 * row[pcol[u]] * hu
            for v in range(first, u):
                t += row[pcol[v]] * H[v]
            quad += 2.0 * hu * t
        total += (1.0 + quad) / L1[level, 0, 0] ** 2
    return total


@njit(nogil=True)
def _first_factor_classes(L1, Sinv, T, var, cval, Gcls, scale):
    """As `_first_factor_scalar`, by level classes: Σ_l 1/p_l + Σ_c t1²/p_c² ⟨D S⁻¹ D, G_c⟩."""
    total = 0.0
    for level in range(L1.shape[0]):
        total += 1.0 / L1[level, 0, 0] ** 2
    t1sq = T[0, 0, 0] ** 2
    M = np.empty_like(Sinv)  # D S⁻¹ D, lower triangle, off-diagonal entries counted twice
    for i in range(Sinv.shape[0]):
        for j in range(i):
            M[i, j] = 2.0 * scale[i] * Sinv[i, j] * scale[j]
        M[i, i] = scale[i] * Sinv[i, i] * scale[i]
    for k in range(cval.shape[0]):
        p = var + t1sq * cval[k]
        G, inner = Gcls[k], 0.0
        for i in range(Sinv.shape[0]):
            for j in range(i + 1):
                inner += M[i, j] * G[i, j]
        total += t1sq / p**2 * inner
    return total


@njit(nogil=True)
def draw_effects(delta, var, T, noise, ete, Xte, XtX, Zte, ZtX, D):
    """One exact draw of z | β, T, σ: L⁻ᵀ(L⁻¹c + σξ), ξ = `noise` (q,) standard normal."""
    pptr, pcol = D[8], D[9]
    _, _, L1, H, x1, LS, x2, _, _ = _factor(delta, var, T, ete, Xte, XtX, Zte, ZtX, D, 0)
    sigma = np.sqrt(var)
    q1 = x1.shape[0]
    t1 = x1 + sigma * noise[:q1]
    t2 = x2 + sigma * noise[q1:]
    return back_substitute(L1, H, LS, t1, t2, pptr, pcol)
