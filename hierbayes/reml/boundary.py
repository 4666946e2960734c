"""Points just inside a relative SD's 0 bound to restart from: lme4's restart_edge, extended to
see past the Cholesky parameterisation's blind spots at that bound.

A block's covariance is σ²TTᵀ, T lower triangular with θ's entries. While T's diagonal is
positive, T is unique; once a diagonal T_jj is 0 it is not. With T_jj = 0, column j of T may be
negated, and columns j and j+1 may be rotated into each other (rows ≤ j of both are 0, so the
result is still lower triangular), without changing TTᵀ, hence the criterion. The slope of the
criterion along +T_jj differs between these equivalent points: it is 2·(G t_j)_j, G = ∂f/∂Σ and
t_j column j, so it changes sign with t_j and grows with the part of row j+1 put into column j.
A gradient method that reaches T_jj = 0 at a point where that slope is ≥ 0 stops there
("converged", projected gradient 0) even when an equivalent point has a negative slope: in the
2×2 block of (x | g), θ = (0, a, b) gives the same criterion for every (a, b) on a circle, and
the descent off θ11 = 0 exists only at the points with a of the right sign (measured: 6 of 80
simulated (x | g) REML/ML fits, up to 0.19 units of criterion too high). lme4's derivative-free
bobyqa samples points on both sides and does not see the problem.

Where the column below T_jj is 0 as well, the criterion is even in T_jj (it enters as T_jj²),
its slope there is 0 and only a step inside shows whether the bound is a maximum along it. Such
steps are measured against the size of the block's row j (the term's relative SD, carried by the
off-diagonal entries): a slope in odd units (sleepstudy with Days × 1000: optimum θ22 = 2.3e-4)
has its optimum far inside a step of 0.01.

`edge_points` lists the points to try, each one of these equivalent factors with T_jj stepped
inside by one of EDGE_STEPS times that scale; `optimize.off_the_edge` takes the first that lowers
the criterion. A point with no diagonal at 0 has none: interior optima cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .theta import ThetaLayout

# Steps inside, as fractions of the scale of the row or column (1 where both are 0: a scalar
# block, whose relative SD is in units of σ). Largest first: the first that lowers the criterion
# is the restart, and a farther one starts nearer an interior optimum.
EDGE_STEPS = (1e-1, 1e-2, 1e-3)


def edge_points(x: np.ndarray, thetas: ThetaLayout) -> Iterator[np.ndarray]:
    """Points with one zero diagonal of θ (x's first thetas.n_theta values) stepped inside, in
    each factor equivalent to x's at that diagonal (see the module docstring)."""
    theta = np.asarray(x[:thetas.n_theta], float)
    diagonal = thetas.is_diagonal
    for j in np.flatnonzero(diagonal & (theta <= 0.0)):
        b, col = int(thetas.block_of[j]), int(thetas.cols[j])
        T = thetas.templates(theta)[b]
        for factor in equivalent_factors(T, col):
            scale = _scale(factor, col)
            for step in EDGE_STEPS:
                moved = factor.copy()
                moved[col, col] = step * scale
                y = np.array(x, float)
                y[:thetas.n_theta] = _with_block(thetas, theta, b, moved)
                yield y


def equivalent_factors(T: np.ndarray, j: int) -> list[np.ndarray]:
    """Lower-triangular factors with the same TTᵀ as T, whose diagonal T_jj is 0: those with
    the most of row j+1 in column j (both signs) first, then column j negated, then T itself.
    Duplicates are left out."""
    out: list[np.ndarray] = []
    k = T.shape[0]
    if j + 1 < k:
        a, b = T[j + 1, j], T[j + 1, j + 1]
        r = float(np.hypot(a, b))
        if r > 0:
            for sign in (1.0, -1.0):
                c, s = sign * a / r, sign * b / r
                R = T.copy()
                R[:, j] = c * T[:, j] + s * T[:, j + 1]
                R[:, j + 1] = -s * T[:, j] + c * T[:, j + 1]
                R[j + 1, j + 1] = 0.0  # exactly: it is 0 up to rounding
                out.append(R)
    flipped = T.copy()
    flipped[:, j] = -T[:, j]
    out += [flipped, T]
    unique: list[np.ndarray] = []
    for R in out:
        if not any(np.array_equal(R, U) for U in unique):
            unique.append(R)
    return unique


def _scale(T: np.ndarray, j: int) -> float:
    """The size of row j's and column j's entries of T (1 when all are 0)."""
    size = max(float(np.linalg.norm(T[j + 1:, j])), float(np.linalg.norm(T[j, :j])))
    return size if size > 0 else 1.0


def _with_block(thetas: ThetaLayout, theta: np.ndarray, b: int, T: np.ndarray) -> np.ndarray:
    """θ with block b's entries read from T."""
    out = theta.copy()
    mine = thetas.block_of == b
    out[mine] = T[thetas.rows[mine], thetas.cols[mine]]
    return out
