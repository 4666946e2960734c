"""Complete or quasi-complete separation: fixed effects with no finite maximum-likelihood value.

The likelihood increases without bound along a direction d of the fixed effects when moving
along it never hurts any observation and helps at least one: Xd ≥ 0 where y is at its upper
extreme (all successes), Xd ≤ 0 where y is at its lower extreme (no success, or a zero count),
Xd = 0 elsewhere (a proportion strictly inside (0, 1), or a positive count: both ends would cost
likelihood there). The random effects cannot stop that drift (they are penalized, β is not), so
the Laplace fit has no finite optimum either. A linear programme finds such a d if there is one
(Konis 2007): maximise Σ ±(Xd)_i over the extreme rows within −1 ≤ d ≤ 1; its optimum is 0
exactly when the data are not separated.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..design import Design

_TOL = 1e-7  # LP optimum (on unit-scaled columns) above which the data count as separated


def separated_terms(design: Design) -> list[str]:
    """The fixed-effect terms involved in a separating direction (empty when there is none)."""
    if design.X.shape[1] == 0:
        return []
    sign, informative = _extreme_sign(design)
    X, sign = design.X[informative], sign[informative]
    # Distinct (row, sign) pairs carry every constraint; factor designs have few of them.
    _, keep = np.unique(np.column_stack([X, sign]), axis=0, return_index=True)
    keep = np.sort(keep)  # the data order: HiGHS is ~40× slower on lexicographically sorted rows
    X, sign = X[keep], sign[keep]
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    extreme = sign != 0
    if not extreme.any():
        return []
    # linprog minimises: −Σ sign·(Xd) over extreme rows; −sign·(Xd) ≤ 0 there; Xd = 0 inside.
    c = -(sign[extreme, None] * Xs[extreme]).sum(axis=0)
    A_ub = -(sign[extreme, None] * Xs[extreme])
    inner = Xs[~extreme] if (~extreme).any() else None
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(A_ub.shape[0]), A_eq=inner,
                  b_eq=None if inner is None else np.zeros(inner.shape[0]),
                  bounds=[(-1, 1)] * Xs.shape[1], method="highs")
    if res.status != 0 or -res.fun <= _TOL * max(1, int(extreme.sum())) ** 0.5:
        return []
    d = res.x
    return [name for name, dj in zip(design.fixed_names, d, strict=True) if abs(dj) > 1e-6]


def _extreme_sign(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """+1 where y is at its upper extreme, −1 at its lower one, 0 inside; and which rows carry
    information at all (a binomial row with no trials does not)."""
    y = design.y
    if design.family.response == "count":
        return np.where(y == 0, -1.0, 0.0), np.ones(y.size, bool)
    m = design.trials if design.trials is not None else np.ones_like(y)
    return np.where(y <= 0, -1.0, np.where(y >= m, 1.0, 0.0)), m > 0
