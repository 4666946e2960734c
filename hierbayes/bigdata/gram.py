"""Which fixed-effect columns are linearly independent, from XᵀX alone (no rows).

The pandas path decides it by an unpivoted QR of X (`hierbayes.validation.independent_columns`):
|R_jj| is the distance of column j from the span of the earlier ones. The Cholesky factor of XᵀX
has the same diagonal, so the same rule reads it here, column by column: a column is dropped
when its squared distance is below RANK_TOL² of its squared norm. (From XᵀX that distance is known
to about 1e-8 of the norm, not 1e-16: an exact dependence is still found, a near one at 1e-7 may
be decided the other way.)
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from ..validation import RANK_TOL, warn_dropped


def independent_from_gram(XtX: np.ndarray, x_min: np.ndarray, x_max: np.ndarray,
                          names: list[str]) -> list[int]:
    p = XtX.shape[0]
    if p == 0:
        return []
    # Columns at unit peak first, as the pandas path does (scale-free, no overflow).
    peak = np.maximum(np.abs(x_min), np.abs(x_max))
    scale = 1.0 / np.where(peak > 0, peak, 1.0)
    G = XtX * scale[:, None] * scale[None, :]
    keep: list[int] = []
    L = np.zeros((0, 0))
    for j in range(p):
        norm2 = G[j, j]
        r = solve_triangular(L, G[keep, j], lower=True) if keep else np.zeros(0)
        d = norm2 - r @ r
        if norm2 > 0 and d > RANK_TOL ** 2 * norm2:
            L = np.block([[L, np.zeros((len(keep), 1))], [r[None, :], np.sqrt(d)]])
            keep.append(j)
    warn_dropped(names, keep)
    return keep
