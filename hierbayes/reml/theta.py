"""The relative covariance factor Λθ: one lower-triangular template per block.

θ follows lme4's convention: for each block (in design order) the lower triangle of its k×k
template, column by column, so that a correlated 2-term block has θ = (λ11, λ21, λ22). An
uncorrelated block has only its diagonal. Diagonal entries are bounded below by 0 (not by a small
positive number) so that a variance exactly at 0 is reachable; off-diagonals are unbounded.

The covariance of one level's effects of a block is σ² T Tᵀ, T the block's template.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design import Design

# lme4's isSingular() tolerance on the diagonal of Λθ.
SINGULAR_TOL = 1e-4


@dataclass(frozen=True)
class ThetaLayout:
    """Where each θ goes: `rows`, `cols` in block `block_of[j]`'s template, and the names."""

    sizes: tuple[int, ...]  # k of each block
    block_of: np.ndarray  # (m,) block of each θ
    rows: np.ndarray  # (m,)
    cols: np.ndarray  # (m,)
    names: tuple[str, ...]
    # 1/RMS of the group-level column of each θ's row: the size of a relative SD of 1 in that
    # term's units (1 for a column of zeros). Steps off a 0 bound are measured in it.
    units: np.ndarray  # (m,)

    @property
    def n_theta(self) -> int:
        return len(self.names)

    @property
    def is_diagonal(self) -> np.ndarray:
        return self.rows == self.cols

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.where(self.is_diagonal, 0.0, -np.inf)

    @property
    def start(self) -> np.ndarray:
        """lme4's start: 1 on diagonals, 0 off them."""
        return self.is_diagonal.astype(float)

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        """θ -> the k×k lower-triangular template of every block."""
        out = [np.zeros((k, k)) for k in self.sizes]
        for j, value in enumerate(np.asarray(theta, float)):
            out[self.block_of[j]][self.rows[j], self.cols[j]] = value
        return out

    def singular(self, theta: np.ndarray) -> bool:
        """lme4's isSingular: a diagonal of Λθ below the tolerance."""
        return bool(np.any(np.asarray(theta)[self.is_diagonal] < SINGULAR_TOL))


def theta_layout(design: Design) -> ThetaLayout:
    block_of, rows, cols, names, units = [], [], [], [], []
    for b, block in enumerate(design.blocks):
        k = block.n_terms
        rms = block.column_rms()
        unit = 1.0 / np.where(rms > 0, rms, 1.0)
        for j in range(k):
            # An uncorrelated block keeps only its diagonal (the design splits `||` bars into
            # one-term blocks already; this also covers a multi-term independent block).
            below = range(j, k) if block.correlated else (j,)
            for i in below:
                block_of.append(b)
                units.append(unit[i])
                rows.append(i)
                cols.append(j)
                label = block.terms[i] if i == j else f"{block.terms[i]}.{block.terms[j]}"
                names.append(f"{block.name}.{label}")
    return ThetaLayout(
        sizes=tuple(block.n_terms for block in design.blocks),
        block_of=np.array(block_of, dtype=np.int64), rows=np.array(rows, dtype=np.int64),
        cols=np.array(cols, dtype=np.int64), names=tuple(names),
        units=np.array(units, dtype=float),
    )
