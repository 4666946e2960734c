"""Backend for one grouping factor: M is block diagonal, one K×K block per level.

All levels are handled at once as a stack of small matrices (no Python loop over levels), and the
gradient of the profiled criterion is analytic. With V = I + ZΛΛᵀZᵀ, P = V⁻¹ − V⁻¹X(XᵀV⁻¹X)⁻¹XᵀV⁻¹
and e = Py (the conditional residual), for θ_j at template position (a, b):

    ∂/∂θ_j  = 2 tr(E_j M⁻¹ΛᵀZᵀZ) − 2 (Zᵀe)ᵀE_j u / σ² − [REML] 2 Σ H_bᵀ (XᵀV⁻¹X)⁻¹ G_a

with σ² = r²/c, c = n−p (REML) or n (ML), when σ is profiled, or σ0² when it is known,
u = ΛᵀZᵀe, H = M⁻¹ΛᵀZᵀX = ΛᵀZᵀV⁻¹X and G = ZᵀV⁻¹X = ZᵀX − ZᵀZΛH.
These follow from ∂log|V| = tr(V⁻¹V̇), ∂log|XᵀV⁻¹X| = −tr((XᵀV⁻¹X)⁻¹XᵀV⁻¹V̇V⁻¹X),
∂ c·log yᵀPy = −c·yᵀPV̇Py / yᵀPy (∂ yᵀPy/σ0² = −yᵀPV̇Py/σ0² with σ known),
V̇ = Z(E_jΛᵀ + ΛE_jᵀ)Zᵀ and Woodbury's ΛᵀZᵀV⁻¹ = M⁻¹ΛᵀZᵀ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import Layout, group_template, level_blocks
from .pls import PLSState, sigma2, spherical_modes
from .theta import ThetaLayout


@dataclass(frozen=True, eq=False)
class BlockFactor:
    logdet: float
    cu: np.ndarray  # (q,)
    RZX: np.ndarray  # (q, p)
    Linv: np.ndarray  # (L, K, K) inverse of each level's Cholesky factor
    T: np.ndarray  # (K, K) the group's template

    def forward(self, v: np.ndarray) -> np.ndarray:
        """L⁻¹ v for a vector or a matrix v."""
        L, K, _ = self.Linv.shape
        out = np.einsum("lab,lb...->la...", self.Linv, v.reshape(L, K, *v.shape[1:]))
        return out.reshape(v.shape)

    def solve(self, v: np.ndarray) -> np.ndarray:
        """M⁻¹ v."""
        return self.backward(self.forward(v))

    def backward(self, v: np.ndarray) -> np.ndarray:
        """L⁻ᵀ v for a vector or a matrix v."""
        L, K, _ = self.Linv.shape
        out = np.einsum("lba,lb...->la...", self.Linv, v.reshape(L, K, *v.shape[1:]))
        return out.reshape(v.shape)

    def inverse_blocks(self, groups) -> list[np.ndarray]:
        """Per group (here the one), the (L, K, K) diagonal blocks of M⁻¹."""
        return [np.einsum("lba,lbc->lac", self.Linv, self.Linv)]


class BlockDiagBackend:
    """M = blockdiag(TᵀA_l T + I) for the levels l of the single grouping factor."""

    def __init__(self, layout: Layout, thetas: ThetaLayout):
        (group,) = layout.groups
        self.layout, self.thetas, self.group = layout, thetas, group
        L, K, p = group.n_levels, group.K, layout.p
        self.A = level_blocks(group)  # (L, K, K)
        self.ZtX = layout.ZtX.reshape(L, K, p)
        self.Zty = layout.Zty.reshape(L, K)
        self.has_gradient = True

    def A_times(self, v: np.ndarray) -> np.ndarray:
        """ZᵀZ v (block diagonal: A_l per level) for a vector or a matrix v."""
        L, K = self.group.n_levels, self.group.K
        out = np.einsum("lab,lb...->la...", self.A, v.reshape(L, K, *v.shape[1:]))
        return out.reshape(v.shape)

    def template(self, theta: np.ndarray) -> np.ndarray:
        return group_template(self.group, self.thetas.templates(theta))

    def evaluate(self, theta: np.ndarray) -> BlockFactor:
        # Stacked matmuls (L, K, K): cheaper per call than einsum's path search for small K.
        T = self.template(theta)
        K = T.shape[0]
        M = T.T @ self.A @ T + np.eye(K)
        chol = np.linalg.cholesky(M)
        Linv = np.linalg.inv(chol)
        LT = Linv @ T.T
        RZX = LT @ self.ZtX
        cu = (LT @ self.Zty[..., None])[..., 0]
        logdet = 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
        return BlockFactor(logdet, cu.ravel(), RZX.reshape(cu.size, self.layout.p), Linv, T)

    def gradient(self, state: PLSState, method: str) -> np.ndarray:
        """Analytic gradient of the profiled criterion at `state` (see the module docstring)."""
        f: BlockFactor = state.factor
        L, K, _ = f.Linv.shape
        T, n, p = f.T, self.layout.n, self.layout.p
        MinvTt = np.swapaxes(f.Linv, 1, 2) @ (f.Linv @ T.T)  # M⁻¹Tᵀ per level
        W = MinvTt @ self.A
        u = spherical_modes(state).reshape(L, K)
        AT = self.A @ T
        Zte = self.Zty - self.ZtX @ state.beta - (AT @ u[..., None])[..., 0]
        grad_mat = 2.0 * W.sum(0).T - 2.0 * (Zte.T @ u) / sigma2(state, n, p, method)
        if method == "REML":
            H = MinvTt @ self.ZtX
            G = self.ZtX - AT @ H
            Cinv = np.linalg.inv(state.RX @ state.RX.T)
            grad_mat -= 2.0 * np.tensordot(G @ Cinv, H, axes=([0, 2], [0, 2]))
        return self._theta_gradient(grad_mat)

    def _theta_gradient(self, grad_mat: np.ndarray) -> np.ndarray:
        return theta_gradient(self.thetas, self.group, grad_mat)


def theta_gradient(thetas: ThetaLayout, group, grad_mat: np.ndarray) -> np.ndarray:
    """Pick ∂/∂T_ab out of the K×K matrix for every θ (group positions of each block)."""
    out = np.empty(thetas.n_theta)
    for j in range(thetas.n_theta):
        b = thetas.block_of[j]
        start = group.term_offsets[group.blocks.index(b)]
        out[j] = grad_mat[start + thetas.rows[j], start + thetas.cols[j]]
    return out
