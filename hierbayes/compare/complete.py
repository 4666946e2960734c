"""Complete pooling: the model with its group-level terms dropped, fitted by maximum likelihood.

Gelman & Hill's three estimates of a group's coefficient are no pooling (each group on its own:
`hierbayes.compare.nopool`), partial pooling (the mixed model) and complete pooling (one
regression that ignores the groups: every group gets the same value). The last is the fixed part
of the formula fitted alone: least squares for a Gaussian identity-link model (weighted by 1/s_i²
with known residual SDs), otherwise Fisher scoring on the GLM with the family's working weights
and scores under the model's link (`hierbayes.families`), the negative binomial's α given.
A GLM with no finite maximum (complete separation) gets NaN.
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from ..families import FAMILIES

_MAX_ITER = 100


def complete_pooling(design: Design, link: str | None = None,
                     alpha: float | None = None) -> np.ndarray:
    """(p,) coefficients of the fixed part of `design` fitted without group effects."""
    X, y = design.X, design.y
    if X.shape[1] == 0:
        return np.zeros(0)
    family = design.family
    if family.response == "real" and family.link(link).name == "identity":
        known = design.known_sigma
        w = np.ones(design.n_obs) if known is None else 1.0 / known**2
        sw = np.sqrt(w)
        return np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
    if family.name == "negative_binomial" and alpha is None:
        family = FAMILIES["poisson"]  # the α → ∞ limit, as the no-pooling fits
    return _scoring(design, family, family.link(link), alpha)


def _scoring(design: Design, family, link, alpha) -> np.ndarray:
    X = design.X
    kwargs = {"trials": design.trials, "alpha": alpha}
    beta = np.zeros(X.shape[1])
    for _ in range(_MAX_ITER):
        eta = X @ beta
        w = family.working_weight(eta, link, **kwargs)
        score = family.score(design.y, eta, link, **kwargs)
        try:
            step = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ score)
        except np.linalg.LinAlgError:
            return np.full(X.shape[1], np.nan)
        beta = beta + np.clip(step, -5, 5)  # damped: a separated fit drifts and is caught below
        if np.max(np.abs(step)) < 1e-10 * (1 + np.max(np.abs(beta))):
            return beta
    return np.full(X.shape[1], np.nan)  # no finite maximum
