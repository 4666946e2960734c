"""Analytic gradient of the profiled criterion for the Schur backend, when every block is 1×1.

Same formula as the block-diagonal backend (see blockdiag.py): for θ_j, the relative SD of group g,

    ∂/∂θ_j = 2 Σ_{i ∈ g} [ W_ii − (Zᵀe)_i u_i / σ² − [REML] H_iᵀ (XᵀV⁻¹X)⁻¹ G_i ],

W = M⁻¹ΛᵀA (A = ZᵀZ, Λ diagonal here). Only the diagonal of W is needed, and only its sum over
each group. With M⁻¹ written in Schur form (X22 = S⁻¹, X12 = −M11⁻¹M12S⁻¹,
X11 = M11⁻¹ + M11⁻¹M12S⁻¹M21M11⁻¹) every term of that diagonal is a sum over pairs (i, j) of
non-zeros in one row l of A12 of A12_li·A12_lj·λ_i·λ_j·S⁻¹_ij, i.e. over the Gram's pair list,
plus the dense part diag(S⁻¹Λ2A22). As λ_i depends only on the group of column i, one pass over
the pairs bins S⁻¹_ij·A12_li·A12_lj by (row l, group of i, group of j, off-diagonal)
(`binned_sums`), and every group total follows from those bins. So one S⁻¹ (LAPACK potri), one
gather and one bincount give all of it: no selected-inversion machinery is needed.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from .pls import PLSState, sigma2, spherical_modes


def schur_gradient(backend, state: PLSState, method: str) -> np.ndarray:
    f = state.factor
    layout, q1 = backend.layout, backend.q1
    lam1 = f.Ts[0][0, 0]
    lam_g = np.array([T[0, 0] for T in f.Ts[1:]])  # λ of each remaining group
    lam2 = backend.rest_lambda(f.Ts[1:])
    a11 = backend.A11[:, 0, 0]
    m11 = lam1 * lam1 * a11 + 1.0
    Sinv = f.Sinv_lower  # lower triangle of S⁻¹
    R1, R2 = binned_sums(backend, Sinv)
    P = np.einsum("lgh,g,h->l", R1 + R2, lam_g, lam_g)  # a_lᵀS⁻¹a_l, a_l row l of A12Λ2
    w = lam1 * lam1 / m11
    first = float(((1 / m11 + w / m11 * P) * lam1 * a11 - lam1 / m11 * P).sum())
    Rw1, Rw2 = w @ R1.reshape(w.size, -1), w @ R2.reshape(w.size, -1)
    G2 = lam_g.size
    pair_part = (Rw1.reshape(G2, G2) @ lam_g + Rw2.reshape(G2, G2).T @ lam_g)
    rest = _group_totals(backend, _diag_Sinv_lam_A22(Sinv, lam2, backend)) - pair_part
    W_totals = np.concatenate([[first], rest])
    u = spherical_modes(state)
    lam = np.concatenate([np.full(q1, lam1), lam2])
    Zte = layout.Zty - layout.ZtX @ state.beta - backend.A_times(lam * u)
    per_column = -Zte * u / sigma2(state, layout.n, layout.p, method)
    if method == "REML":
        H = f.backward(f.RZX)  # M⁻¹ΛᵀZᵀX
        G = layout.ZtX - backend.A_times(lam[:, None] * H)
        Cinv = np.linalg.inv(state.RX @ state.RX.T)
        per_column -= np.einsum("ip,pq,iq->i", H, Cinv, G)
    totals = W_totals + np.concatenate([[per_column[:q1].sum()],
                                        _group_totals(backend, per_column[q1:])])
    return 2.0 * _by_theta(backend, totals)


def binned_sums(backend, Sinv_lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L1, G2, G2) sums over the pairs of each row l of A12_li·A12_lj·S⁻¹_ij by the groups of
    i and j: R1 over all pairs, R2 over the off-diagonal ones (which stand for both orders)."""
    pairs, L1 = backend.gram.pairs, backend.first.n_levels
    G2 = len(backend.rest)
    bins = pairs.bins(backend.rest_group_of_column, G2)
    base = pairs.prod * Sinv_lower.ravel()[pairs.target]
    R = np.bincount(bins, weights=base, minlength=L1 * G2 * G2 * 2).reshape(L1, G2, G2, 2)
    return R[..., 0] + R[..., 1], R[..., 1]


def scalar_first_inverse_diagonal(backend_or_factor, Sinv_lower, lam1, lam_g, inv_m11):
    """diag of M⁻¹'s first block: 1/m_l + (λ1/m_l)² a_lᵀS⁻¹a_l."""
    R1, R2 = binned_sums(backend_or_factor, Sinv_lower)
    P = np.einsum("lgh,g,h->l", R1 + R2, lam_g, lam_g)
    return inv_m11 + (lam1 * inv_m11) ** 2 * P


def lower_inverse(LS: np.ndarray) -> np.ndarray:
    """The lower triangle of S⁻¹ from S's lower Cholesky factor (upper triangle zero)."""
    inv, info = lapack.dpotri(LS, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dpotri failed ({info}).")
    return inv


def _diag_Sinv_lam_A22(Sinv_lower: np.ndarray, lam2: np.ndarray, backend) -> np.ndarray:
    """diag(S⁻¹ Λ2 A22) from the lower triangle of S⁻¹ (A22 is often diagonal: one factor)."""
    if backend.A22_diag is not None:
        return np.diag(Sinv_lower) * lam2 * backend.A22_diag
    A = backend.A22_sparse.tocoo()  # Σ_i S⁻¹_ki λ_i A22_ik over A22's non-zeros (k, i)
    k, i = A.row, A.col
    Sinv_ki = Sinv_lower[np.maximum(k, i), np.minimum(k, i)]
    return np.bincount(k, weights=Sinv_ki * lam2[i] * A.data, minlength=lam2.size)


def _group_totals(backend, per_rest_column: np.ndarray) -> np.ndarray:
    return np.bincount(backend.rest_group_of_column, weights=per_rest_column,
                       minlength=len(backend.rest))


def _by_theta(backend, totals: np.ndarray) -> np.ndarray:
    """θ_j is the (only) entry of block j's 1×1 template, one block per group."""
    out = np.zeros(backend.thetas.n_theta)
    for group, total in zip(backend.layout.groups, totals, strict=True):
        (b,) = group.blocks
        out[int(np.flatnonzero(backend.thetas.block_of == b)[0])] = total
    return out
