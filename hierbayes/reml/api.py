"""`fit_reml`: lme4's `lmer` in four stages (design, deviance, optimise, fit), or `glmer`."""

from __future__ import annotations

import pandas as pd

from ..blas import one_blas_thread
from ..design import Design, make_design
from ..errors import HierbayesError
from .deviance import check_gaussian, check_method, make_deviance
from .glmm import fit_glmm
from .laplace import check_laplace
from .optimize import optimize_theta
from .results import RemlFit, warn_status


def fit_reml(formula: str | Design, data: pd.DataFrame | None = None, method: str | None = None,
             family: str = "gaussian", missing: str = "drop", *, link: str | None = None,
             weights=None, start=None, maxiter: int = 1000,
             known_sigma: str | None = None, laplace: str = "exact",
             nagq: int = 1) -> RemlFit:
    """Fit a linear mixed model by REML (default) or ML, as lme4's `lmer` does; for the
    bernoulli, binomial and poisson families a GLMM by the Laplace approximation, as lme4's
    `glmer` (nAGQ = 1) does (`method` is then "Laplace"; see hierbayes.reml.glmm).

    `formula` is an lme4 formula (with `data`) or an already built `Design`. θ starts at lme4's
    start unless `start` is given. `weights` are lme4's prior weights (var(e_i) = σ²/w_i): an
    array with one value per used row, or a Series indexed like `data`.

    `known_sigma` names a column of known residual SDs s_i (Gaussian only; meta-analysis, e.g.
    eight schools): var(e_i) = s_i² and no residual SD is estimated. A `Design` built with
    `make_design(..., known_sigma=...)` carries them itself. Such a fit reports `sigma` None,
    `varcorr()` has no Residual row, SEs and conditional SDs are on the absolute scale, `theta`
    is relative to `sd_scale` (the median known SD), and the fit is singular when an SD is below
    1e-4·median(s_i). REML and ML criteria are the exact −2 log-likelihoods with V = S + ZΣZᵀ.

    Warns with `SingularFitWarning` when a relative SD is below 1e-4 (lme4's isSingular) and with
    `ConvergenceWarning` when the optimiser did not converge; the best point found is returned
    either way. Intervals are Wald (see `fixef`, `ranef`).

    `laplace` (GLMMs only): "exact" (default) evaluates the Laplace approximation at the exact
    conditional mode (glmmTMB's value); "lme4" evaluates it as glmer does, to reproduce lme4's
    published numbers (see hierbayes.reml.glmm). Gaussian fits reject "lme4".

    `nagq` (GLMMs with one scalar random effect, e.g. `(1 | g)`): lme4's nAGQ. 1 is the Laplace
    approximation; more uses adaptive Gauss-Hermite quadrature with that many nodes per level
    (hierbayes.reml.agq), whose −2 logLik converges to the exact one (25 is lme4's usual).
    """
    if method is not None and not isinstance(formula, Design) and family == "gaussian":
        check_method(method)  # before the design: a typo is reported first
    design = _design(formula, data, family, missing, known_sigma)
    if not design.blocks:
        raise HierbayesError(
            f"The formula {design.formula!r} has no group-level term such as '(1 | g)': it is "
            "not a mixed model. Add one, or fit it with fit_bayes (a plain Bayesian regression) "
            "or an ordinary least-squares / GLM routine."
        )
    check_laplace(laplace, design.family.name)
    if design.family.name != "gaussian" or link not in (None, "identity"):
        return fit_glmm(design, method, link=link, weights=weights, start=start,
                        maxiter=maxiter, laplace=laplace, nagq=nagq)
    return _fit_lmm(design, method, link, weights, start, maxiter, nagq)


def _fit_lmm(design: Design, method, link, weights, start, maxiter: int, nagq) -> RemlFit:
    if nagq != 1:
        raise HierbayesError(
            f"nagq={nagq!r} applies to GLMMs (adaptive quadrature of the random effects); a "
            "Gaussian model's REML/ML criterion is exact. Leave nagq out."
        )
    method = "REML" if method is None else method
    check_method(method)
    check_gaussian(design)
    if link not in (None, "identity"):
        raise HierbayesError(
            f"fit_reml fits Gaussian models with the identity link only, got link={link!r}. "
            "Use fit_bayes for other links."
        )
    with one_blas_thread():
        dev = make_deviance(design, method, weights)
        opt = optimize_theta(dev, start=start, maxiter=maxiter)
        fit = RemlFit(dev, opt)
    warn_status(fit, opt.message, opt.gradient, dev.thetas, opt.theta, stacklevel=4)
    return fit


def _design(formula, data, family, missing, known_sigma) -> Design:
    if not isinstance(formula, Design):
        return make_design(formula, data, family, missing, known_sigma=known_sigma)
    if known_sigma is not None and known_sigma != formula.known_sigma_column:
        raise HierbayesError(
            f"known_sigma={known_sigma!r} differs from the design's own known SDs "
            f"({formula.known_sigma_column!r}): known SDs belong to the design, build it with "
            "make_design(..., known_sigma=...)."
        )
    return formula
