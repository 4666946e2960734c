"""Optimise the Laplace deviance as lme4's glmer does (nAGQ = 1), and the Hessian for the vcov.

Stage 1 minimises over θ alone with β at the joint conditional mode of (β, u) (lme4's nAGQ = 0
fit); its (θ, β) start stage 2, which minimises over (θ, β) together. Both use L-BFGS-B with
central-difference gradients (optimize.fd_gradient): PIRLS is converged far enough that the
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

import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from .laplace import LaplaceDeviance
from .optimize import Objective, OptimResult, is_converged, minimize_bounded, projected

HESSIAN_STEP = 1e-4  # lme4's deriv12 step
STAGE1_FTOL = 1e5 * np.finfo(float).eps  # stage 1 only supplies a start: relative change 2e-11
STAGE2_FTOL = 1e3 * np.finfo(float).eps


def optimize_laplace(dev: LaplaceDeviance, start=None, maxiter: int = 1000) -> OptimResult:
    par1 = stage_one(dev, start, maxiter)
    white = Whitened(dev, par1)
    obj = Objective(white, dev.lower_bounds, par_diagonal(dev), ftol=STAGE2_FTOL, gtol=1e-7,
                    value_and_gradient=white.value_and_gradient if dev.has_gradient else None,
                    thetas=dev.thetas)
    x, f, res = minimize_bounded(obj, white.start, maxiter)
    par = white.par(x)
    pg = projected(dev.gradient(par), par, dev.lower_bounds)
    return OptimResult(par, dev.n_theta, f, is_converged(res, pg), str(res.message),
                       dev.n_evaluations, int(res.nit), pg, stage1=par1)


class Whitened:
    """The deviance over (θ, γ), β = β₁ + RX⁻ᵀγ: β₁ and RX (RX·RXᵀ = XᵀWX − RZXᵀRZX, half the
    deviance's curvature in β) from stage 1's end. Near the optimum the deviance rises by about
    |γ − γ̂|² in every β direction, whatever the covariates' scales: L-BFGS-B's first steps are
    then of the right length. In β itself a covariate in the hundreds (grouseticks' HEIGHT)
    makes the first step ~40× too long in β and the next ones crawl."""

    def __init__(self, dev: LaplaceDeviance, par1: np.ndarray):
        self.dev, self.k = dev, dev.n_theta
        self.beta1 = par1[self.k:].copy()
        state = dev.profiled_state(par1[:self.k])
        self.RX = state.RX if np.isfinite(state.criterion) and dev.p else np.eye(dev.p)
        self.start = np.concatenate([par1[:self.k], np.zeros(dev.p)])

    def par(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        step = solve_triangular(self.RX, x[self.k:], lower=True, trans="T", check_finite=False)
        return np.concatenate([x[:self.k], self.beta1 + step])

    def __call__(self, x) -> float:
        return self.dev(self.par(x))

    def value_and_gradient(self, x) -> tuple[float, np.ndarray]:
        value, g = self.dev.value_and_gradient(self.par(x))
        g_gamma = solve_triangular(self.RX, g[self.k:], lower=True, check_finite=False)
        return value, np.concatenate([g[:self.k], g_gamma])


def par_diagonal(dev: LaplaceDeviance) -> np.ndarray:
    """Which coordinates of (θ, β) are relative SDs (restarted off their 0 bound)."""
    return np.concatenate([dev.thetas.is_diagonal, np.zeros(dev.p, bool)])


def stage_one(dev: LaplaceDeviance, start=None, maxiter: int = 1000) -> np.ndarray:
    """(θ, β) after the θ-only stage (β at the joint mode): the start of stage 2. It only
    supplies a start, so it stops early (relative change 2e-11) and, without an analytic
    gradient, uses forward differences."""
    theta0 = dev.thetas.start if start is None else np.asarray(start, float)
    obj = Objective(dev.profiled, dev.thetas.lower_bounds, dev.thetas.is_diagonal,
                    ftol=STAGE1_FTOL, gtol=1e-7, differences="forward",
                    value_and_gradient=dev.profiled_value_and_gradient if dev.has_gradient
                    else None, thetas=dev.thetas)
    theta1, _, _ = minimize_bounded(obj, theta0, maxiter)
    return np.concatenate([theta1, dev.profiled_state(theta1).beta])


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
