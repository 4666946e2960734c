"""Analytic gradient of the Laplace deviance for several grouping factors of scalar blocks
(crossed or nested random intercepts, e.g. grouseticks' BROOD, INDEX, LOCATION) and a canonical
link. laplace_grad.py covers one grouping factor; this is the same algebra for a sparse M.

Every column c of Z belongs to one group g(c) with relative SD λ_c = θ_g(c), and each row i has
one non-zero per group, z_ig, in column c_g(i). With W the working weights at η̂, A = ZᵀWZ,
M = ΛAΛ + I, r = ∂D/∂η = −2(y − μ), w' = dw/dη, s = Zᵀr and û the mode:

- explicit in η at fixed u (û is stationary): Xᵀr for β, Σ_{c∈j} s_c û_c for θ_j;
- log|M| explicit in θ: 2 tr(M⁻¹E_jAΛ) = 2 Σ_i w_i z_ij (C_i ζ_i)_j, where C_i is the G×G
  block of M⁻¹ on row i's columns (C_i[g, g'] = M⁻¹[c_g(i), c_g'(i)]) and ζ_i = (λ_g z_ig)_g;
- log|M| through the weights: a_i = w'_i h_i with h_i = ζ_iᵀC_iζ_i, carried through
  η̂ = Xβ + ZΛû and dû = −M⁻¹dF (F = ΛZᵀr/2 + u, Jacobian M for a canonical link). With
  t = Zᵀa and v = M⁻¹Λt this adds Xᵀ(a − w∘ZΛv) for β and
  Σ_{c∈j} t_c û_c − v_c s_c/2 − (AΛv)_c û_c for θ_j.

Only the entries of M⁻¹ on the rows' column pairs are needed. With the largest group eliminated
first (schur.py: M11 = diag(m), Schur complement S of the rest) they are
M⁻¹₂₂ = S⁻¹, M⁻¹₁₂ = −M11⁻¹M12S⁻¹ and diag(M⁻¹₁₁) = 1/m + diag(M11⁻¹M12S⁻¹M21M11⁻¹), all from
Y = A12Λ2S⁻¹ (sparse times dense, q1 × q2).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve


def applies(layout) -> bool:
    """Several grouping factors, each one scalar block."""
    return len(layout.groups) > 1 and all(g.K == 1 and len(g.blocks) == 1
                                          for g in layout.groups)


class RowPattern:
    """Per row, the internal column of each group (G columns) and its Z value (unweighted)."""

    def __init__(self, base):
        self.groups = base.groups
        self.columns = np.column_stack([g.offset + g.index for g in base.groups])  # (n, G)
        self.z = np.column_stack([g.Z[:, 0] for g in base.groups])  # (n, G)
        self.Zt = base.Zt  # (q, n), unweighted
        self.Z = base.Zt.T.tocsr()
        self.q1 = base.groups[0].q

    def lam(self, theta_by_group: np.ndarray) -> np.ndarray:
        """λ per column."""
        return np.concatenate([np.full(g.q, t) for g, t in zip(self.groups, theta_by_group,
                                                                strict=True)])

    def group_sums(self, per_column: np.ndarray) -> np.ndarray:
        return np.array([per_column[g.offset:g.offset + g.q].sum() for g in self.groups])


def group_thetas(dev) -> np.ndarray:
    """For each internal group, the index of its θ (one scalar block each)."""
    out = []
    for group in dev.pirls.base.groups:
        (b,) = group.blocks
        out.append(int(np.flatnonzero(dev.thetas.block_of == b)[0]))
    return np.array(out)


def row_inverse(factor, rows: RowPattern) -> np.ndarray:
    """(n, G, G): the entries of M⁻¹ on each row's columns (see the module docstring)."""
    q1 = rows.q1
    lam1 = factor.Ts[0][0, 0]
    m = 1.0 / factor.Linv11[:, 0, 0] ** 2
    Sinv = factor.Sinv_lower
    Sinv = Sinv + np.tril(Sinv, -1).T
    A12L = factor.A12 @ factor.Lam2  # (q1, q2) sparse
    Y = np.asarray(A12L @ Sinv)  # (q1, q2)
    x11 = 1.0 / m + (lam1 / m) ** 2 * np.asarray(A12L.multiply(Y).sum(axis=1)).ravel()
    cols = rows.columns
    first, rest = cols[:, 0], cols[:, 1:] - q1
    n, G = cols.shape
    C = np.empty((n, G, G))
    C[:, 0, 0] = x11[first]
    x12 = -(lam1 / m[first])[:, None] * Y[first[:, None], rest]
    C[:, 0, 1:] = x12
    C[:, 1:, 0] = x12
    C[:, 1:, 1:] = Sinv[rest[:, :, None], rest[:, None, :]]
    return C


def crossed_gradients(dev, state, profiled: bool):
    """(∂f/∂θ, ∂f/∂β) at `state`, and with `profiled` d/dθ of stage 1's f(θ, β̃(θ))."""
    rows = dev.crossed_rows
    gidx = group_thetas(dev)
    theta_g = state.theta[gidx]
    lam = rows.lam(theta_g)
    u = state.u
    r, w, wprime = dev.family.score_terms(state.eta)
    C = row_inverse(state.factor, rows)
    zeta = rows.z * theta_g  # (n, G)
    Czeta = np.einsum("ngh,nh->ng", C, zeta)
    h = np.einsum("ng,ng->n", zeta, Czeta)
    a = wprime * h
    s, t = rows.Zt @ r, rows.Zt @ a
    v = state.factor.solve(lam * t)
    Zlv = rows.Z @ (lam * v)
    ALv = rows.Zt @ (w * Zlv)
    X = dev.design.X
    grad_beta = X.T @ (r + a - w * Zlv)
    per_column = s * u + t * u - 0.5 * v * s - ALv * u
    explicit = 2.0 * ((w[:, None] * rows.z) * Czeta).sum(axis=0)  # per group
    grad_theta = np.zeros(dev.n_theta)
    grad_theta[gidx] = rows.group_sums(per_column) + explicit
    if profiled:
        grad_theta += _through_beta(dev, state, rows, gidx, lam, s, w, grad_beta)
    return grad_theta, grad_beta


def _through_beta(dev, state, rows, gidx, lam, s, w, grad_beta) -> np.ndarray:
    """∂f/∂β · dβ̃/dθ_j, β̃ the joint mode: dβ̃/dθ_j = −(RX RXᵀ)⁻¹(XᵀWZE_jû − XᵀWZΛM⁻¹d_j),
    d_j = E_js/2 + ΛAE_jû (laplace_grad.profiled_gradient, per column instead of per level)."""
    X, u = dev.design.X, state.u
    out = np.zeros(dev.n_theta)
    RX = state.RX
    for k, group in enumerate(rows.groups):
        Eu = np.zeros_like(u)
        sl = slice(group.offset, group.offset + group.q)
        Eu[sl] = u[sl]
        ZEu = rows.Z @ Eu
        d = lam * (rows.Zt @ (w * ZEu))
        d[sl] += 0.5 * s[sl]
        y = state.factor.solve(d)
        dF = X.T @ (w * (ZEu - rows.Z @ (lam * y)))
        dbeta = -cho_solve((RX, True), dF, check_finite=False)
        out[gidx[k]] = grad_beta @ dbeta
    return out
