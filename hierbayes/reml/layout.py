"""Column layout of the random effects and the sufficient statistics of the data.

Blocks that share a grouping factor are merged per level, so each grouping factor ("group") has
K = Σ k_b columns per level. Internal column order: groups by decreasing number of columns (the
largest first, which the Schur backend eliminates cheaply), then level, then the group's blocks'
terms in design order. Column of (group g, level l, term t) = offset_g + l·K_g + t.

Everything a θ evaluation needs is a cross-product computed here once (ZᵀZ, ZᵀX, Zᵀy, XᵀX, ...),
so no evaluation touches the n rows again. y is first replaced by its OLS residual: the penalized
residual sum of squares is then a difference of small numbers, not of large ones (y'y - ...).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from ..design import Design


@dataclass(frozen=True, eq=False)
class Group:
    """One grouping factor with all the blocks over it."""

    name: str
    blocks: tuple[int, ...]  # design block indices, in design order
    sizes: tuple[int, ...]  # k of each of those blocks
    term_offsets: tuple[int, ...]  # where each block's terms start within a level
    n_levels: int
    K: int  # columns per level
    offset: int  # first internal column
    index: np.ndarray | None  # (n,) level of each row; None from cross-products alone
    Z: np.ndarray | None  # (n, K) the blocks' Z side by side; None from cross-products alone
    A: np.ndarray | None = None  # (L, K, K) the diagonal blocks of ZᵀZ, when given

    @property
    def q(self) -> int:
        return self.n_levels * self.K


@dataclass(frozen=True, eq=False)
class Layout:
    groups: tuple[Group, ...]
    q: int
    n: int
    p: int
    beta_ols: np.ndarray  # (p,) β of the plain regression that was subtracted from y
    XtX: np.ndarray  # (p, p)
    Xty: np.ndarray  # (p,) Xᵀ y0 (≈ 0: y0 is the OLS residual)
    yty: float  # y0ᵀ y0
    ZtX: np.ndarray  # (q, p)
    Zty: np.ndarray  # (q,)
    Zt: sp.csr_matrix | None  # (q, n) Zᵀ in internal order (rows scaled by √w when weighted)
    log_weights: float = 0.0  # Σ log w_i: the criterion subtracts it (log|V| = log|M| − Σ log w)
    row_weights: np.ndarray | None = None  # (n,) w_i the rows were scaled by (√w), None: none
    ZtZ: sp.csr_matrix | None = None  # (q, q) given when the rows are not (Zt is None)

    def gram(self) -> sp.csr_matrix:
        """ZᵀZ in internal order."""
        return self.ZtZ if self.ZtZ is not None else (self.Zt @ self.Zt.T).tocsr()

    def block_columns(self, b: int) -> tuple[Group, np.ndarray]:
        """The group of design block `b` and the within-level positions of its terms."""
        for group in self.groups:
            if b in group.blocks:
                j = group.blocks.index(b)
                return group, group.term_offsets[j] + np.arange(group.sizes[j])
        raise KeyError(b)


def make_layout(design: Design, weights: np.ndarray | None = None) -> Layout:
    """Cross-products of the design; with `weights` (var(e_i) = σ²/w_i) rows are scaled by √w,
    so the same backends solve the weighted problem (what a GLMM's PIRLS step needs).
    A design built from a Dask frame has only cross-products: `moment_layout`."""
    if design.moments is not None:
        return moment_layout(design)
    sw = None if weights is None else np.sqrt(np.asarray(weights, dtype=float))
    groups = _groups(design, sw)
    Zt = _zt(groups, design.X.shape[0])
    X = design.X if sw is None else design.X * sw[:, None]
    # An offset is a known part of the mean: the model is fitted to y minus it.
    y = design.y if design.offset is None else design.y - design.offset
    y = y if sw is None else y * sw
    log_weights = 0.0 if sw is None else 2.0 * float(np.log(sw).sum())
    out = _cross_products(groups, Zt, X, y, log_weights, center=True)
    return out if weights is None else replace(out, row_weights=np.asarray(weights, float))


def reweighted(base: Layout, X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> Layout:
    """The layout of `base`'s (unweighted) random effects with new weights and a new response:
    one PIRLS step of a GLMM. The sparsity pattern and level indices of `base` are reused, so
    only the O(n) cross-products are recomputed. `log_weights` is left at 0: PIRLS has no σ to
    profile, and a weight may be 0 (a binomial row with no trials)."""
    sw = np.sqrt(weights)
    groups = tuple(replace(g, Z=g.Z * sw[:, None]) for g in base.groups)
    Zt = base.Zt.copy()
    Zt.data *= sw[Zt.indices]
    out = _cross_products(groups, Zt, X * sw[:, None], y * sw, 0.0, center=False)
    return replace(out, row_weights=weights)


def _cross_products(groups, Zt: sp.csr_matrix, X: np.ndarray, y: np.ndarray,
                    log_weights: float, center: bool) -> Layout:
    """`center`: subtract the OLS fit from y first (the Gaussian criterion needs r² to full
    precision); PIRLS uses only β and u, so it skips that least-squares solve."""
    n, p = X.shape
    beta_ols = np.linalg.lstsq(X, y, rcond=None)[0] if center else np.zeros(p)
    y0 = y - X @ beta_ols if center else y
    return Layout(
        groups=groups, q=Zt.shape[0], n=n, p=p, beta_ols=beta_ols, XtX=X.T @ X, Xty=X.T @ y0,
        yty=float(y0 @ y0), ZtX=np.asarray(Zt @ X), Zty=np.asarray(Zt @ y0), Zt=Zt,
        log_weights=log_weights,
    )


def moment_layout(design: Design) -> Layout:
    """The layout from the cross-products of a design built from a Dask frame
    (`hierbayes.bigdata.moments`: blocks in design order there, reordered here; prior weights
    are refused before, by `deviance.check_weights`)."""
    m, res = design.moments.sums, design.moments.residuals
    groups = _groups(design, None)
    order = np.empty(m.ZtZ.shape[0], dtype=np.int64)  # internal column -> moment column
    for group in groups:
        for b, start, k in zip(group.blocks, group.term_offsets, group.sizes, strict=True):
            cols = design.moments.block_columns(b)  # (L, k)
            internal = group.offset + np.arange(group.n_levels)[:, None] * group.K + start
            order[internal + np.arange(k)] = cols
    ZtZ = m.ZtZ[order][:, order].tocsr()
    with_blocks = []
    for group in groups:
        idx = group.offset + np.arange(group.n_levels)[:, None] * group.K + np.arange(group.K)
        A = np.asarray(ZtZ[np.repeat(idx, group.K, axis=1).ravel(),
                           np.tile(idx, (1, group.K)).ravel()]).reshape(
            group.n_levels, group.K, group.K)
        with_blocks.append(replace(group, A=A))
    return Layout(groups=tuple(with_blocks), q=len(order), n=m.n, p=m.XtX.shape[0],
                  beta_ols=res.beta_ols, XtX=m.XtX, Xty=res.Xte, yty=res.ete,
                  ZtX=m.ZtX[order], Zty=res.Zte[order], Zt=None, ZtZ=ZtZ)


def _groups(design: Design, sw: np.ndarray | None) -> tuple[Group, ...]:
    by_name: dict[str, list[int]] = {}
    for b, block in enumerate(design.blocks):
        by_name.setdefault(block.group, []).append(b)
    specs = []
    for name, members in by_name.items():
        blocks = [design.blocks[b] for b in members]
        sizes = [block.n_terms for block in blocks]
        offsets = tuple(np.cumsum([0, *sizes[:-1]]).tolist())
        rows = design.moments is None
        Z = _scaled(np.hstack([b.Z for b in blocks]), sw) if rows else None
        specs.append((name, tuple(members), tuple(sizes), offsets, blocks[0].n_levels,
                      sum(sizes), blocks[0].index if rows else None, Z))
    # Largest group first (stable): the Schur backend eliminates it as a block diagonal.
    specs.sort(key=lambda s: -s[4] * s[5])
    groups, offset = [], 0
    for name, members, sizes, offsets, n_levels, K, index, Z in specs:
        groups.append(Group(name, members, sizes, offsets, n_levels, K, offset, index, Z))
        offset += n_levels * K
    return tuple(groups)


def _scaled(Z: np.ndarray, sw: np.ndarray | None) -> np.ndarray:
    return Z if sw is None else Z * sw[:, None]


def _zt(groups: tuple[Group, ...], n: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for group in groups:
        K = group.K
        # Every (row, term) pair is stored, zeros included, so the pattern is structural.
        cols.append((group.offset + group.index[:, None] * K + np.arange(K)).ravel())
        rows.append(np.repeat(np.arange(n), K))
        vals.append(group.Z.ravel())
    q = sum(group.q for group in groups)
    Z = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, q))
    return Z.T.tocsr()


def level_blocks(group: Group) -> np.ndarray:
    """(L, K, K): Σ z zᵀ over the rows of each level, the diagonal blocks of ZᵀZ."""
    if group.A is not None:
        return group.A
    L, K = group.n_levels, group.K
    out = np.empty((L, K, K))
    for a in range(K):
        for c in range(a, K):
            out[:, a, c] = np.bincount(group.index, weights=group.Z[:, a] * group.Z[:, c],
                                       minlength=L)
            out[:, c, a] = out[:, a, c]
    return out


def group_template(group: Group, templates: list[np.ndarray]) -> np.ndarray:
    """K×K template of a group: its blocks' templates on the diagonal."""
    T = np.zeros((group.K, group.K))
    for b, start in zip(group.blocks, group.term_offsets, strict=True):
        k = templates[b].shape[0]
        T[start:start + k, start:start + k] = templates[b]
    return T
