"""Negative binomial GLMMs (lme4's glmer.nb): the dispersion α estimated with (θ, β).

For fixed α the model is an ordinary GLMM (log link, var = μ + μ²/α; α is lme4's θ of glmer.nb
and PyMC's alpha), fitted by the Laplace approximation like the other families. glmer.nb finds α
by an outer 1-D search over the profile min over (θ, β) of −2 logLik(α); the minimum of that
profile is the joint minimum over (θ, β, log α), which is found here directly: stage 1 at a
moment estimate of α, then stage 2 over (θ, β, log α) together (central-difference gradients; the
log link is not canonical for the negative binomial). One optimisation instead of ~25 nested
ones. As in glmer.nb, the fixed effects' vcov is that of the fit at α̂ (α taken as known).
α → ∞ is the Poisson model: an α so large that the extra variance is negligible means no
overdispersion beyond the random effects, which is reported.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import HierbayesWarning
from .glmm_optimize import STAGE2_FTOL, par_diagonal, stage_one
from .laplace import LaplaceDeviance
from .optimize import Objective, OptimResult, fd_gradient, is_converged, minimize_bounded, projected

LOG_ALPHA_BOUNDS = (np.log(1e-4), np.log(1e6))
# μ/α (the extra variance relative to Poisson's, at the mean count) below which α is reported as
# having run off to the Poisson limit: the profile is then flat to ~1e-2 of deviance.
NEGLIGIBLE = 1e-3


class WithDispersion:
    """The Laplace deviance as a function of (θ, β, log α)."""

    def __init__(self, dev: LaplaceDeviance):
        self.dev = dev

    def __call__(self, par) -> float:
        par = np.asarray(par, float)
        alpha = float(np.exp(par[-1]))
        if alpha != self.dev.family.alpha:
            self.dev.set_dispersion(alpha)
        return self.dev(par[:-1])


def dispersion_start(dev: LaplaceDeviance) -> tuple[float, tuple[float, float]]:
    """The family's extra parameter at the start, and the bounds of its log: the negative
    binomial's α (moment estimate, fixed bounds), the Gamma's shape α = mean²/var and the
    Gaussian's σ = SD of y (both searched within a factor 10⁶ either way)."""
    y, name = dev.design.y, dev.family.name
    if name == "negative_binomial":
        return moment_alpha(y), LOG_ALPHA_BOUNDS
    if name == "gamma":
        start = float(np.mean(y) ** 2 / max(np.var(y), 1e-300))
    else:
        start = float(max(np.std(y), 1e-300))
    return start, (np.log(start) - np.log(1e6), np.log(start) + np.log(1e6))


def optimize_negative_binomial(dev: LaplaceDeviance, start=None,
                               maxiter: int = 1000) -> OptimResult:
    """The optimum over (θ, β) at α̂, with α̂ in `dispersion` (the deviance is left at α̂).
    Serves every family with an extra parameter (see `dispersion_start`)."""
    alpha0, bounds = dispersion_start(dev)
    dev.set_dispersion(alpha0)
    par1 = stage_one(dev, start, maxiter)
    f = WithDispersion(dev)
    x0 = np.concatenate([par1, [np.log(dev.family.alpha)]])
    lower = np.concatenate([dev.lower_bounds, [bounds[0]]])
    upper = np.concatenate([np.full(par1.size, np.inf), [bounds[1]]])
    diagonal = np.concatenate([par_diagonal(dev), [False]])
    obj = Objective(f, lower, diagonal, ftol=STAGE2_FTOL, gtol=1e-7, upper=upper,
                    thetas=dev.thetas)
    x, fx, res = minimize_bounded(obj, x0, maxiter)
    gradient = projected(fd_gradient(f, x, lower), x, lower, upper)
    f(x)  # leave the deviance at the optimum's α
    if dev.family.name == "negative_binomial":
        _warn_poisson_limit(dev, float(np.exp(x[-1])))
    return OptimResult(x[:-1], dev.n_theta, fx, is_converged(res, gradient), str(res.message),
                       dev.n_evaluations, int(res.nit), gradient[:-1], stage1=par1,
                       dispersion=float(np.exp(x[-1])))


def _warn_poisson_limit(dev: LaplaceDeviance, alpha: float) -> None:
    mean = max(float(np.mean(dev.design.y)), 1e-8)
    if mean / alpha < NEGLIGIBLE:
        warnings.warn(
            f"The negative binomial's dispersion ran off towards the Poisson limit (α ≈ "
            f"{alpha:.3g}, extra variance μ²/α under {NEGLIGIBLE:.1%} of μ at the mean "
            "count): the counts show no overdispersion beyond the random effects, and a "
            "Poisson model fits as well.", HierbayesWarning, stacklevel=5)


def moment_alpha(y: np.ndarray) -> float:
    """α from var = m + m²/α over all counts: a start (it also counts the groups' spread as
    overdispersion, so it is low), clipped into the search interval."""
    m, v = float(np.mean(y)), float(np.var(y))
    alpha = m * m / (v - m) if v > m else np.exp(LOG_ALPHA_BOUNDS[1] - 2)
    return float(np.clip(alpha, np.exp(LOG_ALPHA_BOUNDS[0] + 1), np.exp(LOG_ALPHA_BOUNDS[1] - 2)))
