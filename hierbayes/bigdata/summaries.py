"""Whole-data summaries of a fit that the sums give without the rows (`hierbayes.reml.r2`,
`hierbayes.reml.anova`): the variance of the fixed part, each block's mean zᵀΣz, and whether
two fits saw the same response and fixed-effect matrix."""

from __future__ import annotations

import numpy as np


def variance_parts(fit) -> tuple[float, dict[str, float]]:
    """(var(Xβ̂) with ddof 1, grouping factor -> mean over rows of zᵢᵀΣzᵢ)."""
    dm = fit.design.moments
    m, beta = dm.sums, np.asarray(fit.beta, float)
    total, square = float(beta @ m.XtR[:, 1]), float(beta @ m.XtX @ beta)
    fixed = (square - total ** 2 / m.n) / (m.n - 1) if m.n > 1 else 0.0
    diag_blocks = m.ZtZ
    by_group: dict[str, float] = {}
    for b, block in enumerate(fit.design.blocks):
        cols = dm.block_columns(b)  # (L, k)
        k = cols.shape[1]
        ZtZ = np.asarray(diag_blocks[np.repeat(cols, k, axis=1).ravel(),
                                     np.tile(cols, (1, k)).ravel()]).reshape(-1, k, k).sum(0)
        share = float(np.sum(fit.covariance[block.name] * ZtZ)) / m.n  # tr(Σ ZᵀZ)/n
        by_group[block.group] = by_group.get(block.group, 0.0) + max(share, 0.0)
    return max(fixed, 0.0), by_group


def same_response(a, b) -> bool:
    """Whether two designs from Dask frames summed the same response over the same rows."""
    ma, mb = a.moments, b.moments
    if ma is None or mb is None:
        return False
    return (ma.sums.n == mb.sums.n and ma.shift == mb.shift
            and np.array_equal(ma.sums.RtR, mb.sums.RtR))


def same_fixed(a, b) -> bool:
    """Whether two designs from Dask frames have the same fixed-effect cross-products."""
    return np.allclose(a.moments.sums.XtX, b.moments.sums.XtX) and np.allclose(
        a.moments.sums.XtR, b.moments.sums.XtR)
