"""The marginal likelihood's statistics (`hierbayes.bayes.marginal.model`) from the sums of a
design built from a Dask frame: the same names and shapes as from the rows.

Grouped layout (one grouping factor): per level the k × k ZⱼᵀZⱼ, ZⱼᵀXⱼ by term and Zⱼᵀeⱼ, the
factor's blocks side by side in design order. Dense layout (several factors): ZᵀZ, ZᵀX, Zᵀe
with columns block by block and level-major within a block, which is the sums' own order.
Numpy only: no PyMC here.
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from ..errors import HierbayesError


def check_path(path: str, reason: str, marginalize) -> None:
    """A design from a Dask frame has no rows for the standard model's likelihood."""
    if marginalize is False:
        path, reason = "standard", "marginalize=False asks for the standard model"
    if path == "schur":  # its statistics are built from the rows (level classes, partners)
        path, reason = "standard", (f"{reason}; that path reads the rows, which a Dask frame "
                                    "does not hold in memory")
    if path == "standard":
        raise HierbayesError(
            "A Dask frame is fitted by fit_bayes on the marginal path only (group effects "
            f"integrated out from the cross-products); here that is not possible: {reason}. "
            "Fit a pandas frame (e.g. a sample of the Dask frame)."
        )


def moment_stats(design: Design, path: str) -> dict:
    dm = design.moments
    m, res = dm.sums, dm.residuals
    stats = {"n": m.n, "beta_hat": res.beta_ols, "ete": res.ete, "Xte": res.Xte, "XtX": m.XtX}
    if path == "dense":
        return {**stats, "A": m.ZtZ.toarray(), "ZtX": np.asarray(m.ZtX), "Zte": res.Zte}
    cols = np.hstack([dm.block_columns(b) for b in range(len(design.blocks))])  # (J, k)
    J, k = cols.shape
    rows_idx = np.repeat(cols, k, axis=1).ravel()
    cols_idx = np.tile(cols, (1, k)).ravel()
    A = np.asarray(m.ZtZ[rows_idx, cols_idx]).reshape(J, k, k)
    ZtX = m.ZtX[cols.T]  # (k, J, p)
    return {**stats, "A": A, "ZtX": np.ascontiguousarray(ZtX), "Zte": res.Zte[cols],
            "levels": J}
