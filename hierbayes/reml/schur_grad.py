"""Analytic gradient of the profiled criterion for the Schur backend, when every block is 1×1.

Same formula as the block-diagonal backend (see blockdiag.py): for θ_j, the relative SD of group g,

    ∂/∂θ_j = 2 Σ_{i ∈ g} [ W_ii − (Zᵀe)_i u_i / σ² − [REML] H_iᵀ (XᵀV⁻¹X)⁻¹ G_i ],

W = M⁻¹ΛᵀA (A = ZᵀZ, Λ diagonal here). Only the diagonal of W is needed. With M⁻¹ written in
Schur form (X22 = S⁻¹, X12 = −M11⁻¹M12S⁻¹, X11 = M11⁻¹ + M11⁻¹M12S⁻¹M21M11⁻¹) every term of
that diagonal is a sum over pairs (i, j) of non-zeros in one row l of A12 of A12_li·A12_lj·λ_i·λ_j
·S⁻¹_ij, i.e. over the Gram's pair list, plus the dense part diag(S⁻¹Λ2A22). So one S⁻¹ (LAPACK
potri) and two bincounts give all of it: no selected-inversion machinery is needed.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from .pls import PLSState, sigma2, spherical_modes


def schur_gradient(backend, state: PLSState, method: str) -> np.ndarray:
    f = state.factor
    layout, q1 = backend.layout, backend.q1
    lam1 = f.Ts[0][0, 0]
    lam2 = backend.rest_lambda(f.Ts[1:])
    m11 = lam1 * lam1 * backend.A11[:, 0, 0] + 1.0
    Sinv = lower_inverse(f.LS)  # lower triangle of S⁻¹
    pr = backend.gram.pairs
    i, j, off = pr.i, pr.j, pr.off
    # Over unordered pairs: S⁻¹_ij A12_li A12_lj, then weighted by λ's for each use.
    base = pr.prod * Sinv.ravel()[pr.target]
    P = row_pair_sums(pr, base, lam2, m11.size)
    w = lam1 * lam1 / m11
    diag1 = (1 / m11 + w / m11 * P) * lam1 * backend.A11[:, 0, 0] - lam1 / m11 * P
    wb = w[pr.row] * base
    pair_part = (np.bincount(i, weights=wb * lam2[j], minlength=lam2.size)
                 + np.bincount(j, weights=np.where(off, wb * lam2[i], 0.0), minlength=lam2.size))
    diag2 = _diag_Sinv_lam_A22(Sinv, lam2, backend) - pair_part
    W_diag = np.concatenate([diag1, diag2])
    u = spherical_modes(state)
    lam = np.concatenate([np.full(q1, lam1), lam2])
    Zte = layout.Zty - layout.ZtX @ state.beta - backend.A_times(lam * u)
    per_column = W_diag - Zte * u / sigma2(state, layout.n, layout.p, method)
    if method == "REML":
        H = f.backward(f.RZX)  # M⁻¹ΛᵀZᵀX
        G = layout.ZtX - backend.A_times(lam[:, None] * H)
        Cinv = np.linalg.inv(state.RX @ state.RX.T)
        per_column -= np.einsum("ip,pq,iq->i", H, Cinv, G)
    return 2.0 * _sum_by_theta(backend, per_column)


def row_pair_sums(pairs, base: np.ndarray, lam2: np.ndarray, n_rows: int) -> np.ndarray:
    """P_l = Σ_{i,j} A12_li A12_lj λ_i λ_j S⁻¹_ij for every row l, from `base` = prod·S⁻¹_ij."""
    weights = base * lam2[pairs.i] * lam2[pairs.j] * np.where(pairs.off, 2.0, 1.0)
    return np.bincount(pairs.row, weights=weights, minlength=n_rows)


def lower_inverse(LS: np.ndarray) -> np.ndarray:
    """The lower triangle of S⁻¹ from S's lower Cholesky factor (upper triangle zero)."""
    inv, info = lapack.dpotri(LS, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dpotri failed ({info}).")
    return inv


def _diag_Sinv_lam_A22(Sinv_lower: np.ndarray, lam2: np.ndarray, backend) -> np.ndarray:
    """diag(S⁻¹ Λ2 A22) from the lower triangle of S⁻¹ (A22 is often diagonal: one factor)."""
    d = np.diag(Sinv_lower)
    if backend.A22_diag is not None:
        return d * lam2 * backend.A22_diag
    B = backend.A22 * lam2[:, None]  # B_ki = λ_k A22_ki
    full = (Sinv_lower * B.T).sum(1) + (Sinv_lower * B).sum(0)
    return full - d * np.diag(B)


def _sum_by_theta(backend, per_column: np.ndarray) -> np.ndarray:
    """Add the columns of each group; θ_j is the (only) entry of block j's 1×1 template."""
    out = np.zeros(backend.thetas.n_theta)
    for group in backend.layout.groups:
        (b,) = group.blocks  # 1×1 templates: one block per group
        j = int(np.flatnonzero(backend.thetas.block_of == b)[0])
        out[j] = per_column[group.offset:group.offset + group.q].sum()
    return out
