"""Optimise the Laplace deviance as lme4's glmer does (nAGQ = 1), and the Hessian for the vcov.

Stage 1 minimises over θ alone with β at the joint conditional mode of (β, u) (lme4's nAGQ = 0
fit); its (θ, β) start stage 2, which minimises over (θ, β) together. Both use L-BFGS-B with
central-difference gradients (laplace.fd_gradient): PIRLS is converged far enough that the
deviance is smooth to ~1e-11, so these gradients are accurate to ~1e-6 and the quasi-Newton
steps converge in far fewer evaluations than lme4's derivative-free bobyqa / Nelder-Mead.

The fixed effects' covariance is lme4's default for glmer: twice the inverse of the Hessian of
the deviance in (θ, β), its β block (this accounts for the uncertainty of θ, which the RX-based
(XᵀWX − RZXᵀRZX)⁻¹ ignores). The Hessian is by central second differences, as lme4's deriv12;
a θ at (or within a step of) its 0 bound is held fixed there. The step is relative to |x| for the
exact deviance and lme4's absolute 1e-4 for the lme4-compatible one (`relative_hessian_step`).
With laplace="lme4" both stages run unchanged on laplace.Lme4LaplaceDeviance (no analytic
gradient: central differences), whose stage 1 supplies glmer's lp0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve
from scipy.optimize import minimize

from .laplace import LaplaceDeviance, fd_gradient
from .optimize import MAX_RESTARTS, off_the_edge

# Projected gradient (deviance units per unit of θ or β) below which a stop counts as converged.
GRADIENT_TOL = 1e-3
HESSIAN_STEP = 1e-4  # lme4's deriv12 step
FORWARD_STEP = 1e-7  # relative step of stage 1's forward differences (no analytic gradient)


@dataclass(frozen=True)
class GlmmOptimResult:
    par: np.ndarray  # (θ, β) at the optimum
    n_theta: int
    criterion: float
    converged: bool
    message: str
    n_evaluations: int
    gradient: np.ndarray  # projected gradient at par
    stage1: np.ndarray  # (θ, β) after stage 1

    @property
    def theta(self) -> np.ndarray:
        return self.par[:self.n_theta]

    @property
    def beta(self) -> np.ndarray:
        return self.par[self.n_theta:]


def optimize_laplace(dev: LaplaceDeviance, start=None, maxiter: int = 1000) -> GlmmOptimResult:
    par1 = stage_one(dev, start, maxiter)
    par, res, f = _minimize(dev, par1, dev.lower_bounds, maxiter,
                            dev.value_and_gradient if dev.has_gradient else None, 1e3,
                            np.concatenate([dev.thetas.is_diagonal, np.zeros(dev.p, bool)]))
    pg = projected_gradient(dev, par)
    return GlmmOptimResult(par, dev.n_theta, f, is_converged(res, pg), str(res.message),
                           dev.n_evaluations, pg, par1)


def stage_one(dev: LaplaceDeviance, start=None, maxiter: int = 1000) -> np.ndarray:
    """(θ, β) after the θ-only stage (β at the joint mode): the start of stage 2. It only
    supplies a start, so it stops early (relative change 2e-11)."""
    theta0 = dev.thetas.start if start is None else np.asarray(start, float)
    theta1, _, _ = _minimize(dev.profiled, theta0, dev.thetas.lower_bounds, maxiter,
                             dev.profiled_value_and_gradient if dev.has_gradient else None, 1e5,
                             dev.thetas.is_diagonal)
    return np.concatenate([theta1, dev.profiled_state(theta1).beta])


def is_converged(res, projected: np.ndarray) -> bool:
    """scipy's own verdict, or failing that a small projected gradient; never on maxiter."""
    small = bool(np.max(np.abs(projected), initial=0.0) < GRADIENT_TOL)
    return (bool(res.success) or small) and res.status != 1


def _minimize(f, x0: np.ndarray, lower: np.ndarray, maxiter: int, value_and_gradient,
              factr: float, diagonal: np.ndarray, upper: np.ndarray | None = None):
    """L-BFGS-B from x0, restarted off the 0 bound of a relative SD when that lowers f (see
    optimize.off_the_edge); the best point, the last result and its value."""
    x, res, fx = _lbfgsb(f, x0, lower, maxiter, value_and_gradient, factr, upper)
    for _ in range(MAX_RESTARTS):
        inside = off_the_edge(f, x, fx, diagonal)
        if inside is None:
            break
        x, res, fx = _lbfgsb(f, inside, lower, maxiter, value_and_gradient, factr, upper)
    return x, res, fx


def _lbfgsb(f, x0: np.ndarray, lower: np.ndarray, maxiter: int, value_and_gradient,
            factr: float, upper: np.ndarray | None = None):
    """L-BFGS-B from x0 (analytic gradients when given, else central differences); the best
    point seen is returned. `factr`: scipy's relative-change tolerance in units of ε."""
    best = {"x": np.array(x0, float), "f": np.inf}

    def track(x, value):
        if value < best["f"]:
            best["x"], best["f"] = np.array(x, float), value
        return value

    if value_and_gradient is not None:
        def fun(x):
            value, grad = value_and_gradient(x)
            return track(x, value), grad
    elif factr > 1e3:  # a stage that only supplies a start: forward differences
        def fun(x):
            value = track(x, f(x))
            return value, fd_gradient(lambda y: track(y, f(y)), np.asarray(x, float), lower,
                                      FORWARD_STEP, value)
    else:
        def fun(x):
            value = track(x, f(x))
            return value, fd_gradient(lambda y: track(y, f(y)), np.asarray(x, float), lower)
    upper = np.full(len(lower), np.inf) if upper is None else upper
    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(lower, upper, strict=True)]
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxiter, "ftol": factr * np.finfo(float).eps,
                            "gtol": 1e-7})
    return best["x"], res, best["f"]


def projected_gradient(dev: LaplaceDeviance, par: np.ndarray) -> np.ndarray:
    """The gradient with components pushing a θ diagonal at its 0 bound outwards set to 0."""
    g = dev.gradient(par)
    at_bound = np.isfinite(dev.lower_bounds) & (par <= dev.lower_bounds)
    return np.where(at_bound & (g > 0), 0.0, g)


def hessian(dev: LaplaceDeviance, x: np.ndarray, free: np.ndarray,
            step: float = HESSIAN_STEP) -> np.ndarray:
    """The deviance's Hessian over the coordinates `free` (a boolean mask): central differences
    of the analytic gradient when there is one (2·m evaluations), else central second
    differences of the deviance (2·m² evaluations, lme4's deriv12)."""
    idx = np.flatnonzero(free)
    scale = np.abs(x[idx]) if dev.relative_hessian_step else np.zeros(idx.size)
    h = step * np.maximum(1.0, scale)
    if dev.has_gradient:
        rows = []
        for k, j in enumerate(idx):
            up, down = x.copy(), x.copy()
            up[j] += h[k]
            down[j] -= h[k]
            rows.append((dev.gradient(up)[idx] - dev.gradient(down)[idx]) / (2 * h[k]))
        H = np.array(rows)
        return 0.5 * (H + H.T)
    return _second_differences(dev, x, idx, h)


def _second_differences(f, x: np.ndarray, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    m = idx.size
    f0 = f(x)
    H = np.empty((m, m))

    def at(*moves):
        y = x.copy()
        for k, sign in moves:
            y[idx[k]] += sign * h[k]
        return f(y)

    for a in range(m):
        H[a, a] = (at((a, 1)) - 2 * f0 + at((a, -1))) / h[a] ** 2
        for b in range(a):
            H[a, b] = H[b, a] = (at((a, 1), (b, 1)) - at((a, 1), (b, -1))
                                 - at((a, -1), (b, 1)) + at((a, -1), (b, -1))) / (4 * h[a] * h[b])
    return H


def hessian_vcov(dev: LaplaceDeviance, par: np.ndarray) -> np.ndarray | None:
    """lme4's glmer vcov: the β block of 2·H⁻¹, H the deviance's Hessian in (θ, β); None when
    H is not positive definite (the caller falls back on the RX-based covariance)."""
    n_theta = dev.n_theta
    theta = par[:n_theta]
    scale = np.abs(theta) if dev.relative_hessian_step else np.zeros(n_theta)
    step = HESSIAN_STEP * np.maximum(1.0, scale)
    free_theta = ~(dev.thetas.is_diagonal & (theta <= 2 * step))
    free = np.concatenate([free_theta, np.ones(dev.p, bool)])
    H = hessian(dev, par, free)
    try:
        chol = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    inv = cho_solve((chol, True), np.eye(H.shape[0]))
    k = int(free_theta.sum())
    return 2.0 * inv[k:, k:]
