"""Newton steps with an approximate Hessian, for the LMM θ optimisation.

L-BFGS-B learns the curvature from its own steps, which is slow when the parameters' curvatures
differ by orders of magnitude: the real InstEval model's three relative SDs take it 25
evaluations (a random effect with 2,972 levels is ~100× more sharply determined than one with
28). The average-information matrix (ai.py) gives that curvature for a few solves, and Newton
steps with it take 8.

The steps are taken in x = log θ for the relative SDs (θ's diagonal) and x = θ for the
off-diagonal entries. On the log scale the profiled criterion is far closer to quadratic (a
variance's information is about its number of levels on that scale, whatever its size) and the
bound θ >= 0 is never crossed. The Hessian in x is J·H·J, J = ∂θ/∂x (the term g·∂²θ/∂x², zero at
the optimum, is left out: J·H·J stays positive semi-definite). Far from the optimum the AI
curvature can be much too small along a nearly linear direction (InstEval's smallest SD at
lme4's start), so a step moving any x by more than MAX_STEP is shortened to it; the step is then
halved until it lowers the criterion enough (Armijo).

A relative SD heading for 0 (a singular fit) makes log θ run off: below SMALL, after
MAX_SHRINKING steps in a row shortened because it shrinks, or when at convergence the Newton step
in θ itself would take it through 0, the Newton phase stops and L-BFGS-B, which
puts such an SD exactly on its bound, takes over from the best point (optimize.minimize_bounded);
so it does where a Newton step is no descent direction, where the line search fails or has to
shorten the step ten-fold, after MAX_NEWTON steps, and from a start with a relative SD at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARMIJO = 1e-4
MAX_HALVINGS = 30
# A step that had to be halved below this, or more Newton steps than MAX_NEWTON, means the
# quadratic model is poor here (a ridge: a correlated block whose intercept SD goes to 0):
# L-BFGS-B takes over.
SHORT_STEP = 0.1
MAX_NEWTON = 40
# This many steps in a row shortened to MAX_STEP because a relative SD would shrink most: that
# SD is heading for 0 (a factor e⁻⁶ ≈ 1/400 already), where L-BFGS-B puts it exactly.
MAX_SHRINKING = 3
MAX_STEP = 2.0  # largest change of any x in one step (log θ: a factor e² ≈ 7.4)
SMALL = 1e-5  # a relative SD below this hands over to L-BFGS-B (lme4's singular rule: 1e-4)
# Converged when the Newton decrement gᵀH⁻¹g (about twice the criterion still to gain) is below
# this fraction of 1 + |f|.
DECREMENT_TOL = 1e-14


@dataclass(frozen=True)
class NewtonResult:
    """What optimize.minimize_bounded reads from scipy's result: success, status, message, nit."""

    success: bool
    status: int  # 0 converged, 1 iteration limit, 2 handed over (to L-BFGS-B)
    message: str
    nit: int


def applies(obj) -> bool:
    """An objective whose only bounds are θ's diagonal at 0, with a gradient and a Hessian."""
    free = np.where(obj.diagonal, 0.0, -np.inf)
    return (obj.hessian is not None and obj.value_and_gradient is not None
            and np.array_equal(obj.lower, free)
            and (obj.upper is None or np.all(np.isinf(obj.upper))))


def log_newton(obj, theta0: np.ndarray, maxiter: int):
    """(θ, f(θ), NewtonResult) from θ0 (see the module docstring)."""
    log = np.asarray(obj.diagonal, bool)
    theta = np.asarray(theta0, float).copy()
    if np.any(theta[log] <= 0):
        return theta, obj.f(theta), NewtonResult(False, 2, "a relative SD at 0", 0)
    f, g = obj.value_and_gradient(theta)
    shrinking = 0  # consecutive steps shortened because a relative SD would shrink most
    for it in range(1, min(maxiter, MAX_NEWTON) + 1):
        if not np.isfinite(f):
            return theta, f, NewtonResult(False, 2, "criterion not finite", it - 1)
        J = np.where(log, theta, 1.0)
        H = obj.hessian(theta)
        d, capped = _direction(H, J, g * J)
        if d is None:
            return theta, f, NewtonResult(False, 2, "no Newton direction", it - 1)
        shrinking = shrinking + 1 if capped and _shrinks_most(d, log) else 0
        if shrinking >= MAX_SHRINKING:
            return theta, f, NewtonResult(False, 2, "a relative SD heading for 0", it - 1)
        if -float((g * J) @ d) <= DECREMENT_TOL * (1.0 + abs(f)):
            if _bound_ahead(H, g, theta, log):
                return theta, f, NewtonResult(False, 2, "optimum on a bound", it - 1)
            return theta, f, NewtonResult(True, 0, "Newton decrement below tolerance", it - 1)
        step = _line_search(obj, theta, f, g * J, d, log)
        if step is None:
            return theta, f, NewtonResult(False, 2, "line search failed", it - 1)
        theta, f, g, t = step
        if np.any(theta[log] < SMALL):
            theta, f = _snap_to_zero(obj, theta, f, log)
            return theta, f, NewtonResult(False, 2, "a relative SD near 0", it)
        if t < SHORT_STEP:
            return theta, f, NewtonResult(False, 2, "Newton steps much too long", it)
    if maxiter > MAX_NEWTON:
        return theta, f, NewtonResult(False, 2, "Newton steps slow", MAX_NEWTON)
    return theta, f, NewtonResult(False, 1, "iteration limit reached", maxiter)


def _direction(H: np.ndarray, J: np.ndarray, gx: np.ndarray):
    """(−(JHJ)⁻¹gx shortened to MAX_STEP, whether it was); (None, False) when JHJ is not
    positive definite."""
    Hx = np.asarray(H, float) * np.outer(J, J)
    if not np.all(np.isfinite(Hx)):
        return None, False
    try:
        chol = np.linalg.cholesky(Hx)
    except np.linalg.LinAlgError:
        return None, False
    d = -np.linalg.solve(chol.T, np.linalg.solve(chol, gx))
    largest = float(np.max(np.abs(d), initial=0.0))
    return (d * (MAX_STEP / largest), True) if largest > MAX_STEP else (d, False)


def _snap_to_zero(obj, theta: np.ndarray, f: float, log: np.ndarray):
    """θ with its relative SDs below SMALL set to exactly 0 when that does not raise f (beyond
    rounding): L-BFGS-B would not move them there itself, the gradient being ~0 so close."""
    zeroed = np.where(log & (theta < SMALL), 0.0, theta)
    f0 = obj.f(zeroed)
    return (zeroed, f0) if f0 <= f + 1e-12 * (1.0 + abs(f)) else (theta, f)


def _shrinks_most(d: np.ndarray, log: np.ndarray) -> bool:
    """Whether the largest move of the step is a relative SD shrinking."""
    k = int(np.argmax(np.abs(d)))
    return bool(log[k] and d[k] < 0)


def _bound_ahead(H: np.ndarray, g: np.ndarray, theta: np.ndarray, log: np.ndarray) -> bool:
    """Whether the Newton step in θ itself would take a relative SD through 0. On the log scale
    a criterion that is lowest at θ_j = 0 flattens out as θ_j shrinks (it is ~ c·θ_j² there), so
    the decrement can fall below tolerance with θ_j small but not 0."""
    try:
        d = -np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return True
    return bool(np.any(theta[log] + d[log] <= 0))


def _line_search(obj, theta, f, gx, d, log):
    """The first of t = 1, 1/2, 1/4, ... whose point lowers f by Armijo's rule."""
    t = 1.0
    for _ in range(MAX_HALVINGS):
        new = np.where(log, theta * np.exp(t * d), theta + t * d)
        fy, gy = obj.value_and_gradient(new)
        if np.isfinite(fy) and fy <= f + ARMIJO * t * float(gx @ d):
            return new, fy, gy, t
        t *= 0.5
    return None
