"""The average-information (AI) matrix of the profiled criterion: a cheap Hessian for Newton steps.

For −2 log L with V = σ²V0(θ), P the REML (or ML) projection and V̇_a = ∂V/∂a, the observed
Hessian is −tr(PV̇_aPV̇_b) + 2yᵀPV̇_aPV̇_bPy (plus terms in ∂²V, dropped) and its expectation
tr(PV̇_aPV̇_b); their average yᵀPV̇_aPV̇_bPy (Gilmour, Thompson & Cullis 1995, ASReml's "AI")
needs no trace, only solves. In (log σ², θ), with e = P0y (P0 = σ²P, the conditional residual),
D_j = ∂V0/∂θ_j = Z(∂ΛΛᵀ/∂θ_j)Zᵀ and d_j = (∂ΛΛᵀ/∂θ_j)Zᵀe:

    AI_σσ = yᵀP0y/σ² = r²/σ²,   AI_σj = eᵀD_je/σ² = (Zᵀe)ᵀd_j/σ²,
    AI_jk = eᵀD_jP0D_ke/σ² = d_jᵀ(ZᵀP0Z)d_k/σ²,

and ZᵀP0Z = A − AΛM⁻¹ΛᵀA − G C⁻¹Gᵀ (A = ZᵀZ, G = ZᵀV0⁻¹X = ZᵀX − AΛM⁻¹ΛᵀZᵀX,
C = XᵀV0⁻¹X = RX·RXᵀ), all in the random-effect space (m solves with M's factor).
With σ profiled out the criterion's Hessian in θ is the Schur complement over log σ²:
AI_θθ − AI_θσAI_σθ/AI_σσ; with a known σ it is AI_θθ. ML uses the same P (its quadratic form at
β̂ is yᵀPy too); the result only steers Newton steps, whose line search keeps them honest.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve

from .layout import group_template
from .pls import PLSState, sigma2, spherical_modes


def ai_hessian(dev, state: PLSState) -> np.ndarray:
    """The AI approximation of the Hessian of `dev`'s profiled criterion in θ at `state`."""
    layout, backend, thetas = dev.layout, dev.backend, dev.thetas
    templates = thetas.templates(state.theta)
    Ts = [group_template(g, templates) for g in layout.groups]
    u = spherical_modes(state)
    Zte = layout.Zty - layout.ZtX @ state.beta - backend.A_times(_lam(layout, Ts, u))
    D = np.column_stack([_d_lambda(layout, thetas, templates, j, Zte)
                         for j in range(thetas.n_theta)])  # (q, m)
    AD = backend.A_times(D)
    LtAD = _lam_t(layout, Ts, AD)
    core = D.T @ AD - LtAD.T @ state.factor.solve(LtAD)
    if layout.p:
        H = state.factor.backward(state.factor.RZX)  # M⁻¹ΛᵀZᵀX
        G = layout.ZtX - backend.A_times(_lam(layout, Ts, H))
        GtD = G.T @ D
        core -= GtD.T @ cho_solve((state.RX, True), GtD, check_finite=False)
    s2 = sigma2(state, layout.n, layout.p, dev.method)
    ai = core / s2
    if state.sigma2_fixed is None:
        cross = (Zte @ D) / s2
        ai -= np.outer(cross, cross) / (state.r2 / s2)
    return 0.5 * (ai + ai.T)


def _lam(layout, Ts, v: np.ndarray) -> np.ndarray:
    """Λv (each level's K values times its group's template) for a vector or a matrix v."""
    parts = []
    for group, T in zip(layout.groups, Ts, strict=True):
        block = v[group.offset:group.offset + group.q].reshape(group.n_levels, group.K, -1)
        parts.append(np.einsum("ab,lb...->la...", T, block).reshape(group.q, -1))
    return np.concatenate(parts).reshape(v.shape)


def _lam_t(layout, Ts, v: np.ndarray) -> np.ndarray:
    """Λᵀv."""
    return _lam(layout, [T.T for T in Ts], v)


def _d_lambda(layout, thetas, templates, j: int, v: np.ndarray) -> np.ndarray:
    """(∂ΛΛᵀ/∂θ_j) v: per level of θ_j's group, (E Tᵀ + T Eᵀ) v_l with E = ∂T/∂θ_j."""
    b = thetas.block_of[j]
    out = np.zeros_like(v)
    group, where = layout.block_columns(b)
    k = templates[b].shape[0]
    E = np.zeros((k, k))
    E[thetas.rows[j], thetas.cols[j]] = 1.0
    dTT = E @ templates[b].T + templates[b] @ E.T
    sl = slice(group.offset, group.offset + group.q)
    block = v[sl].reshape(group.n_levels, group.K)
    piece = np.zeros_like(block)
    piece[:, where] = block[:, where] @ dTT.T
    out[sl] = piece.ravel()
    return out
