"""Minimise the profiled criterion over θ with bounds (lme4's `optimizeLmer` stage).

L-BFGS-B from lme4's start (1 on diagonals, 0 off). With an analytic gradient (one grouping
factor) it converges in a few dozen evaluations; otherwise scipy's finite differences supply it.
Diagonals of θ are bounded at exactly 0, and L-BFGS-B projects onto the bound, so a variance at 0
comes back as exactly 0. Convergence is judged honestly: scipy's own criterion, or failing that a
small projected gradient at the returned point; the best point seen is always returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import approx_fprime, minimize

from .deviance import Deviance

# A projected gradient below this (in criterion units per unit of θ) counts as converged when
# L-BFGS-B stops on its line search (lme4 uses 2e-3 on its scaled gradient).
GRADIENT_TOL = 1e-3


@dataclass(frozen=True)
class OptimResult:
    theta: np.ndarray
    criterion: float
    converged: bool
    message: str
    n_evaluations: int
    n_iterations: int
    gradient: np.ndarray  # projected gradient at theta


def optimize_theta(dev: Deviance, start=None, maxiter: int = 1000) -> OptimResult:
    start = dev.thetas.start if start is None else np.asarray(start, float)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in dev.thetas.lower_bounds]
    best = {"theta": start, "f": np.inf}

    def track(theta, f):
        if f < best["f"]:
            best["theta"], best["f"] = np.array(theta, float), f

    if dev.has_gradient:
        def fun(theta):
            f, g = dev.value_and_gradient(theta)
            track(theta, f)
            return f, g
        res = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-7})
    else:
        def fun(theta):
            f = dev(theta)
            track(theta, f)
            return f
        res = minimize(fun, start, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-6})
    theta = best["theta"]
    pg = projected_gradient(dev, theta)
    converged = bool(res.success) or bool(np.max(np.abs(pg), initial=0.0) < GRADIENT_TOL)
    return OptimResult(theta, best["f"], converged and res.status != 1, str(res.message),
                       dev.n_evaluations, int(res.nit), pg)


def projected_gradient(dev: Deviance, theta: np.ndarray) -> np.ndarray:
    """The gradient with components that push a diagonal at its 0 bound outwards set to 0."""
    g = dev.gradient(theta)
    if g is None:
        g = _fd_gradient(dev, theta)
    at_bound = dev.thetas.is_diagonal & (theta <= 0.0)
    return np.where(at_bound & (g > 0), 0.0, g)


def _fd_gradient(dev: Deviance, theta: np.ndarray) -> np.ndarray:
    """Forward differences, stepping inwards from a bound."""
    h = 1e-6 * np.maximum(1.0, np.abs(theta))
    return approx_fprime(theta, dev, h)
