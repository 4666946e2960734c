"""The one optimiser of the REML engine, and lme4's `optimizeLmer` stage built on it.

`minimize_bounded` is L-BFGS-B with bounds, restarted off the 0 bound of a relative SD when
stepping inside lowers the criterion (lme4's restart_edge, see `off_the_edge`), and it returns
the best point it evaluated. Where the objective knows its θ layout (`Objective.thetas`: the LMM
θ optimisation, both GLMM stages, the negative binomial's joint search) the steps inside are
built on the block covariance, not on one θ at a time (boundary.py): at a correlated block's
zero diagonal the Cholesky parameterisation hides the ways down, and L-BFGS-B stopped there
"converged", up to 3 units of criterion above lme4's optimum. A point with no SD at its bound
costs nothing more. It serves the LMM θ optimisation (`optimize_theta`), both stages of the
GLMM fit (glmm_optimize), the negative binomial's joint search (negbin) and the nuisance fits of
profile intervals (profile). Every one of them reports an `OptimResult`.

Convergence is judged honestly: scipy's own criterion, or failing that a small projected
gradient at the returned point; never when the iteration limit was hit.

LMMs: Newton steps on log θ with the average-information Hessian (newton.py, ai.py) from lme4's
start (1 on diagonals, 0 off), with the analytic gradient (one grouping factor, or scalar blocks
only) or else central differences; L-BFGS-B takes over near a bound. Diagonals of θ are bounded at
exactly 0, and a variance estimated at 0 comes back as exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import approx_fprime, minimize

from .boundary import edge_points
from .newton import applies as newton_applies
from .newton import log_newton
from .theta import ThetaLayout

# A projected gradient below this (criterion units per unit of the parameter) counts as
# converged when L-BFGS-B stops on its line search (lme4 uses 2e-3 on its scaled gradient).
GRADIENT_TOL = 1e-3
EDGE_STEPS = (1e-2, 1e-1)  # relative SDs tried at a 0 bound without a θ layout (profiles)
MAX_RESTARTS = 3
SNAP = 1e-8  # a relative SD below this is tried at exactly 0 (onto_the_edge)
FD_STEP = 1e-5  # relative step of central differences (smooth criteria: ~1e-10 accurate)
FORWARD_STEP = 1e-7  # relative step of forward differences (a stage that only gives a start)
DIFFERENCES = ("scipy", "central", "forward")


@dataclass(frozen=True)
class OptimResult:
    """An optimum: `par` is θ for an LMM, (θ, β) for a GLMM (θ first, `n_theta` values)."""

    par: np.ndarray
    n_theta: int
    criterion: float
    converged: bool
    message: str
    n_evaluations: int
    n_iterations: int
    gradient: np.ndarray  # projected gradient at par
    stage1: np.ndarray | None = None  # GLMMs: (θ, β) after the θ-only stage
    dispersion: float | None = None  # the negative binomial's α̂, else None

    @property
    def theta(self) -> np.ndarray:
        return self.par[:self.n_theta]

    @property
    def beta(self) -> np.ndarray:
        """β of a GLMM optimum (empty for an LMM, whose β is profiled out)."""
        return self.par[self.n_theta:]


@dataclass(frozen=True)
class Objective:
    """What `minimize_bounded` minimises.

    `f` is the criterion; `value_and_gradient` its analytic gradient, else `differences` says how
    to get one: "scipy" (scipy's own forward differences), "central" or "forward" (`fd_gradient`).
    `diagonal` marks the coordinates that are relative SDs (restarted off their 0 bound). With
    `thetas`, the first `thetas.n_theta` coordinates are θ in that layout, and the steps inside
    move each block's covariance (boundary.py); without, each SD alone.
    `ftol` and `gtol` are scipy's L-BFGS-B tolerances. With `hessian` (an approximate Hessian,
    next to `value_and_gradient`, for θ alone) Newton steps on log θ run first (newton.py), and
    L-BFGS-B only takes over where they stop short.
    """

    f: Callable[[np.ndarray], float]
    lower: np.ndarray
    diagonal: np.ndarray
    ftol: float
    gtol: float
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None
    differences: str = "central"
    upper: np.ndarray | None = None
    hessian: Callable[[np.ndarray], np.ndarray] | None = None
    thetas: ThetaLayout | None = None


def minimize_bounded(obj: Objective, x0, maxiter: int):
    """(best x, its value, scipy's result of the last run): L-BFGS-B from x0, restarted off the
    0 bound of a relative SD while that lowers the criterion (at most MAX_RESTARTS times).
    Relative SDs a hair above 0 are put on it first (`onto_the_edge`), so that the steps inside
    start from the bound itself."""
    x, fx, res = _run(obj, np.asarray(x0, float), maxiter)
    for _ in range(MAX_RESTARTS):
        x, fx = onto_the_edge(obj, x, fx)
        inside = off_the_edge(obj.f, x, fx, obj.diagonal, obj.thetas)
        if inside is None:
            break
        x, fx, res = _run(obj, inside, maxiter)
    return (*onto_the_edge(obj, x, fx), res)


def onto_the_edge(obj: Objective, x: np.ndarray, fx: float) -> tuple[np.ndarray, float]:
    """x with its relative SDs below SNAP set to exactly 0 when that does not raise f beyond
    rounding. L-BFGS-B (and Newton steps on log θ) can stop a hair above the bound, the
    criterion's slope vanishing there (it is even in a scalar block's θ): a variance estimated
    at 0 should read 0, as lme4 reports it."""
    tiny = obj.diagonal & (x > 0) & (x < SNAP)
    if not tiny.any():
        return x, fx
    zeroed = np.where(tiny, 0.0, x)
    f0 = obj.f(zeroed)
    return (zeroed, f0) if f0 <= fx + 1e-12 * (1.0 + abs(fx)) else (x, fx)


def _run(obj: Objective, x0: np.ndarray, maxiter: int):
    """Newton steps when there is a Hessian (handing over to L-BFGS-B where they give up),
    else L-BFGS-B."""
    if not newton_applies(obj):
        return _lbfgsb(obj, x0, maxiter)
    x, fx, res = log_newton(obj, x0, maxiter)
    if res.status == 2:
        y, fy, res = _lbfgsb(obj, x, maxiter)
        if fy <= fx:
            x, fx = y, fy
    return x, fx, res


def off_the_edge(f, x: np.ndarray, fx: float, diagonal: np.ndarray,
                 thetas: ThetaLayout | None = None) -> np.ndarray | None:
    """The point with the lowest f among those stepped inside where a relative SD sits at its
    0 bound, when it is lower than fx; else None (lme4's restart_edge). The criterion is even in
    a scalar block's θ, so its gradient there is exactly 0: L-BFGS-B, whose first step often
    lands on the bound, stays there even when the bound is a maximum along θ (measured: 22 of 40
    small simulated random-intercept fits, 0.2 to 3 units of criterion above the optimum). So
    step inside and compare; with `thetas`, along the directions of boundary.py, where a
    correlated block's covariance can fall although no single θ falls at first order. The
    lowest, not the first, lower point: from a tilt that lowers f a little a restart can end in
    a worse local optimum than from another direction that lowers it more (a Poisson
    (x | g) + (1 | h) fit, 0.34 above mixedlm's)."""
    best, f_best = None, fx - 1e-10 * (1.0 + abs(fx))
    for y in _edge_candidates(x, diagonal, thetas):
        fy = f(y)
        if fy < f_best:
            best, f_best = y, fy
    return best


def _edge_candidates(x: np.ndarray, diagonal: np.ndarray, thetas: ThetaLayout | None):
    if thetas is not None:
        yield from edge_points(x, thetas)
        return
    for j in np.flatnonzero(diagonal & (x <= 0.0)):
        for step in EDGE_STEPS:
            y = np.array(x, float)
            y[j] = step
            yield y


def _lbfgsb(obj: Objective, x0: np.ndarray, maxiter: int):
    best = {"x": np.array(x0, float), "f": np.inf}

    def track(x, value):
        if value < best["f"]:
            best["x"], best["f"] = np.array(x, float), value
        return value

    def tracked(y):
        return track(y, obj.f(y))

    jac = True
    if obj.value_and_gradient is not None:
        def fun(x):
            value, grad = obj.value_and_gradient(x)
            return track(x, value), grad
    elif obj.differences == "scipy":
        fun, jac = tracked, None
    else:
        forward = obj.differences == "forward"

        def fun(x):
            x = np.asarray(x, float)
            value = tracked(x)
            if not np.isfinite(value):  # a failed evaluation: L-BFGS-B backs off on the value
                return value, np.zeros(x.size)
            if forward:
                return value, fd_gradient(tracked, x, obj.lower, FORWARD_STEP, value)
            return value, fd_gradient(tracked, x, obj.lower)
    upper = np.full(len(obj.lower), np.inf) if obj.upper is None else obj.upper
    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(obj.lower, upper, strict=True)]
    res = minimize(fun, x0, jac=jac, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxiter, "ftol": obj.ftol, "gtol": obj.gtol})
    return best["x"], best["f"], res


def projected(gradient: np.ndarray, x: np.ndarray, lower: np.ndarray,
              upper: np.ndarray | None = None) -> np.ndarray:
    """The gradient with the components that push x out through a bound it sits on set to 0."""
    out = (x <= lower) & (gradient > 0)
    if upper is not None:
        out |= (x >= upper) & (gradient < 0)
    return np.where(out, 0.0, gradient)


def is_converged(res, projected_gradient: np.ndarray) -> bool:
    """scipy's own verdict, or failing that a small projected gradient; never on maxiter."""
    small = bool(np.max(np.abs(projected_gradient), initial=0.0) < GRADIENT_TOL)
    return (bool(res.success) or small) and res.status != 1


def fd_gradient(f, x: np.ndarray, lower: np.ndarray, step: float = FD_STEP,
                f0: float | None = None) -> np.ndarray:
    """Central differences; one-sided (inwards) where x is within a step of its lower bound.
    With `step` below 1e-6 and f0 = f(x) given: forward differences (half the evaluations, for
    a stage whose optimum need not be exact)."""
    h = step * np.maximum(1.0, np.abs(x))
    out = np.empty_like(x)
    if f0 is not None and step < 1e-6:
        for j in range(x.size):
            up = x.copy()
            up[j] += h[j]
            out[j] = (f(up) - f0) / h[j]
        return out
    for j in range(x.size):
        up, down = x.copy(), x.copy()
        up[j] += h[j]
        down[j] -= h[j]
        if down[j] >= lower[j]:
            out[j] = (f(up) - f(down)) / (2 * h[j])
            continue
        if f0 is None:
            f0 = f(x)
        up2 = x.copy()
        up2[j] += 2 * h[j]
        # Second-order one-sided difference: as accurate as the central one.
        out[j] = (-3 * f0 + 4 * f(up) - f(up2)) / (2 * h[j])
    return out


def optimize_theta(dev, start=None, maxiter: int = 1000) -> OptimResult:
    """Minimise an LMM's profiled criterion (deviance.Deviance) over θ from lme4's start."""
    start = dev.thetas.start if start is None else np.asarray(start, float)
    exact = dev.has_gradient
    lower = dev.thetas.lower_bounds

    def differenced(theta):  # central differences, for Newton steps without an analytic one
        return dev(theta), fd_gradient(dev, np.asarray(theta, float), lower)

    obj = Objective(dev, lower, dev.thetas.is_diagonal,
                    ftol=1e-14 if exact else 1e-13, gtol=1e-7 if exact else 1e-6,
                    value_and_gradient=dev.value_and_gradient if exact else differenced,
                    hessian=dev.ai_hessian, thetas=dev.thetas)
    theta, f, res = minimize_bounded(obj, start, maxiter)
    pg = projected(_theta_gradient(dev, theta), theta, dev.thetas.lower_bounds)
    return OptimResult(theta, theta.size, f, is_converged(res, pg), str(res.message),
                       dev.n_evaluations, int(res.nit), pg)


def _theta_gradient(dev, theta: np.ndarray) -> np.ndarray:
    """Analytic where the backend has it, else forward differences stepping inwards from 0."""
    g = dev.gradient(theta)
    if g is None:
        g = approx_fprime(theta, dev, 1e-6 * np.maximum(1.0, np.abs(theta)))
    return g
