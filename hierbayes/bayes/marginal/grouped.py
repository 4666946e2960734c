"""The grouped layout's marginal log-likelihood and its analytic gradient: one numba loop.

Notation as `hierbayes.bayes.marginal.model`: one grouping factor, J levels, k terms per level;
per level j ``P_j = σ²I + TᵀA_jT`` (k × k, A_j = Z_jᵀZ_j, T lower triangular), ``w_j = Z_jᵀr_j``,
``c_j = Tᵀw_j``, ``u_j = P_j⁻¹c_j`` and ``v_j = Tu_j``. Then

    log p(y) = −½ [n log 2π + (n − q) log σ² + Σ_j log|P_j| + (rᵀr − Σ_j c_jᵀu_j) / σ²],
    ∂/∂T  = Σ_j [(w_j − A_jv_j) u_jᵀ / σ² − A_jT P_j⁻¹],
    ∂/∂σ² = −½ [(n − q)/σ² + Σ_j tr P_j⁻¹ − (rᵀr − Σ_j c_jᵀu_j)/σ⁴ + Σ_j u_jᵀu_j / σ²],
    ∂/∂δ  = (Xᵀr − Σ_j (Z_jᵀX_j)ᵀv_j) / σ²        (δ = β − β̂),

the Schur layout's formulas (`hierbayes.bayes.marginal.schur_kernels`) with no rest to eliminate,
and ∂/∂T written with A_jT P_j⁻¹ rather than T⁻ᵀ(I − σ²P_j⁻¹), so that an SD at zero is no
special case. The level loop reuses a handful of k × k work arrays: an evaluation allocates
nothing per level, which is what it costs at these sizes (radon's 85 counties, k = 2: the
element-wise PyTensor graph it replaces took ~15 µs per gradient, mostly array traffic between
small operations).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit

from .logp_op import LogpWithGradient

# The statistics the operation reads after δ, σ² and T, in this order (`model.GRAPH_STATS`).
DATA = ("n", "q", "ete", "Xte", "XtX", "Zte", "ZtX", "A")
VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
_LOG_2PI = float(np.log(2.0 * np.pi))


@njit(nogil=True, cache=True)
def value_and_gradient(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, A):
    """(log p(y | β, T, σ²), ∂/∂δ, ∂/∂σ², ∂/∂T); Zte (J, k), ZtX (k, J, p), A (J, k, k).

    Every k × k quantity is held entry by entry as an array over the levels, and each step loops
    over the levels innermost: with k of 1 to a few, loops over k alone would cost more in loop
    overhead than in arithmetic."""
    rr = ete - 2.0 * np.dot(Xte, delta) + np.dot(delta, np.dot(XtX, delta))
    w = _residual_sums(delta, Zte, ZtX)
    AT, L, D, Dinv = _factor(T, var, A)
    quad, u, uu, v = _solve(T, w, L, Dinv)
    outer, ZtXv = _outer_sums(A, ZtX, w, u, v)
    trace, sandwich = _inverse_sums(AT, L, Dinv)
    value = -0.5 * (n * _LOG_2PI + (n - q) * np.log(var) + _log_det(D) + (rr - quad) / var)
    g_var = -0.5 * ((n - q) / var + trace - (rr - quad) / var**2 + uu / var)
    g_delta = (Xte - np.dot(XtX, delta) - ZtXv) / var
    return value, g_delta, g_var, outer / var - sandwich


@njit(nogil=True, cache=True)
def _residual_sums(delta, Zte, ZtX):
    """w (k, J): Z_jᵀr_j = Z_jᵀe_j − Z_jᵀX_j δ."""
    J, k = Zte.shape
    w = np.empty((k, J))
    for a in range(k):
        w[a] = Zte[:, a]
        for m in range(delta.shape[0]):
            d = delta[m]
            for j in range(J):
                w[a, j] -= ZtX[a, j, m] * d
    return w


@njit(nogil=True, cache=True)
def _factor(T, var, A):
    """A_jT and P_j = TᵀA_jT + σ²I = L D Lᵀ (L unit lower triangular, no square roots):
    AT (k, k, J), L (k, k, J; below the diagonal only), D and 1/D (k, J)."""
    J, k = A.shape[0], A.shape[1]
    AT = np.zeros((k, k, J))
    for a in range(k):
        for b in range(k):
            for m in range(b, k):
                t = T[m, b]
                for j in range(J):
                    AT[a, b, j] += A[j, a, m] * t
    L = np.zeros((k, k, J))
    D, Dinv = np.empty((k, J)), np.empty((k, J))
    for a in range(k):  # row by row
        for b in range(a + 1):
            s = np.full(J, var) if a == b else np.zeros(J)
            for m in range(a, k):
                t = T[m, a]
                for j in range(J):
                    s[j] += t * AT[m, b, j]
            for m in range(b):
                for j in range(J):
                    s[j] -= L[a, m, j] * L[b, m, j] * D[m, j]
            if a == b:
                D[a] = s
                for j in range(J):
                    Dinv[a, j] = 1.0 / s[j]
            else:
                for j in range(J):
                    L[a, b, j] = s[j] * Dinv[b, j]
    return AT, L, D, Dinv


@njit(nogil=True, cache=True)
def _log_det(D):
    """Σ log D, the determinants multiplied up and their logarithm taken only when the product
    nears the range of a double (a logarithm per level would cost more than the rest)."""
    logdet, det = 0.0, 1.0
    for a in range(D.shape[0]):
        for j in range(D.shape[1]):
            det *= D[a, j]
            if det > 1e150 or det < 1e-150:
                logdet += np.log(det)
                det = 1.0
    return logdet + np.log(det)


@njit(nogil=True, cache=True)
def _solve(T, w, L, Dinv):
    """Σ xᵀD⁻¹x (= Σ c_jᵀP_j⁻¹c_j) for x = L⁻¹Tᵀw, u = L⁻ᵀD⁻¹x (= P_j⁻¹c_j), Σ uᵀu, v = Tu."""
    k, J = w.shape
    x = np.zeros((k, J))
    quad = 0.0
    for a in range(k):
        for m in range(a, k):
            t = T[m, a]
            for j in range(J):
                x[a, j] += t * w[m, j]
        for m in range(a):
            for j in range(J):
                x[a, j] -= L[a, m, j] * x[m, j]
        for j in range(J):
            quad += x[a, j] * x[a, j] * Dinv[a, j]
    u = np.empty((k, J))
    uu = 0.0
    for a in range(k - 1, -1, -1):
        for j in range(J):
            u[a, j] = x[a, j] * Dinv[a, j]
        for m in range(a + 1, k):
            for j in range(J):
                u[a, j] -= L[m, a, j] * u[m, j]
        for j in range(J):
            uu += u[a, j] * u[a, j]
    v = np.zeros((k, J))
    for a in range(k):
        for m in range(a + 1):
            t = T[a, m]
            for j in range(J):
                v[a, j] += t * u[m, j]
    return quad, u, uu, v


@njit(nogil=True, cache=True)
def _outer_sums(A, ZtX, w, u, v):
    """Σ_j (w_j − A_jv_j) u_jᵀ (k, k) and Σ_j (Z_jᵀX_j)ᵀv_j (p,)."""
    k, J = w.shape
    p = ZtX.shape[2]
    outer, ZtXv = np.zeros((k, k)), np.zeros(p)
    r = np.empty(J)
    for a in range(k):
        r[:] = w[a]
        for m in range(k):
            for j in range(J):
                r[j] -= A[j, a, m] * v[m, j]
        for b in range(k):
            s = 0.0
            for j in range(J):
                s += r[j] * u[b, j]
            outer[a, b] = s
        for m in range(p):
            s = 0.0
            for j in range(J):
                s += ZtX[a, j, m] * v[a, j]
            ZtXv[m] += s
    return outer, ZtXv


@njit(nogil=True, cache=True)
def _inverse_sums(AT, L, Dinv):
    """Σ_j tr P_j⁻¹ and Σ_j A_jT P_j⁻¹ (k, k), with P_j⁻¹ = L⁻ᵀD⁻¹L⁻¹ entry by entry."""
    k, J = Dinv.shape
    Linv = np.zeros((k, k, J))  # below the diagonal (its diagonal is 1)
    for a in range(k):
        for b in range(a):
            for j in range(J):
                Linv[a, b, j] = -L[a, b, j]
            for m in range(b + 1, a):
                for j in range(J):
                    Linv[a, b, j] -= L[a, m, j] * Linv[m, b, j]
    trace = 0.0
    sandwich = np.zeros((k, k))
    Pinv = np.empty(J)
    for a in range(k):
        for b in range(k):
            low, high = min(a, b), max(a, b)
            for j in range(J):
                Pinv[j] = Dinv[high, j] * (Linv[high, low, j] if high > low else 1.0)
            for m in range(high + 1, k):
                for j in range(J):
                    Pinv[j] += Linv[m, a, j] * Dinv[m, j] * Linv[m, b, j]
            if a == b:
                trace += Pinv.sum()
            for r in range(k):
                s = 0.0
                for j in range(J):
                    s += AT[r, a, j] * Pinv[j]
                sandwich[r, b] += s
    return trace, sandwich


class GroupedLogp(LogpWithGradient):
    """(log p(y | β, T, σ²), its gradient in δ, σ² and T) for the grouped layout.

    Inputs: δ = β − β̂ (p,), σ² (), T (k, k), then the statistics of `DATA`.
    """

    def __init__(self, version: str = VERSION):
        super().__init__(version)

    def evaluate(self, delta, var, T, n, q, ete, *arrays):
        return value_and_gradient(delta, float(var), T, float(n), float(q), float(ete), *arrays)


def _register_numba():
    from pytensor.link.numba.dispatch.basic import (
        numba_njit,
        register_funcify_default_op_cache_key,
    )

    @register_funcify_default_op_cache_key(GroupedLogp)
    def numba_grouped_logp(op, node=None, **kwargs):
        @numba_njit
        def grouped_logp(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, A):
            value, g_delta, g_var, gT = value_and_gradient(
                delta, var.item(), T, n.item(), q.item(), ete.item(), Xte, XtX, Zte, ZtX, A)
            return np.asarray(value), g_delta, np.asarray(g_var), gT

        return grouped_logp


_register_numba()


def grouped_loglik(s: dict, delta, T, var):
    """log p(y | β, T, σ) as a PyTensor scalar: `s` the shared statistics (`DATA`), T (k, k)."""
    return GroupedLogp()(delta, var, T, *(s[name] for name in DATA))[0]
