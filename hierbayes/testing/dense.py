"""Dense reference algebra for checking the engines: the group-effect matrix Z and block-diagonal
matrices with one k × k block per level, written plainly (numpy loops, no sparsity, no
factorization) so that tests check the sparse, grouped and Schur algebra against it rather than
repeat it.

Layout (the one lme4, the REML engine and the marginal path use): blocks in the design's order;
within a block, level-major, i.e. column ``offset + level * k + term``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..design import Design


def dense_Z(design: Design) -> np.ndarray:
    """The n × q matrix with ``y = Xβ + Z b + e``, b stacked block by block, level-major."""
    columns = [np.zeros((design.n_obs, 0))]
    rows = np.arange(design.n_obs)
    for block in design.blocks:
        k = block.n_terms
        Zb = np.zeros((design.n_obs, block.n_levels * k))
        for t in range(k):
            Zb[rows, block.index * k + t] = block.Z[:, t]
        columns.append(Zb)
    return np.hstack(columns)


def per_level(design: Design, matrices: dict[str, np.ndarray]) -> np.ndarray:
    """The q × q block-diagonal matrix holding ``matrices[block.name]`` (k × k, e.g. a block's
    covariance Σ_b or its relative factor Λ_b) once for every level of that block."""
    return sla.block_diag(
        np.zeros((0, 0)),
        *(np.kron(np.eye(b.n_levels), np.atleast_2d(matrices[b.name])) for b in design.blocks),
    )
