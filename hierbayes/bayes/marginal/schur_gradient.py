"""The Schur marginal log-likelihood, its gradient and exact draws of the group effects (numba).

See `hierbayes.bayes.marginal.schur_kernels` for the notation and the formulas. The arguments
``data`` are the design's statistics in the order of `DATA` (`hierbayes.bayes.marginal.schur`
builds them once per fit); ``T`` is (factors, Kmax, Kmax), factor f's lower-triangular K_f × K_f
factor in its leading corner.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .schur_kernels import backward, eliminate, forward, lower_inverse, times_T, times_T_plain

# The design's statistics, in the order the kernels take them.
DATA = ("n", "q", "ete", "Xte", "XtX", "Zte", "ZtX", "A11", "bptr", "bfac", "bcol", "bvptr",
        "bval", "K", "J", "off", "A22")
_LOG_2PI = float(np.log(2.0 * np.pi))


@njit(cache=True, nogil=True)
def _factor(delta, var, T, ete, Xte, XtX, Zte, ZtX, A11, bptr, bfac, bcol, bvptr, bval, K, J,
            off, A22):
    """w, rᵀr, the factorization and x = L⁻¹c of one parameter value."""
    w = Zte - np.dot(ZtX, delta)
    rr = ete - 2.0 * np.dot(Xte, delta) + np.dot(delta, np.dot(XtX, delta))
    c = times_T(w, T, K, J, off)
    L1, H, x1, S, rhs2, logdet1 = eliminate(T, var, c, A11, bptr, bfac, bcol, bvptr, bval, K,
                                            J, off, A22)
    LS = np.linalg.cholesky(S) if S.shape[0] else S
    x2 = forward(LS, rhs2)
    logdet = logdet1
    for i in range(LS.shape[0]):
        logdet += 2.0 * np.log(LS[i, i])
    return w, rr, L1, H, x1, LS, x2, logdet


@njit(cache=True, nogil=True)
def back_substitute(L1, H, LS, t1, t2, bptr, bfac, bcol, bvptr, K):
    """z = L⁻ᵀ t for the block factor L = [[L1, 0], [Hᵀ, L_S]]."""
    K1 = L1.shape[1]
    z2 = backward(LS, t2)
    z1 = np.empty_like(t1)
    rest = np.empty(K1)
    for level in range(L1.shape[0]):
        for a in range(K1):
            s = t1[level * K1 + a]
            for b in range(bptr[level], bptr[level + 1]):
                kb, ob = K[bfac[b]], bvptr[b]
                for i in range(kb):
                    s -= H[ob + a * kb + i] * z2[bcol[b] + i]
            rest[a] = s
        z1[level * K1:(level + 1) * K1] = backward(L1[level], rest)
    return np.concatenate((z1, z2))


@njit(cache=True, nogil=True)
def value_and_gradient(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, A11, bptr, bfac, bcol,
                       bvptr, bval, K, J, off, A22):
    """(log p(y | β, T, σ²), ∂/∂δ, ∂/∂σ², ∂/∂T) at δ = β − β̂."""
    w, rr, L1, H, x1, LS, x2, logdet = _factor(delta, var, T, ete, Xte, XtX, Zte, ZtX, A11,
                                               bptr, bfac, bcol, bvptr, bval, K, J, off, A22)
    quad = np.dot(x1, x1) + np.dot(x2, x2)
    value = -0.5 * (n * _LOG_2PI + (n - q) * np.log(var) + logdet + (rr - quad) / var)
    u = back_substitute(L1, H, LS, x1, x2, bptr, bfac, bcol, bvptr, K)
    v = times_T_plain(u, T, K, J, off)
    Av = _A_times(v, A11, bptr, bfac, bcol, bvptr, bval, K, J, A22)
    blocks = _inverse_block_sums(L1, H, LS, bptr, bfac, bcol, bvptr, K, J, off, T.shape[1])
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


@njit(cache=True, nogil=True)
def _outer_sum(d, u, k, levels, offset):
    """Σ over a factor's levels of d_l u_lᵀ (k × k)."""
    out = np.zeros((k, k))
    for m in range(levels):
        o = offset + m * k
        for a in range(k):
            for b in range(k):
                out[a, b] += d[o + a] * u[o + b]
    return out


@njit(cache=True, nogil=True)
def _A_times(v, A11, bptr, bfac, bcol, bvptr, bval, K, J, A22):
    """ZᵀZ v from its stored pieces."""
    K1, J1 = K[0], J[0]
    q1 = K1 * J1
    out = np.zeros_like(v)
    out[q1:] = np.dot(A22, v[q1:]) if A22.shape[0] else out[q1:]
    for level in range(J1):
        o = level * K1
        for a in range(K1):
            s = 0.0
            for b in range(K1):
                s += A11[level, a, b] * v[o + b]
            out[o + a] += s
        for b in range(bptr[level], bptr[level + 1]):
            kb, ob, col = K[bfac[b]], bvptr[b], q1 + bcol[b]
            for a in range(K1):
                for i in range(kb):
                    value = bval[ob + a * kb + i]
                    out[o + a] += value * v[col + i]
                    out[col + i] += value * v[o + a]
    return out


@njit(cache=True, nogil=True)
def _inverse_block_sums(L1, H, LS, bptr, bfac, bcol, bvptr, K, J, off, kmax):
    """Per factor, the sum over its levels of the diagonal blocks of P⁻¹ (factors, Kmax, Kmax)."""
    K1, J1 = K[0], J[0]
    q1 = K1 * J1
    X = lower_inverse(LS)
    Sinv = np.dot(X.T, X)
    out = np.zeros((K.shape[0], kmax, kmax))
    for f in range(1, K.shape[0]):
        k = K[f]
        for m in range(J[f]):
            o = off[f] - q1 + m * k
            out[f, :k, :k] += Sinv[o:o + k, o:o + k]
    Linv = np.zeros((K1, K1))
    unit = np.zeros(K1)
    for level in range(J1):
        Q = np.eye(K1)
        for b in range(bptr[level], bptr[level + 1]):
            kb, ob = K[bfac[b]], bvptr[b]
            for b2 in range(bptr[level], bptr[level + 1]):
                k2, o2 = K[bfac[b2]], bvptr[b2]
                for i in range(kb):
                    for j in range(k2):
                        s = Sinv[bcol[b] + i, bcol[b2] + j]
                        for a in range(K1):
                            for a2 in range(K1):
                                Q[a, a2] += H[ob + a * kb + i] * s * H[o2 + a2 * k2 + j]
        for j in range(K1):
            unit[:] = 0.0
            unit[j] = 1.0
            Linv[:, j] = forward(L1[level], unit)
        out[0, :K1, :K1] += np.dot(Linv.T, np.dot(Q, Linv))
    return out


@njit(cache=True, nogil=True)
def draw_effects(delta, var, T, noise, ete, Xte, XtX, Zte, ZtX, A11, bptr, bfac, bcol, bvptr,
                 bval, K, J, off, A22):
    """One exact draw of z | β, T, σ: L⁻ᵀ(L⁻¹c + σξ), ξ = `noise` (q,) standard normal."""
    _, _, L1, H, x1, LS, x2, _ = _factor(delta, var, T, ete, Xte, XtX, Zte, ZtX, A11, bptr,
                                         bfac, bcol, bvptr, bval, K, J, off, A22)
    sigma = np.sqrt(var)
    q1 = x1.shape[0]
    t1 = x1 + sigma * noise[:q1]
    t2 = x2 + sigma * noise[q1:]
    return back_substitute(L1, H, LS, t1, t2, bptr, bfac, bcol, bvptr, K)
