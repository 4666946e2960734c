"""The within-group part of `hierbayes.identifiability.check_exact_fit`, from the sums.

A block with an intercept (a constant column of Z) has, per level, the counts and the sums of y
and of X in its ZᵀR and ZᵀX rows at that column. With them the within-level cross-products of
[X, y] are the totals minus Σ_l s_l s_lᵀ / c_l, and the residual of the within-level response on
the within-level X tells whether the fixed effects and the group intercepts reproduce y exactly.
From sums of squares that residual is known to about 1e-8 of the response's norm, so the
tolerance is EXACT_TOL there (1e-11 from the rows).
"""

from __future__ import annotations

import numpy as np

from ..identifiability import within_exact_error

EXACT_TOL = 1e-7


def check_within_exact(response: str, moments, blocks) -> None:
    m, shift = moments.sums, moments.shift
    summary = moments.column_summary()
    total = m.RtR[0, 0] + 2 * shift * m.RtR[0, 1] + m.n * shift ** 2  # Σy²
    # [X, y − shift] cross-products: (p + 1, p + 1)
    G = np.block([[m.XtX, m.XtR[:, :1]], [m.XtR[:, :1].T, m.RtR[:1, :1]]])
    for b, block in enumerate(blocks):
        constant = np.flatnonzero((summary["z_sd"][b] == 0) & (summary["z_rms"][b] > 0))
        if constant.size == 0:
            continue
        cols = moments.block_columns(b)[:, constant[0]]  # (L,) that column per level
        z0 = summary["z_rms"][b][constant[0]] * np.sign(m.ZtR[cols, 1].sum())
        counts = m.ZtR[cols, 1] / z0  # (L,)
        sums = np.column_stack([m.ZtX[cols], m.ZtR[cols, :1]]) / z0  # (L, p + 1)
        used = counts > 0
        W = G - (sums[used].T / counts[used]) @ sums[used]  # within-level cross-products
        within_y = max(W[-1, -1], 0.0)
        rest = within_y
        if W.shape[0] > 1:
            coef = np.linalg.lstsq(W[:-1, :-1], W[:-1, -1], rcond=1e-10)[0]
            rest = max(within_y - W[:-1, -1] @ coef, 0.0)
        if rest <= EXACT_TOL ** 2 * total:
            # within ≈ 0 relative to y: the response is constant within every level
            raise within_exact_error(response, block, float(np.sqrt(within_y)),
                                     float(np.sqrt(total)), m.n, rtol=EXACT_TOL)
