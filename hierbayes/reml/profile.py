"""Profile-likelihood intervals and Hessian standard errors of the variance components.

As lme4's `confint(fit, method = "profile")`: for each SD, correlation and the residual SD, the
interval is the set of values v where the profiled criterion, minimised over every other
parameter with the component held at v, rises above its minimum by less than the χ²₁ quantile of
`ci_prob` (3.841459 for 95 %). The criterion is the one the fit minimised (sdcor_criterion):
the REML criterion for REML fits, the deviance for ML fits, the Laplace deviance for GLMMs.
lme4 differs for REML fits: its profile refits by ML and profiles the ML deviance, so its
intervals surround the ML estimates; here they surround the REML estimates the table reports.

Each limit is found by stepping out from the estimate on the SD / correlation / log σ scale
until ζ(v) = sign(v − v̂)·√(rise) passes ±z (z the normal quantile), then by Brent's method on
ζ, re-optimising the other parameters at each value (the engine's one L-BFGS-B driver,
optimize), started from the straight-line extrapolation of the two nearest values already
profiled, on coordinates scaled by the criterion's curvature. An SD whose profile never rises
that far above 0 gets the lower limit 0 (a singular fit's SD at 0 has lower limit 0); a
correlation, ±1. A correlation whose SDs include one at exactly 0 is not identified: its limits
are NaN.

Limits are computed once per `ci_prob` and kept on the fit (`RemlFit.varcorr` may be called
freely); the cost is a few hundred evaluations of the criterion (sleepstudy: ~200).

`std_error` is the delta-method / Hessian SE on the reported (SD, correlation) scale: the
square roots of the diagonal of J·2H⁻¹·Jᵀ, H the criterion's Hessian in φ at the optimum (GLMMs:
jointly with β) and J the derivative of the reported values. Components at a bound (an SD at 0, a
correlation at ±1, or a correlation involving such an SD) get NaN: the quadratic approximation
behind an SE does not hold there. All SEs are NaN when H is not positive definite.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve
from scipy.optimize import brentq
from scipy.stats import chi2, norm

from ..errors import ConvergenceWarning, HierbayesError
from .optimize import Objective, minimize_bounded
from .sdcor import JACOBIAN_STEP, Component, Coordinates, components, jacobian
from .sdcor_criterion import SdCorCriterion

HESSIAN_STEP = 1e-4  # relative step of the Hessian's differences
MAX_STEPS = 60  # steps out from the estimate before a limit is given up (NaN)
XTOL = 1e-9  # Brent's tolerance on φ (relative SDs, correlations, log σ)
INNER_MAXITER = 1000
# Profiling below the fit's criterion by more than this (relative to 1 + |criterion|) means the
# fit is not at its optimum (lme4's profile stops with an error there).
LOWER_TOL = 1e-7
INNER_GTOL = 1e-5  # on the curvature-scaled nuisance coordinates (see _Profile._minimize)


@dataclass(frozen=True)
class Intervals:
    """Per `components(...)` row: limits and SEs on the reported scale, and how they were got."""

    lower: np.ndarray
    upper: np.ndarray
    std_error: np.ndarray
    label: str


def criterion_name(fit) -> str:
    return {"REML": "REML criterion", "ML": "ML deviance"}.get(fit.method, "Laplace deviance")


def profile_intervals(fit, ci_prob: float) -> Intervals:
    """The profile limits of every `varcorr()` row of `fit` at `ci_prob` (cached on the fit)."""
    cached = fit._profiles.get(ci_prob)
    if cached is not None:
        return cached
    comps = components(fit.design, fit.sigma is not None)
    se = std_errors(fit)
    z = float(norm.ppf(0.5 + ci_prob / 2))
    lower, upper = np.full(len(comps), np.nan), np.full(len(comps), np.nan)
    lowest = fit.criterion
    for k, c in enumerate(comps):
        if not _identified(fit, c):
            continue
        lower[k], upper[k], low = _limits(fit, c, z, se[k])
        lowest = min(lowest, low)
    _warn_lower(fit, lowest)
    label = (f"{100 * ci_prob:g}% profile likelihood: where the {criterion_name(fit)} rises "
             f"by {chi2.ppf(ci_prob, 1):.6f} (χ²₁ quantile) with the other parameters "
             "re-optimised")
    out = Intervals(lower, upper, se, label)
    fit._profiles[ci_prob] = out
    return out


def _warn_lower(fit, lowest: float) -> None:
    """The fit is not at its optimum when a profile goes below it (lme4 stops there)."""
    below = fit.criterion - lowest
    if below > LOWER_TOL * (1.0 + abs(fit.criterion)):
        warnings.warn(
            f"Profiling found a {criterion_name(fit)} {below:.3g} below the fit's own: the fit "
            "stopped short of its optimum, so its estimates and these intervals are measured "
            "from the wrong point. Refit (a larger maxiter, or start= near the better point) "
            "before relying on them.", ConvergenceWarning, stacklevel=5)


def _identified(fit, c: Component) -> bool:
    """A correlation is undefined when one of its SDs is exactly 0."""
    if c.kind != "corr":
        return True
    sd = np.sqrt(np.diag(fit.covariance[fit.design.blocks[c.block].name]))
    return bool(sd[c.i] > 0 and sd[c.l] > 0)


def _coordinates(fit, pair=None) -> Coordinates:
    extra = fit.design.X.shape[1] + (fit.dispersion is not None) if fit.method == "Laplace" else 0
    return Coordinates(fit.design, fit.deviance.thetas, fit.sd_scale, fit.sigma is not None,
                       extra, pair)


def _limits(fit, c: Component, z: float, se: float) -> tuple[float, float, float]:
    """(lower, upper) on the reported scale, and the lowest criterion met on the way."""
    coords = _coordinates(fit, (c.block, c.i, c.l) if c.kind == "corr" else None)
    crit = SdCorCriterion(fit, coords)
    try:
        profile = _Profile(crit, coords.index(c), fit.criterion)
        step = _first_step(c, coords.scale, se, profile.x_hat, z)
        limits = [profile.limit(d, z, step) for d in (-1, 1)]
    finally:
        crit.restore()
    return (*(_reported(coords, c, x) for x in limits), profile.lowest)


def _first_step(c: Component, scale: float, se: float, x_hat: float, z: float) -> float:
    """About z SEs in φ units (an SD's φ is SD/ŝ, σ's is log(σ/σ̂) with σ̂ = ŝ): near the limit
    when the profile is close to quadratic; else a fixed fraction of the scale."""
    if np.isfinite(se) and se > 0:
        return z * se / (1.0 if c.kind == "corr" else scale)
    return {"sd": 0.5 * max(x_hat, 0.1), "corr": 0.2}.get(c.kind, 0.1)


def _reported(coords: Coordinates, c: Component, x: float) -> float:
    if not np.isfinite(x):
        return np.nan
    if c.kind == "corr" and abs(x) >= coords.upper[coords.index(c)]:
        return float(np.sign(x))  # the bound of the box is a correlation of ±1
    return coords.value(c, x)


class _Profile:
    """ζ along one coordinate j of φ, re-optimising the others: each fit starts from the
    straight-line extrapolation of the two nearest fits, with the other coordinates scaled by
    their curvature at the estimate (L-BFGS-B is not scale invariant: σ's log is ~100× more
    sharply determined than an SD on large data)."""

    def __init__(self, crit: SdCorCriterion, j: int, minimum: float):
        self.crit, self.j = crit, j
        start = crit.start()
        self.x_hat = float(start[j])
        self.minimum = min(minimum, crit(start))
        self.lowest = self.minimum
        self.points = {self.x_hat: start}
        free = np.ones(start.size, bool)
        free[j] = False
        self.free = free
        self.lower, self.upper = crit.lower[j], crit.upper[j]
        self.scale = _curvature_scale(crit, start, free)

    def zeta(self, x: float) -> float:
        phi = self.points.get(x)
        if phi is None:
            phi = self._fit(x)
        value = self.crit(phi)
        self.lowest = min(self.lowest, value)
        return float(np.sign(x - self.x_hat) * np.sqrt(max(value - self.minimum, 0.0)))

    def _fit(self, x: float) -> np.ndarray:
        phi = self._predict(x)
        if self.free.any():
            phi[self.free] = self._minimize(phi)
        self.points[x] = phi
        return phi

    def _predict(self, x: float) -> np.ndarray:
        side = [p for p in self.points if (p - self.x_hat) * (x - self.x_hat) >= 0]
        near = sorted(side, key=lambda p: abs(p - x))[:2]
        phi = self.points[near[0]].copy()
        if len(near) == 2:
            (x1, x2), (p1, p2) = near, (self.points[near[0]], self.points[near[1]])
            phi = p1 + (x - x1) * (p1 - p2) / (x1 - x2)
            phi = np.clip(phi, self.crit.lower, self.crit.upper)
        phi[self.j] = x
        return phi

    def _minimize(self, phi: np.ndarray) -> np.ndarray:
        crit, free, scale = self.crit, self.free, self.scale

        def full(y):
            out = phi.copy()
            out[free] = y * scale
            return out

        def value_and_gradient(y):
            f, g = crit.value_and_gradient(full(y))
            return f, g[free] * scale

        exact = crit.has_gradient
        # In curvature-scaled units the criterion is ~ ½‖y − ŷ‖² near its minimum, so a
        # gradient of g leaves it ~ g²/2 above: 1e-5 is far below what moves a limit.
        obj = Objective(lambda y: crit(full(y)), crit.lower[free] / scale,
                        crit.coords.is_sd[free], ftol=1e-13 if exact else 1e-12,
                        gtol=INNER_GTOL,
                        value_and_gradient=value_and_gradient if exact else None,
                        upper=crit.upper[free] / scale)
        y, _, _ = minimize_bounded(obj, phi[free] / scale, INNER_MAXITER)
        return y * scale

    def limit(self, direction: int, z: float, step: float) -> float:
        """The x on one side where direction·ζ reaches z, or the bound when it never does."""
        bound = self.lower if direction < 0 else self.upper
        if self.x_hat == bound:
            return bound
        inner, z_inner, dist = self.x_hat, 0.0, step
        for _ in range(MAX_STEPS):
            x = self.x_hat + direction * dist
            if direction * (x - bound) >= 0:
                x = bound
            zx = direction * self.zeta(x)
            if zx >= z:
                a, b = sorted((inner, x))
                return brentq(lambda u: direction * self.zeta(u) - z, a, b, xtol=XTOL,
                              rtol=1e-12)
            if x == bound:
                return bound
            dist = _next_distance(abs(inner - self.x_hat), z_inner, abs(x - self.x_hat), zx, z)
            inner, z_inner = x, zx
        warnings.warn(f"A profile interval limit was not reached in {MAX_STEPS} steps out from "
                      "the estimate (the criterion stays nearly flat): it is reported as NaN.",
                      ConvergenceWarning, stacklevel=6)
        return np.nan


def _curvature_scale(crit: SdCorCriterion, phi: np.ndarray, free: np.ndarray) -> np.ndarray:
    """1/√(∂²f/∂φ_i²) for the free coordinates at φ (one-sided at a bound), 1 where that
    curvature is not positive: a rise of about 1 in the criterion per unit of the scaled
    coordinate."""
    idx = np.flatnonzero(free)
    h = HESSIAN_STEP * np.maximum(1.0, np.abs(phi))
    out = np.ones(idx.size)
    f0 = None if crit.has_gradient else crit(phi)
    for k, i in enumerate(idx):
        up, down = phi.copy(), phi.copy()
        up[i] = min(phi[i] + h[i], crit.upper[i])
        down[i] = max(phi[i] - h[i], crit.lower[i])
        if crit.has_gradient:
            g_up, g_down = crit.value_and_gradient(up)[1][i], crit.value_and_gradient(down)[1][i]
            c = (g_up - g_down) / (up[i] - down[i])
        elif down[i] < phi[i] < up[i]:
            c = (crit(up) - 2 * f0 + crit(down)) / h[i] ** 2
        else:
            continue
        if np.isfinite(c) and c > 0:
            out[k] = 1.0 / np.sqrt(c)
    return np.clip(out, 1e-8, 1e8)


def _next_distance(d0: float, z0: float, d1: float, z1: float, z: float) -> float:
    """Beyond the straight-line prediction of where ζ reaches z, at least 1.2× and at most 4×
    further out than the last step."""
    if z1 > z0:
        predicted = d1 + (z - z1) * (d1 - d0) / (z1 - z0)
        return float(np.clip(1.1 * predicted, 1.2 * d1, 4.0 * d1))
    return 2.0 * d1


def std_errors(fit) -> np.ndarray:
    """Hessian SEs of every `varcorr()` row on the reported scale (NaN at bounds; see the
    module docstring). Computed once per fit."""
    cached = fit._profiles.get("std_error")
    if cached is not None:
        return cached
    comps = components(fit.design, fit.sigma is not None)
    coords = _coordinates(fit)
    crit = SdCorCriterion(fit, coords)
    try:
        out = _std_errors(crit, coords, comps)
    finally:
        crit.restore()
    fit._profiles["std_error"] = out
    return out


def _std_errors(crit: SdCorCriterion, coords: Coordinates, comps) -> np.ndarray:
    phi = crit.start()
    h = HESSIAN_STEP * np.maximum(1.0, np.abs(phi))
    free = (phi - 2 * h > crit.lower) & (phi + 2 * h < crit.upper)
    out = np.full(len(comps), np.nan)
    try:
        H = _hessian(crit, phi, free, h)
        chol = np.linalg.cholesky(H)
    except (np.linalg.LinAlgError, HierbayesError, FloatingPointError):
        return out
    cov = 2.0 * cho_solve((chol, True), np.eye(H.shape[0]))
    J = jacobian(lambda x: coords.values(x, comps), phi, crit.lower, crit.upper, len(comps),
                 coords.size)[:, free]
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, cov, J), 0.0))
    for k, c in enumerate(comps):
        if all(free[i] for i in _coordinates_of(coords, c)) and _inside(coords, c, phi):
            out[k] = se[k]
    return out


def _coordinates_of(coords: Coordinates, c: Component) -> list[int]:
    """The φ coordinates a component's SE rests on (a correlation: its block's CPCs and its
    two SDs)."""
    if c.kind != "corr":
        return [coords.index(c)]
    return [*coords.cpc_indices(c.block),
            *(coords.index(Component("sd", c.block, t)) for t in (c.i, c.l))]


def _inside(coords: Coordinates, c: Component, phi: np.ndarray) -> bool:
    """A correlation well inside (−1, 1) (its reported value, not only its CPC)."""
    if c.kind != "corr":
        return True
    return abs(coords.values(phi, [c])[0]) < 1.0 - 2 * JACOBIAN_STEP


def _hessian(crit: SdCorCriterion, phi: np.ndarray, free: np.ndarray,
             h: np.ndarray) -> np.ndarray:
    """Over the free coordinates: central differences of the analytic gradient when there is
    one, else central second differences of the criterion."""
    idx = np.flatnonzero(free)
    if crit.has_gradient:
        rows = []
        for j in idx:
            up, down = phi.copy(), phi.copy()
            up[j] += h[j]
            down[j] -= h[j]
            rows.append((crit.value_and_gradient(up)[1][idx]
                         - crit.value_and_gradient(down)[1][idx]) / (2 * h[j]))
        H = np.array(rows)
        return 0.5 * (H + H.T)
    f0 = crit(phi)
    H = np.empty((idx.size, idx.size))

    def at(*moves):
        y = phi.copy()
        for k, sign in moves:
            y[idx[k]] += sign * h[idx[k]]
        return crit(y)

    for a in range(idx.size):
        H[a, a] = (at((a, 1)) - 2 * f0 + at((a, -1))) / h[idx[a]] ** 2
        for b in range(a):
            H[a, b] = H[b, a] = (at((a, 1), (b, 1)) - at((a, 1), (b, -1)) - at((a, -1), (b, 1))
                                 + at((a, -1), (b, -1))) / (4 * h[idx[a]] * h[idx[b]])
    return H
