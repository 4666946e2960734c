"""Points just inside a relative SD's 0 bound to restart from: lme4's restart_edge, made to see
past the Cholesky parameterisation's blind spots at that bound.

A block's covariance is σ²Σ, Σ = TTᵀ, T lower triangular with θ's entries. A diagonal T_jj at 0
makes Σ singular; the criterion is a smooth function of Σ, and from a singular Σ it can fall
along directions that no single θ reaches at first order:

- The criterion is even in T_jj when the column below it is 0 too (T_jj enters as T_jj²), so its
  slope there is 0, and stepping T_jj alone moves Σ by T_jj²·e_jeⱼᵀ, mostly along Σ's own range
  when the term is nearly collinear with the others (a correlation near ±1): the fall along the
  null direction v of Σ is then hidden under the rise along the range (measured: a (x | g) ML fit
  2.8e-5 too high).
- With T_jj = 0, T is not unique: the same Σ has factors whose column j points either way. The
  slope along +T_jj differs between them, and a gradient method that reaches the bound at a factor
  whose slope is ≥ 0 stops there ("converged", projected gradient 0) although Σ can still move
  down (2×2: θ = (0, a, b) gives one Σ for every (a, b) on a circle, and only the points with a of
  the right sign have the descent; 10 of 200 simulated (x | g) REML/ML fits stopped up to 0.34
  units of criterion above mixedlm's optimum, and 19 of 120 Poisson and binomial ones up to
  3.1).

So the candidates are built on Σ itself: with v a unit null vector of Σ and w a component of Σ
(w = ±s_i·u_i from T = U·diag(s)·Vᵀ, Σ = Σ_i s_i²u_iu_iᵀ), Σ' = Σ − wwᵀ + (w + εv)(w + εv)ᵀ
tilts that component towards v (first order in ε: ε(vwᵀ + wvᵀ)) and Σ' = Σ + ε²vvᵀ (w = 0) opens
the null direction alone; θ' is read from Σ''s Cholesky factor. Sizes are measured in the terms'
units (ThetaLayout.units): a slope in odd units (sleepstudy with Days × 1000: optimum θ22 =
2.3e-4) has its optimum far inside a step of 0.01 in θ itself. lme4's derivative-free bobyqa
samples points around the bound and does not need this.

`edge_points` lists the candidates of every block with a diagonal at 0 (3 directions × 3 steps
for a 2×2 block of rank 1); `optimize.off_the_edge` restarts from the lowest if it lowers the
criterion. A point with no diagonal at 0 has none: interior optima cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .theta import ThetaLayout

# ε as fractions of the block's size (its largest singular value in the terms' units, at least
# 1). Three decades: a fall whose minimum lies at ε* shows at every step below 2ε*.
EDGE_STEPS = (1e-1, 1e-2, 1e-3)
RANK_TOL = 1e-10  # singular values of T below this fraction of its size count as 0


def edge_points(x: np.ndarray, thetas: ThetaLayout) -> Iterator[np.ndarray]:
    """Points with θ (x's first thetas.n_theta values) moved inside the bound along each
    candidate of every block with a diagonal at 0 (see the module docstring)."""
    n = thetas.n_theta
    theta = np.asarray(x[:n], float)
    at_zero = thetas.is_diagonal & (theta <= 0.0)
    if not at_zero.any():
        return
    templates = thetas.templates(theta)
    for b in np.unique(thetas.block_of[at_zero]):
        mine = thetas.block_of == b
        k = thetas.sizes[b]
        unit = np.ones(k)
        unit[thetas.rows[mine]] = thetas.units[mine]  # a row's entries share its unit
        correlated = int(mine.sum()) > k
        for T in block_candidates(templates[b] / unit[:, None], correlated):
            y = np.array(x, float)
            y[:n][mine] = (T * unit[:, None])[thetas.rows[mine], thetas.cols[mine]]
            yield y


def block_candidates(T: np.ndarray, correlated: bool = True) -> Iterator[np.ndarray]:
    """Lower-triangular factors of Σ's candidates (module docstring) for a singular factor T.
    An uncorrelated block (diagonal T) has only the null directions opened alone."""
    U, s, _ = np.linalg.svd(T)
    size = max(float(s[0]), 1.0)
    null = s <= RANK_TOL * size
    components = [sign * s[i] * U[:, i] for i in np.flatnonzero(~null) for sign in (1.0, -1.0)
                  if correlated]
    sigma = T @ T.T
    for v in U[:, null].T:
        for w in [*components, np.zeros(T.shape[0])]:
            for step in EDGE_STEPS:
                eps = step * size
                tilt = eps * (np.outer(v, w) + np.outer(w, v)) + eps * eps * np.outer(v, v)
                yield semidefinite_cholesky(sigma + tilt)


def semidefinite_cholesky(S: np.ndarray) -> np.ndarray:
    """The lower-triangular L with LLᵀ = S for a positive semi-definite S, with L_jj = 0 (and
    the column below it 0) where a pivot is 0 to rounding."""
    k = S.shape[0]
    L = np.zeros_like(S)
    tiny = 1e-13 * max(float(np.max(np.abs(np.diag(S)), initial=0.0)), 1e-300)
    for j in range(k):
        pivot = S[j, j] - L[j, :j] @ L[j, :j]
        if pivot <= tiny:
            continue
        L[j, j] = np.sqrt(pivot)
        L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L
