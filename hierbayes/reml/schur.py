"""Backend for several grouping factors (crossed or nested): eliminate the largest, then dense.

Order the columns as [largest group | the rest]. The largest group's block M11 is block diagonal
(one K×K block per level: a row has one level of each factor), so its Cholesky factor is a batch of
small ones. What is left is the Schur complement S = M22 − BᵀB, B = L11⁻¹M12, of the remaining
q2 columns, factored densely with LAPACK. Then L = [[L11, 0], [Bᵀ, LS]] is a Cholesky factor of M.

This is exact for any design. Memory is nnz(ZᵀZ), the Gram's pair list (gram.py: the
elimination's own work, Σ_l (partners of level l)²/2) and q2² for S, where q2 counts the columns of
the smaller factors only (InstEval: 1,128 lecturers after eliminating 2,972 students). Nothing of
size q1² is formed. For q2 beyond MAX_DENSE_SCHUR a sparse Cholesky of S would be needed; that is
not implemented and such designs are refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cholesky, solve_triangular

from .gram import WeightedGram, symmetric
from .layout import Layout, group_template, level_blocks
from .scatter import Scatter
from .schur_grad import lower_inverse, scalar_first_inverse_diagonal, schur_gradient
from .theta import ThetaLayout

# Above this many columns in the smaller factors the dense pieces (A22, S, its factor and inverse,
# q2² · 8 bytes each: 0.5 GB at 8,000) would crowd a 24 GB machine; refuse rather than swap.
MAX_DENSE_SCHUR = 8_000


def dense_schur_fits(layout: Layout) -> bool:
    """Whether the columns outside the largest grouping factor are few enough for the dense
    Schur complement (else sparse.py's sparse Cholesky)."""
    return layout.q - layout.groups[0].q <= MAX_DENSE_SCHUR


@dataclass(frozen=True, eq=False)
class SchurFactor:
    logdet: float
    cu: np.ndarray  # (q,)
    RZX: np.ndarray  # (q, p)
    Linv11: np.ndarray  # (L1, K1, K1)
    BD: np.ndarray  # (L1, K1, K1) the blocks of L11⁻¹Λ1ᵀ
    A12: sp.csr_matrix  # (q1, q2)
    Lam2: sp.csr_matrix  # (q2, q2)
    LS: np.ndarray  # (q2, q2) lower Cholesky factor of the Schur complement
    Ts: list  # group templates, internal group order
    backend: object = None  # SchurBackend, when every block is 1×1 (fast M⁻¹ diagonal)

    @cached_property
    def Sinv_lower(self) -> np.ndarray:
        """The lower triangle of S⁻¹ (the gradient and the conditional variances share it)."""
        return lower_inverse(self.LS)

    @cached_property
    def B(self) -> sp.csr_matrix:
        """L11⁻¹M12 = L11⁻¹Λ1ᵀ A12 Λ2, formed only when a final quantity needs its rows."""
        return (_block_diag(self.BD) @ (self.A12 @ self.Lam2)).tocsr()

    def _B_times(self, w: np.ndarray) -> np.ndarray:
        L1, K1, _ = self.BD.shape
        v = (self.A12 @ (self.Lam2 @ w)).reshape(L1, K1, *w.shape[1:])
        return np.einsum("lab,lb...->la...", self.BD, v).reshape(L1 * K1, *w.shape[1:])

    def forward(self, v: np.ndarray) -> np.ndarray:
        """L⁻¹ v (L = [[L11, 0], [Bᵀ, LS]]): w1 = L11⁻¹v1, w2 = LS⁻¹(v2 − Bᵀw1)."""
        L1, K1, _ = self.Linv11.shape
        q1 = L1 * K1
        w1 = np.einsum("lab,lb...->la...", self.Linv11, v[:q1].reshape(L1, K1, *v.shape[1:]))
        Bt_w1 = self.Lam2.T @ (self.A12.T @ np.einsum("lka,lk...->la...", self.BD, w1)
                               .reshape(q1, *v.shape[1:]))
        w2 = solve_triangular(self.LS, v[q1:] - Bt_w1, lower=True, check_finite=False)
        return np.concatenate([w1.reshape(q1, *v.shape[1:]), w2])

    def solve(self, v: np.ndarray) -> np.ndarray:
        """M⁻¹ v."""
        return self.backward(self.forward(v))

    def backward(self, v: np.ndarray) -> np.ndarray:
        """L⁻ᵀ v."""
        L1, K1, _ = self.Linv11.shape
        q1 = L1 * K1
        w2 = solve_triangular(self.LS, v[q1:], lower=True, trans="T", check_finite=False)
        rest = (v[:q1] - self._B_times(w2)).reshape(L1, K1, *v.shape[1:])
        w1 = np.einsum("lba,lb...->la...", self.Linv11, rest).reshape(q1, *v.shape[1:])
        return np.concatenate([w1, w2])

    def inverse_blocks(self, groups) -> list[np.ndarray]:
        """Per group, the (L, K, K) diagonal blocks of M⁻¹ = L⁻ᵀL⁻¹."""
        if self.backend is not None:
            return self._scalar_inverse_diagonal(groups)
        return self._dense_inverse_blocks(groups)

    def _scalar_inverse_diagonal(self, groups) -> list[np.ndarray]:
        """All blocks 1×1: (M⁻¹)_ll = 1/m_l + (λ1/m_l)² P_l (X11 of the Schur form, see
        schur_grad.py) for the first group, and diag(S⁻¹) for the rest. O(pairs + q2³)."""
        Sinv = self.Sinv_lower
        lam_g = np.array([T[0, 0] for T in self.Ts[1:]])
        first = scalar_first_inverse_diagonal(self.backend, Sinv, self.Ts[0][0, 0], lam_g,
                                              self.Linv11[:, 0, 0] ** 2)
        out, offset, d = [first.reshape(-1, 1, 1)], 0, np.diag(Sinv)
        for group in groups[1:]:
            out.append(d[offset:offset + group.n_levels].reshape(-1, 1, 1).copy())
            offset += group.n_levels
        return out

    def _dense_inverse_blocks(self, groups) -> list[np.ndarray]:
        L1, K1, _ = self.Linv11.shape
        eye = np.eye(self.LS.shape[0])
        Sinv_half = solve_triangular(self.LS, eye, lower=True, check_finite=False)  # LS⁻¹
        # Rows of L⁻¹ for the first group: [L11⁻¹, −LS⁻¹BᵀL11⁻¹ ...]; (M⁻¹)_11 blocks are
        # L11⁻ᵀL11⁻¹ + Gᵀ S⁻¹ G, G = BᵀL11⁻¹... done by chunks of levels to bound memory.
        first = np.einsum("lba,lbc->lac", self.Linv11, self.Linv11)
        chunk = max(1, 2_000_000 // max(1, self.LS.shape[0] * K1))
        for start in range(0, L1, chunk):
            stop = min(L1, start + chunk)
            rows = slice(start * K1, stop * K1)
            Bt = self.B[rows].T.toarray()  # (q2, m·K1)
            Gt = np.einsum("qla,lab->qlb", Bt.reshape(-1, stop - start, K1),
                           self.Linv11[start:stop])
            H = Sinv_half @ Gt.reshape(Bt.shape[0], -1)
            H = H.reshape(-1, stop - start, K1)
            first[start:stop] += np.einsum("qla,qlb->lab", H, H)
        Sinv = Sinv_half.T @ Sinv_half
        out, offset = [first], 0
        for group in groups[1:]:
            L, K = group.n_levels, group.K
            idx = offset + np.arange(L)[:, None] * K + np.arange(K)
            out.append(Sinv[idx[:, :, None], idx[:, None, :]])
            offset += L * K
        return out


class SchurBackend:
    def __init__(self, layout: Layout, thetas: ThetaLayout, like: SchurBackend | None = None):
        """`like`: this design's backend under other weights (a GLMM's PIRLS), whose pattern
        work (the Gram's pair list) is reused."""
        self.layout, self.thetas = layout, thetas
        first, *rest = layout.groups
        self.first, self.rest = first, tuple(rest)
        q1 = first.q
        q2 = layout.q - q1
        if q2 > MAX_DENSE_SCHUR:
            raise NotImplementedError(
                f"{q2} random-effect columns outside the largest grouping factor (limit "
                f"{MAX_DENSE_SCHUR}): the dense Schur complement would need "
                f"{q2 * q2 * 8 / 1e9:.1f} GB per copy; a sparse one is not implemented yet."
            )
        self.A11 = level_blocks(first)
        self._scatter = None
        if like is not None and layout.row_weights is not None and like.scatter() is not None:
            self._scatter = like.scatter()
            self.A12, self.A22 = self._scatter.pieces(layout.row_weights)
            self.A22_diag = None if like.A22_diag is None else np.diag(self.A22).copy()
        else:
            A = layout.gram()
            self.A12 = A[:q1, q1:].tocsr()
            self.A12.sort_indices()
            A22 = A[q1:, q1:].tocoo()
            self.A22 = A22.toarray()
            A22_diagonal = A22.count_nonzero() == np.count_nonzero(A22.diagonal())
            self.A22_diag = np.diag(self.A22).copy() if A22_diagonal else None
        self.gram = WeightedGram(self.A12, first.K, None if like is None else like.gram)
        self.q1, self.q2 = q1, q2
        self.RHS = np.column_stack([layout.ZtX, layout.Zty])
        self._diagonal_rest = all(g.K == 1 for g in rest)
        if like is not None:  # the same design: share what depends on its pattern only
            self.rest_group_of_column, self._lam2 = like.rest_group_of_column, like._lam2
        else:
            self.rest_group_of_column = np.repeat(np.arange(len(rest)),
                                                  [g.q for g in rest]).astype(np.int64)
            self._lam2 = {"pattern": block_pattern([(g.n_levels, g.K) for g in rest])}
        # The analytic gradient covers 1×1 blocks, one block per group (crossed/nested intercepts).
        self.has_gradient = (all(g.K == 1 for g in layout.groups)
                             and self.gram.pairs is not None)

    def gradient(self, state, method: str) -> np.ndarray:
        return schur_gradient(self, state, method)

    @cached_property
    def A21(self) -> sp.csr_matrix:
        return self.A12.T.tocsr()

    @cached_property
    def A22_sparse(self) -> sp.csr_matrix:
        """A22 as a sparse matrix: mostly diagonal, so products with it stay cheap."""
        return sp.csr_matrix(self.A22)

    def scatter(self) -> Scatter | None:
        """Where ZᵀWZ's products land (scatter.py), for re-weighting this backend's unweighted
        design; None when the layout is weighted or its rows are not uniform."""
        if self._scatter is None and self.layout.row_weights is None:
            try:
                self._scatter = Scatter(self.layout.Zt, self.A12, self.q1)
            except ValueError:
                self._scatter = False
        return self._scatter or None

    def rest_lambda(self, Trest: list[np.ndarray]) -> np.ndarray:
        """The diagonal of Λ2 when every remaining block is 1×1."""
        return np.concatenate([np.full(g.n_levels, T[0, 0]) for g, T in
                               zip(self.rest, Trest, strict=True)])

    def A_times(self, v: np.ndarray) -> np.ndarray:
        """ZᵀZ v from its stored pieces (A11 per level, A12, A22)."""
        L1, K1 = self.first.n_levels, self.first.K
        v1, v2 = v[: self.q1], v[self.q1:]
        top = (np.einsum("lab,lb...->la...", self.A11, v1.reshape(L1, K1, *v.shape[1:]))
               .reshape(v1.shape) + self.A12 @ v2)
        if self.A22_diag is not None:
            bottom = (self.A22_diag if v.ndim == 1 else self.A22_diag[:, None]) * v2
        else:
            bottom = self.A22_sparse @ v2
        return np.concatenate([top, self.A21 @ v1 + bottom])

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        templates = self.thetas.templates(theta)
        return [group_template(g, templates) for g in self.layout.groups]

    def evaluate(self, theta: np.ndarray) -> SchurFactor:
        T1, *Trest = Ts = self.templates(theta)
        L1, K1 = self.first.n_levels, self.first.K
        M11 = T1.T @ self.A11 @ T1 + np.eye(K1)
        chol11 = np.linalg.cholesky(M11)
        Linv11 = np.linalg.inv(chol11)
        BD = np.einsum("lab,cb->lac", Linv11, T1)  # L11⁻¹Λ1ᵀ per level
        # S = Λ2ᵀ (A22 − A21 Λ1 M11⁻¹ Λ1ᵀ A12) Λ2 + I
        S = self._sandwich(self.A22 - self.gram(np.einsum("lba,lbc->lac", BD, BD)), Trest)
        S[np.diag_indices_from(S)] += 1.0
        LS = cholesky(S, lower=True, overwrite_a=True, check_finite=False)
        Lam2 = self._lambda_rest(Trest)
        z1 = np.einsum("lak,lkm->lam", BD, self.RHS[: self.q1].reshape(L1, K1, -1))
        # Bᵀz1 = Λ2ᵀ A21 (L11⁻¹Λ1ᵀ)ᵀ z1, without forming B.
        Bt_z1 = Lam2.T @ (self.A12.T @ np.einsum("lka,lkm->lam", BD, z1).reshape(self.q1, -1))
        z2 = solve_triangular(LS, Lam2.T @ self.RHS[self.q1:] - Bt_z1, lower=True,
                              check_finite=False)
        z = np.vstack([z1.reshape(self.q1, -1), z2])
        logdet = 2.0 * float(np.log(np.diagonal(chol11, axis1=1, axis2=2)).sum()
                             + np.log(np.diag(LS)).sum())
        return SchurFactor(logdet, z[:, -1].copy(), z[:, :-1].copy(), Linv11, BD, self.A12,
                           Lam2, LS, Ts, self if self.has_gradient else None)

    def _lambda_rest(self, Trest: list[np.ndarray]) -> sp.csr_matrix:
        """Λ2 on its fixed pattern (built once): only the values change with θ. The last one
        is kept (a GLMM's PIRLS steps at one θ share it)."""
        key = tuple(np.concatenate([T.ravel() for T in Trest]))
        if self._lam2.get("key") != key:
            indptr, indices, shape = self._lam2["pattern"]
            data = np.concatenate([np.tile(T.ravel(), g.n_levels)
                                   for g, T in zip(self.rest, Trest, strict=True)])
            self._lam2.update(key=key, value=sp.csr_matrix((data, indices, indptr), shape=shape))
        return self._lam2["value"]

    def _sandwich(self, D: np.ndarray, Trest: list[np.ndarray]) -> np.ndarray:
        """Λ2ᵀ D Λ2 for a dense symmetric D; a scaling when every Λ2 block is 1×1."""
        if self._diagonal_rest:
            d = self.rest_lambda(Trest)
            D *= d[:, None]
            D *= d[None, :]
            return D
        Lam2 = self._lambda_rest(Trest)
        X = Lam2.T @ symmetric(D)
        return np.ascontiguousarray((Lam2.T @ np.ascontiguousarray(X.T)).T)


def block_pattern(sizes: list[tuple[int, int]]):
    """(indptr, indices, shape) of a block diagonal of L K×K blocks per (L, K), zeros kept."""
    indices, offset = [], 0
    for L, K in sizes:
        indices.append((offset + (np.arange(L * K) // K) * K)[:, None] + np.arange(K))
        offset += L * K
    rows_nnz = np.concatenate([np.full(L * K, K) for L, K in sizes]) if sizes else np.zeros(0)
    indptr = np.concatenate([[0], np.cumsum(rows_nnz)]).astype(np.int64)
    flat = np.concatenate([i.ravel() for i in indices]) if indices else np.zeros(0, np.int64)
    return indptr, flat.astype(np.int64), (offset, offset)


def _block_diag(blocks: np.ndarray) -> sp.csr_matrix:
    """A block diagonal of L dense K×K blocks, zeros kept so the pattern is fixed."""
    L, K, _ = blocks.shape
    indptr = np.arange(0, L * K * K + 1, K)
    indices = ((np.arange(L * K) // K) * K)[:, None] + np.arange(K)
    return sp.csr_matrix((np.ascontiguousarray(blocks).ravel(), indices.ravel(), indptr),
                         shape=(L * K, L * K))
