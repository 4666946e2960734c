"""GLMM fits by the Laplace approximation (lme4's `glmer`, nAGQ = 1): `fit_glmm` and `GlmmFit`.

`fit_reml(formula, data, family="binomial" | "bernoulli" | "poisson" | "negative_binomial")`
lands here (the negative binomial's dispersion by an outer 1-D search: negbin.py). The stages are
the REML engine's: the design, a deviance function (laplace.LaplaceDeviance, PIRLS on the same
backends), the optimiser (glmm_optimize: θ alone, then θ and β) and a fit with the same tables.

Two evaluations of the Laplace deviance exist, chosen by `laplace`:

- "exact" (default): the Laplace approximation itself, at the exact conditional mode. It equals
  glmmTMB's to ~1e-11 on cbpp, is smooth (analytic or accurate finite-difference gradients), and
  is the better answer to "what is the Laplace approximation of this likelihood".
- "lme4": glmer's own devfun (laplace.Lme4LaplaceDeviance). glmer restarts PIRLS from the θ-only
  stage's η, stops it after a relative change of 1e-7 and takes log|L|² at the weights one step
  before the mode, so its deviance is 5.7e-4 higher on cbpp, and the Hessian its SEs come from
  gives SEs ~1 % lower. That offset is in every published lme4 result; this mode optimises and
  differentiates the same function (same two stages, lme4's absolute Hessian step) so that
  those numbers can be reproduced (cbpp: −2 logLik to ~3e-7, β to ~5e-5 SE, SEs to ~1e-5).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import cho_solve

from ..blas import one_blas_thread
from ..design import Design
from ..errors import HierbayesError, SeparationWarning
from .estimates import Estimates, random_effects
from .glmm_optimize import GlmmOptimResult, hessian_vcov, optimize_laplace
from .laplace import LaplaceDeviance, check_laplace, laplace_deviance
from .negbin import optimize_negative_binomial
from .results import RemlFit, warn_status
from .separation import separated_terms

GLMM_METHODS = (None, "Laplace", "ML")


def fit_glmm(design: Design, method: str | None = None, *, link: str | None = None,
             weights=None, start=None, maxiter: int = 1000, laplace: str = "exact") -> GlmmFit:
    """Fit a bernoulli / binomial / poisson GLMM of `design` by the Laplace approximation,
    evaluated exactly or as lme4 does (`laplace`, see the module docstring).

    Warns with `SeparationWarning` when some fixed effects are separated (no finite estimate),
    and as `fit_reml` does about convergence and singular fits.
    """
    _check_arguments(design, method, weights)
    check_laplace(laplace, design.family.name)
    with one_blas_thread():
        dev = laplace_deviance(design, link, laplace)
        if design.family.name == "negative_binomial":
            opt, _ = optimize_negative_binomial(dev, start, maxiter)
        else:
            opt = optimize_laplace(dev, start=start, maxiter=maxiter)
        fit = GlmmFit(dev, opt)
    separated = separated_terms(design) if _worth_checking(fit) else []
    fit.separated = tuple(separated)
    if separated:
        warnings.warn(separation_message(design, separated), SeparationWarning, stacklevel=3)
    warn_status(fit, opt.message, opt.gradient, dev.thetas, opt.theta, stacklevel=4)
    return fit


def _check_arguments(design: Design, method, weights) -> None:
    if method not in GLMM_METHODS:
        raise HierbayesError(
            f"The {design.family.name} family is fitted by maximum likelihood with the Laplace "
            f"approximation (method='Laplace', or None); got method={method!r}. REML is defined "
            "for Gaussian models only."
        )
    if weights is not None:
        raise HierbayesError(
            "Prior weights are not supported for GLMM fits yet; for a binomial response give the "
            "trials with cbind(successes, failures)."
        )


# Below this many rows the separation LP is always run (it takes a few ms); above, only when the
# fit shows its symptoms (0.1 s at 50,000 rows with continuous covariates).
ALWAYS_CHECK_ROWS = 10_000
# A fixed effect whose contribution to η reaches this many units (e^8 ≈ 3,000 in odds or rate
# ratio) is a symptom: separated estimates run off until the likelihood is flat (|η| ≳ 15).
RUNAWAY_ETA = 8.0


def _worth_checking(fit: GlmmFit) -> bool:
    """Run the separation LP? Always for small data; else only when an estimate ran away, its SE
    exploded or the Hessian was not positive definite."""
    X = fit.design.X
    if X.shape[0] <= ALWAYS_CHECK_ROWS or fit.vcov_source != "Hessian":
        return True
    reach = np.max(np.abs(X), axis=0)
    se = np.sqrt(np.abs(np.diag(fit.vcov)))
    return bool(np.any(np.abs(fit.beta) * reach > RUNAWAY_ETA)
                or np.any(se * reach > RUNAWAY_ETA) or not np.all(np.isfinite(fit.beta)))


def separation_message(design: Design, terms: list[str]) -> str:
    return (
        f"Complete separation: the {design.family.name} response is all at one extreme "
        f"(only successes, only failures or only zeros) along the fixed effect(s) "
        f"{', '.join(terms)}, so their maximum-likelihood estimates are infinite. The Laplace "
        "fit stops where the likelihood is flat: those estimates are arbitrary large numbers "
        "and their SEs meaningless (the other estimates are usable). The Bayesian fit "
        "(fit_bayes) still works: the priors on the fixed effects keep its estimates finite. "
        "Otherwise drop or merge the separated levels."
    )


class GlmmFit(RemlFit):
    """A GLMM fitted by the Laplace approximation: the shape of `RemlFit` with `method` "Laplace".

    `criterion` is −2 log-likelihood (Laplace approximation, constants included: lme4's
    −2·logLik and summary's "deviance"); `sigma` is None (no residual SD: varcorr has no Residual
    row); `vcov` is twice the inverse Hessian of the deviance in (θ, β), its β block (lme4's
    default for glmer; `vcov_source` says "RX" when that Hessian was not positive definite and
    the conditional (XᵀWX − RZXᵀRZX)⁻¹ was used). Conditional SDs of the modes come from
    ΛM⁻¹Λᵀ at the mode, as lme4's condVar. `separated` lists fixed effects with infinite estimates.
    """

    def __init__(self, dev: LaplaceDeviance, opt: GlmmOptimResult):
        self.deviance, self.optim = dev, opt
        self.design: Design = dev.design
        self.method = "Laplace"
        self.laplace: str = dev.laplace  # "exact" or "lme4" (fit_reml's `laplace`)
        self.family, self.link = dev.family.name, dev.family.link
        # The negative binomial's α (var = μ + μ²/α; lme4's θ of glmer.nb), else None.
        negbin = self.family == "negative_binomial"
        self.dispersion: float | None = dev.family.alpha if negbin else None
        self.theta: np.ndarray = opt.theta.copy()
        self.theta_names: tuple[str, ...] = dev.thetas.names
        state = dev.state(opt.par)
        self.state = state
        self.criterion: float = float(state.criterion)
        self.converged: bool = opt.converged
        self.singular: bool = dev.thetas.singular(opt.theta)
        self.separated: tuple[str, ...] = ()  # set by fit_glmm
        vcov, self.vcov_source = _vcov(dev, opt.par, state)
        random = random_effects(self.design, state.layout, dev.thetas.templates(state.theta),
                                state.u, state.factor, 1.0)
        self.estimates = Estimates(beta=state.beta.copy(), vcov=vcov, sigma=None, **random)
        self.sigma, self.vcov = None, vcov
        self.sigma_known, self.sd_scale = False, 1.0  # θ is on the link scale
        self.covariance, self.modes = self.estimates.covariance, self.estimates.modes
        self.condcov, self.group_condcov = self.estimates.condcov, self.estimates.group_condcov

    @property
    def n_params(self) -> int:
        """β and θ (no σ), and α for the negative binomial: lme4's logLik degrees of freedom."""
        return self.design.X.shape[1] + len(self.theta) + (self.dispersion is not None)

    @property
    def vcov_rx(self) -> np.ndarray:
        """(XᵀWX − RZXᵀRZX)⁻¹: the fixed effects' covariance with θ taken as known."""
        RX = self.state.RX
        return cho_solve((RX, True), np.eye(RX.shape[0]), check_finite=False)


def _vcov(dev: LaplaceDeviance, par: np.ndarray, state) -> tuple[np.ndarray, str]:
    V = hessian_vcov(dev, par)
    dev.state(par)  # leave the deviance at the optimum
    if V is not None:
        return V, "Hessian"
    RX = state.RX
    return cho_solve((RX, True), np.eye(RX.shape[0]), check_finite=False), "RX"
