"""Sparse Cholesky backend for designs whose dense Schur complement would not fit in memory.

The Schur backend (schur.py) keeps the random-effect columns outside the largest grouping factor
as one dense q2 × q2 matrix: right for InstEval's 1,156, impossible for tens of thousands. Here
M = ΛᵀZᵀZΛ + I (all q columns) is factored as a sparse LDLᵀ by QDLDL (the `qdldl` package of the
OSQP project: an optional dependency, `pip install hierbayes[sparse]`), after its approximate
minimum degree ordering: M = P(I + L)D(I + L)ᵀPᵀ. The ordering and the symbolic factorisation are
computed once; each θ refactors numerically on the same pattern (`Solver.update`). With
F = P(I + L)D^½ (M = FFᵀ) the PLS algebra of pls.py holds unchanged: cu = F⁻¹Λᵀ Zᵀy,
RZX = F⁻¹ΛᵀZᵀX, u = F⁻ᵀ(cu − RZX β), log|M| = Σ log d.

How fast it is depends on the fill of L, i.e. on how the factors cross: factors whose levels meet
in few combinations (schools × teachers × years, items grouped by raters) factor in well under a
second at 40,000 levels; fully random crossings of that size fill in and are out of reach of any
exact method. There is no analytic gradient here (the optimiser uses differences). The
conditional variances at the optimum come from the Takahashi recurrences on L's pattern
(`selected_inverse`), never from a dense inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve_triangular

from ..errors import HierbayesError
from .layout import Layout, group_template
from .schur import block_pattern

try:  # optional: the `sparse` extra
    import qdldl
except ImportError:  # pragma: no cover - exercised where qdldl is not installed
    qdldl = None

INSTALL = "pip install 'hierbayes[sparse]' (which installs qdldl)"


def require_qdldl(what: str) -> None:
    if qdldl is None:
        raise HierbayesError(
            f"{what} needs a sparse Cholesky factorisation, which comes from the optional "
            f"package qdldl: {INSTALL}."
        )


@dataclass(frozen=True, eq=False)
class SparseFactor:
    logdet: float
    cu: np.ndarray  # (q,)
    RZX: np.ndarray  # (q, p)
    unit_lower: sp.csr_matrix  # I + L
    d: np.ndarray  # (q,) D
    perm: np.ndarray  # (q,) qdldl's p: (Pᵀv) = v[p]
    L: sp.csc_matrix  # strictly lower L (Takahashi reads its pattern)

    def forward(self, v: np.ndarray) -> np.ndarray:
        """F⁻¹v = D^(−½)(I + L)⁻¹v[p]."""
        w = spsolve_triangular(self.unit_lower, v[self.perm], lower=True, unit_diagonal=True)
        return w / (np.sqrt(self.d) if w.ndim == 1 else np.sqrt(self.d)[:, None])

    def backward(self, v: np.ndarray) -> np.ndarray:
        """F⁻ᵀv = P(I + L)⁻ᵀD^(−½)v."""
        scaled = v / (np.sqrt(self.d) if v.ndim == 1 else np.sqrt(self.d)[:, None])
        x = spsolve_triangular(self.unit_lower.T.tocsr(), scaled, lower=False,
                               unit_diagonal=True)
        out = np.empty_like(x)
        out[self.perm] = x
        return out

    def solve(self, v: np.ndarray) -> np.ndarray:
        return self.backward(self.forward(v))

    def inverse_blocks(self, groups) -> list[np.ndarray]:
        """Per group, the (levels, K, K) diagonal blocks of M⁻¹ (selected inversion)."""
        zdiag, zL, keys = selected_inverse(self.L, self.d)
        n = self.d.size
        where = np.empty(n, dtype=np.int64)
        where[self.perm] = np.arange(n)  # M⁻¹[i, j] = Z̃[where[i], where[j]]
        out = []
        for group in groups:
            L, K = group.n_levels, group.K
            cols = group.offset + np.arange(L)[:, None] * K + np.arange(K)
            a, b = where[cols][:, :, None], where[cols][:, None, :]
            hi, lo = np.maximum(a, b), np.minimum(a, b)
            pos = np.searchsorted(keys, lo * n + hi)
            block = zL[np.minimum(pos, zL.size - 1)]
            block = np.where(a == b, zdiag[a], block)
            out.append(block)
        return out


def selected_inverse(L: sp.csc_matrix, d: np.ndarray):
    """The entries of Z̃ = ((I + L)D(I + L)ᵀ)⁻¹ on the pattern of L, and its diagonal (Takahashi,
    Fagan & Chen 1973): for j from the last column down, with S the rows of column j of L,
    Z̃[S, j] = −Z̃[S, S]L[S, j] and Z̃[j, j] = 1/d_j − L[S, j]ᵀZ̃[S, j]. Z̃[S, S] is known by then:
    every pair of S lies in the pattern (the elimination tree's fill). Returns (diagonal,
    values aligned with L.data, the sorted keys col·n + row of L's entries)."""
    n = d.size
    L = L.tocsc()
    L.sort_indices()
    indptr, rows, vals = L.indptr, L.indices.astype(np.int64), L.data
    cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    keys = cols * n + rows  # sorted: column-major with sorted rows
    zL = np.zeros(vals.size)
    zdiag = np.empty(n)
    for j in range(n - 1, -1, -1):
        start, stop = indptr[j], indptr[j + 1]
        if start == stop:
            zdiag[j] = 1.0 / d[j]
            continue
        S, l = rows[start:stop], vals[start:stop]
        i, k = np.meshgrid(S, S, indexing="ij")  # Z̃[i, k] for k < i sits in column k
        lower = i > k
        Zs = np.diag(zdiag[S])
        pos = np.searchsorted(keys, k[lower] * n + i[lower])
        Zs[lower] = zL[pos]
        Zs = np.tril(Zs) + np.tril(Zs, -1).T
        z = -Zs @ l
        zL[start:stop] = z
        zdiag[j] = 1.0 / d[j] - l @ z
    return zdiag, zL, keys


class SparseBackend:
    """M = ΛᵀAΛ + I on a fixed pattern, factored by QDLDL (see the module docstring)."""

    has_gradient = False

    def __init__(self, layout: Layout, thetas, like: SparseBackend | None = None):
        require_qdldl(f"A design with {layout.q} random-effect columns")
        self.layout, self.thetas = layout, thetas
        self.A = layout.gram()
        self.RHS = np.column_stack([layout.ZtX, layout.Zty])
        shared = like._shared if like is not None else self._pattern()
        self._shared = shared

    def _pattern(self) -> dict:
        """M's pattern with every template entry non-zero, the Λ pattern, and the solver."""
        groups = self.layout.groups
        structural = [np.tril(np.ones((g.K, g.K))) for g in groups]
        lam_pattern = block_pattern([(g.n_levels, g.K) for g in groups])
        Lam = self._lambda(structural, lam_pattern)
        P = (Lam.T @ abs(self.A) @ Lam + sp.eye(self.layout.q)).tocsc()
        P.sort_indices()
        q = self.layout.q
        cols = np.repeat(np.arange(q, dtype=np.int64), np.diff(P.indptr))
        keys = cols * q + P.indices
        diag = np.searchsorted(keys, np.arange(q, dtype=np.int64) * (q + 1))
        return {"lam": lam_pattern, "indptr": P.indptr, "indices": P.indices, "keys": keys,
                "diag": diag, "solver": None}

    def _lambda(self, Ts, pattern) -> sp.csr_matrix:
        indptr, indices, shape = pattern
        data = np.concatenate([np.tile(T.ravel(), g.n_levels)
                               for g, T in zip(self.layout.groups, Ts, strict=True)])
        return sp.csr_matrix((data, indices, indptr), shape=shape)

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        templates = self.thetas.templates(theta)
        return [group_template(g, templates) for g in self.layout.groups]

    def A_times(self, v: np.ndarray) -> np.ndarray:
        return self.A @ v

    def evaluate(self, theta: np.ndarray) -> SparseFactor:
        sh, q = self._shared, self.layout.q
        Lam = self._lambda(self.templates(theta), sh["lam"])
        product = (Lam.T @ self.A @ Lam).tocoo()
        pos = np.searchsorted(sh["keys"], product.col.astype(np.int64) * q + product.row)
        # float even when Λ = 0 leaves the product empty (bincount of nothing gives int64)
        data = np.bincount(pos, weights=product.data, minlength=sh["keys"].size).astype(float)
        data[sh["diag"]] += 1.0
        M = sp.csc_matrix((data, sh["indices"], sh["indptr"]), shape=(q, q))
        if sh["solver"] is None:
            sh["solver"] = qdldl.Solver(M)
        else:
            sh["solver"].update(M)
        L, d, perm = sh["solver"].factors()
        if not np.all(d > 0):
            raise np.linalg.LinAlgError("M is not positive definite in floating point")
        unit_lower = (sp.eye(q, format="csr") + L.tocsr()).tocsr()
        factor = SparseFactor(float(np.log(d).sum()), np.empty(0), np.empty((0, 0)),
                              unit_lower, np.asarray(d, float), np.asarray(perm), L)
        W = factor.forward(Lam.T @ self.RHS)
        return SparseFactor(factor.logdet, W[:, -1].copy(), W[:, :-1].copy(), unit_lower,
                            factor.d, factor.perm, L)
