"""Analytic gradient of the Laplace deviance for one grouping factor and a canonical link.

f(θ, β) = D(η̂) + ‖û‖² + Σ_l log|M_l|, D = −2 log p(y | η), η̂ = Xβ + ZΛû, M_l = I + TᵀA_lT with
A_l = Σ_{i∈l} w_i z_i z_iᵀ (T the group's K×K template, w the working weights at η̂). With
r = ∂D/∂η (= −2(y − μ)), w' = dw/dη and, per level, C_l = T M_l⁻¹ Tᵀ:

- D + ‖u‖² is stationary in u at û, so its derivative is the explicit one (envelope theorem):
  Xᵀr for β, Σ_l s_l[a]·û_l[b] for T_ab, s_l = Σ_{i∈l} r_i z_i.
- log|M_l| depends on θ explicitly (2·[A_l T M_l⁻¹]_ab for T_ab) and on η̂ through w:
  ∂/∂η_i = w'_i h_i =: a_i with h_i = z_iᵀ C_l z_i; η̂ moves with β and θ directly and through
  û, whose derivatives follow from the mode's condition Tᵀs_l/2 + u_l = 0 (its Jacobian in u is
  M_l for a canonical link, where Fisher scoring is Newton's method):
      dû_l/dβ = −M_l⁻¹TᵀB_l,  B_l = Σ_{i∈l} w_i z_i x_iᵀ,
      dû_l/dT_ab = −M_l⁻¹(e_b s_l[a]/2 + TᵀA_l e_a û_l[b]).
  With t_l = Σ_{i∈l} a_i z_i and v_l = M_l⁻¹Tᵀt_l this gives Xᵀa − Σ_l B_lᵀT v_l for β and
  Σ_l (t_l[a] − (A_lTv_l)[a])·û_l[b] − s_l[a]·v_l[b]/2 for T_ab.

All per-level algebra is batched over the levels (stacked K×K arrays). Several grouping factors
of scalar blocks go to laplace_grad_crossed (the same algebra on the sparse M); non-canonical
links and other designs use finite differences (laplace.fd_gradient) instead.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve

from .blockdiag import theta_gradient
from .laplace_grad_crossed import crossed_gradients
from .layout import level_blocks
from .pirls import PirlsState


def laplace_gradient(dev, state: PirlsState) -> np.ndarray:
    """∂f/∂(θ, β) at `state` (the PIRLS solution at fixed β)."""
    if dev.crossed_rows is not None:
        return np.concatenate(crossed_gradients(dev, state, profiled=False))
    return np.concatenate(_gradients(dev, state)[:2])


def profiled_gradient(dev, state: PirlsState) -> np.ndarray:
    """d/dθ of stage 1's f(θ, β̃(θ)), β̃ the joint mode of (β, u) (lme4's nAGQ = 0 deviance).

    df/dθ + df/dβ·dβ̃/dθ. The joint mode solves F = (XᵀDr/2, Tᵀs_l/2 + u_l) = 0 with Jacobian
    [[XᵀWX, BᵀT], [TᵀB, M]] (B_l = Σ w z xᵀ per level, stacked), so by its Schur complement
    RX·RXᵀ = XᵀWX − Σ BᵀT M⁻¹TᵀB:  dβ̃/dT_ab = −(RX RXᵀ)⁻¹ (∂F_β/∂T_ab − Σ_l B_lᵀTM_l⁻¹ ∂F_u/∂T_ab),
    ∂F_β/∂T_ab = Σ_l B_l[a]·u_l[b] and ∂F_u/∂T_ab = e_b s_l[a]/2 + TᵀA_l e_a u_l[b]."""
    if dev.crossed_rows is not None:
        return crossed_gradients(dev, state, profiled=True)[0]
    grad_theta, grad_beta, parts = _gradients(dev, state)
    T, Minv, A, u, s, B = parts
    P = np.swapaxes(B, 1, 2) @ T @ Minv  # (L, p, K): B_lᵀ T M_l⁻¹
    PTA = P @ T.T @ A  # (L, p, K)
    dF = (np.einsum("lap,lb->abp", B, u) - 0.5 * np.einsum("lpb,la->abp", P, s)
          - np.einsum("lpa,lb->abp", PTA, u))
    RX = state.RX
    K, p = T.shape[0], B.shape[2]
    dbeta = -cho_solve((RX, True), dF.reshape(K * K, p).T, check_finite=False)  # (p, K·K)
    total = grad_beta @ dbeta
    group = dev.pirls.base.groups[0]
    return grad_theta + theta_gradient(dev.thetas, group, total.reshape(K, K))


def _gradients(dev, state: PirlsState):
    group = dev.pirls.base.groups[0]  # unweighted Z and level index
    factor = state.factor
    L, K = group.n_levels, group.K
    T = factor.T
    Minv = np.swapaxes(factor.Linv, 1, 2) @ factor.Linv  # (L, K, K)
    A = factor_A(state)  # (L, K, K) Σ w z zᵀ
    u = state.u.reshape(L, K)
    r, _, wprime = dev.family.score_terms(state.eta)
    C = T @ Minv @ T.T
    Z, index = group.Z, group.index
    h = np.einsum("nk,nkj,nj->n", Z, C[index], Z) if K > 1 else Z[:, 0] ** 2 * C[index, 0, 0]
    a = wprime * h
    s = _level_sums(index, Z, r, L)
    t = _level_sums(index, Z, a, L)
    v = (Minv @ (t @ T)[..., None])[..., 0]  # M_l⁻¹Tᵀt_l
    B = state.layout.ZtX.reshape(L, K, -1)  # Σ w z xᵀ (the layout is weighted by √w)
    grad_beta = dev.design.X.T @ (r + a) - np.einsum("lkp,lk->p", B, v @ T.T)
    ATv = (A @ T @ v[..., None])[..., 0]
    grad_T = (s.T @ u + 2.0 * (A @ T @ Minv).sum(0) + (t - ATv).T @ u - 0.5 * s.T @ v)
    grad_theta = theta_gradient(dev.thetas, group, grad_T)
    return grad_theta, grad_beta, (T, Minv, A, u, s, B)


def factor_A(state: PirlsState) -> np.ndarray:
    """The per-level Σ w z zᵀ of the weighted layout (what the block backend factored)."""
    return level_blocks(state.layout.groups[0])


def _level_sums(index: np.ndarray, Z: np.ndarray, values: np.ndarray, L: int) -> np.ndarray:
    """(L, K): Σ_{i∈l} values_i z_i."""
    return np.column_stack([np.bincount(index, weights=Z[:, k] * values, minlength=L)
                            for k in range(Z.shape[1])])
