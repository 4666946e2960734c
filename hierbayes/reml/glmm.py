"""GLMM fits by the Laplace approximation (lme4's `glmer`, nAGQ = 1): `fit_glmm`.

`fit_reml(formula, data, family="binomial" | "bernoulli" | "poisson" | "negative_binomial")`
lands here (the negative binomial's dispersion by an outer 1-D search: negbin.py). The stages are
the REML engine's: the design, a deviance function (laplace.LaplaceDeviance, PIRLS on the same
backends), the optimiser (glmm_optimize: θ alone, then θ and β) and the same `RemlFit` as an
LMM's (method "Laplace"; its GLMM fields are set by glmm_estimates.glmm_optimum).

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

from ..blas import one_blas_thread
from ..design import Design
from ..errors import HierbayesError, SeparationWarning
from .agq import AGQDeviance, check_nagq
from .deviance import check_weights
from .glmm_optimize import optimize_laplace
from .laplace import check_laplace, laplace_deviance
from .negbin import optimize_negative_binomial
from .results import RemlFit, warn_status

GLMM_METHODS = (None, "Laplace", "ML")
# Families with an extra parameter estimated with (θ, β): α, the Gamma's shape, σ.
DISPERSION_FAMILIES = ("negative_binomial", "gamma", "gaussian")

# The GLMM fit is a `RemlFit` (method "Laplace"); the name stays for code that used it.
GlmmFit = RemlFit


def fit_glmm(design: Design, method: str | None = None, *, link: str | None = None,
             weights=None, start=None, maxiter: int = 1000, laplace: str = "exact",
             nagq: int = 1) -> RemlFit:
    """Fit a bernoulli / binomial / poisson / negative binomial GLMM of `design` by the Laplace
    approximation, evaluated exactly or as lme4 does (`laplace`, see the module docstring), or
    with `nagq` > 1 by adaptive Gauss-Hermite quadrature with that many nodes (lme4's nAGQ;
    one scalar random effect only: agq.py).

    `weights` are prior weights (lme4's glmer `weights`; one per used row, or a Series indexed
    like the data): row i's −2 log-likelihood and working weight are multiplied by w_i, so an
    integer weight counts the row that many times. A binomial's trials stay in cbind(...).

    Warns with `SeparationWarning` when some fixed effects are separated (no finite estimate),
    and as `fit_reml` does about convergence and singular fits.
    """
    _check_arguments(design, method)
    weights = check_weights(weights, design)
    check_laplace(laplace, design.family.name)
    nagq = check_nagq(nagq, design)
    if nagq > 1 and laplace != "exact":
        raise HierbayesError(
            "nagq > 1 (adaptive Gauss-Hermite quadrature) replaces the Laplace approximation: "
            "it goes with laplace='exact' (the default), not laplace='lme4'."
        )
    with one_blas_thread():
        dev = (AGQDeviance(design, link, nagq, weights) if nagq > 1
               else laplace_deviance(design, link, laplace, weights))
        if design.family.name in DISPERSION_FAMILIES:
            opt = optimize_negative_binomial(dev, start, maxiter)
        else:
            opt = optimize_laplace(dev, start=start, maxiter=maxiter)
        if not np.isfinite(opt.criterion):
            raise HierbayesError(
                f"The Laplace deviance of {design.formula!r} could not be evaluated anywhere the "
                "optimiser looked (PIRLS failed at every point: the working weights overflow). "
                "Check the response's scale and the covariates (centre or rescale large ones), "
                "or give start= values near the optimum."
            )
        fit = RemlFit(dev, opt)
    if fit.separated:
        warnings.warn(separation_message(design, list(fit.separated)), SeparationWarning,
                      stacklevel=3)
    warn_status(fit, opt.message, opt.gradient, dev.thetas, opt.theta, stacklevel=4)
    return fit


def _check_arguments(design: Design, method) -> None:
    if method not in GLMM_METHODS:
        raise HierbayesError(
            f"The {design.family.name} family is fitted by maximum likelihood with the Laplace "
            f"approximation (method='Laplace', or None); got method={method!r}. REML is defined "
            "for Gaussian models only."
        )


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
