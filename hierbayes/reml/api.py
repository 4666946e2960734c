"""`fit_reml`: lme4's `lmer` in four stages (design, deviance, optimise, fit), or `glmer`."""

from __future__ import annotations

import warnings

import pandas as pd

from .. import mundlak
from ..arguments import refuse_unknown
from ..bigdata import design_for
from ..blas import one_blas_thread
from ..design import Design
from ..errors import FamilyError, HierbayesError
from ..families import get_family
from .deviance import check_gaussian, check_method, make_deviance
from .glmm import fit_glmm
from .laplace import check_laplace
from .optimize import optimize_theta
from .results import RemlFit, warn_status
from .scaling import Scales, unscaled_fit


def fit_reml(formula: str | Design, data: pd.DataFrame | None = None, method: str | None = None,
             family: str = "gaussian", missing: str = "drop", *, link: str | None = None,
             weights=None, start=None, maxiter: int = 1000,
             known_sigma: str | None = None, laplace: str = "exact",
             check_nlevels: str = "error", check_within: bool = True, nagq: int = 1,
             **unknown) -> RemlFit:
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

    `check_nlevels`: "error" (default), "warning" or "ignore" for a grouping factor with too
    many levels for the data (lme4's checkNlevels; see hierbayes.identifiability).
    Columns of extreme magnitude are fitted rescaled and reported on their own scale
    (hierbayes.reml.scaling). Unknown keywords are refused with the valid ones listed.

    `check_within`: warn (`WithinBetweenWarning`) when a predictor's within- and between-group
    slopes differ (hierbayes.mundlak: one refit, only if a predictor varies at both levels).

    `data` may be a `dask.dataframe.DataFrame` (gaussian REML/ML; hierbayes.bigdata): the fit
    is built from cross-products summed over its partitions, with the same estimates; the
    within/between check is not run, and what needs the rows (residuals, the bootstrap, fitted
    values) raises `RowsNotInMemory`; `fit.predict(ddf)` predicts a Dask frame lazily.

    `nagq` (GLMMs with one scalar random effect, e.g. `(1 | g)`): lme4's nAGQ. 1 is the Laplace
    approximation; more uses adaptive Gauss-Hermite quadrature with that many nodes per level
    (hierbayes.reml.agq), whose −2 logLik converges to the exact one (25 is lme4's usual).
    """
    refuse_unknown(unknown, fit_reml)
    design = _design(formula, data, family, method, missing, known_sigma, check_nlevels)
    check_laplace(laplace, design.family.name)
    scales = Scales.of(design, link)
    inner, start = scales.scaled(design), scales.scaled_start(start, design)
    if design.family.name != "gaussian" or link not in (None, "identity"):
        fit = fit_glmm(inner, method, link=link, weights=weights, start=start,
                       maxiter=maxiter, laplace=laplace, nagq=nagq)
    else:
        fit = _fit_lmm(inner, method, weights, start, maxiter, nagq)
    return _checked(unscaled_fit(fit, design, scales), check_within)


def _fit_lmm(design: Design, method, weights, start, maxiter: int, nagq) -> RemlFit:
    if nagq != 1:
        raise HierbayesError(
            f"nagq={nagq!r} applies to GLMMs (adaptive quadrature of the random effects); a "
            "Gaussian model's REML/ML criterion is exact. Leave nagq out."
        )
    method = "REML" if method is None else method
    check_method(method)
    check_gaussian(design)
    with one_blas_thread():
        dev = make_deviance(design, method, weights)
        opt = optimize_theta(dev, start=start, maxiter=maxiter)
        fit = RemlFit(dev, opt)
    warn_status(fit, opt.message, opt.gradient, dev.thetas, opt.theta, stacklevel=5)
    return fit


def _checked(fit: RemlFit, check_within: bool) -> RemlFit:
    # From a Dask frame (design.moments) the test would need each predictor's group means.
    if check_within and fit.design.moments is None:
        mundlak.check(fit, lambda design: refit_like(fit, design), stacklevel=4)
    return fit


def refit_like(fit: RemlFit, design: Design) -> RemlFit:
    """`design` (e.g. with columns added) fitted as `fit` was: same method, prior weights, link
    and Laplace evaluation; no within/between check. θ starts at the fit's own θ unless that
    is singular (a start on the boundary can stay there): an added column moves θ little, so
    the refit takes a few evaluations instead of a full optimisation (InstEval: 3 s → 1.5 s)."""
    start = None if fit.singular else fit.theta
    if fit.method == "Laplace":
        return fit_reml(design, link=fit.link, laplace=fit.laplace, start=start,
                        check_within=False)
    return fit_reml(design, method=fit.method, weights=getattr(fit.deviance, "weights", None),
                    start=start, check_within=False)


def check_within_between(design: Design, link: str | None = None) -> None:
    """The within/between warning for a design about to be fitted another way (fit_bayes): its
    REML/Laplace fit, checked. Designs that engine cannot fit are skipped silently."""
    if design.moments is not None or not mundlak.candidate_terms(design):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_reml(design, link=link, check_within=False)
    except HierbayesError:
        return
    mundlak.check(fit, lambda augmented: refit_like(fit, augmented), stacklevel=4)


def _check_family(family) -> None:
    """Before the data: a family this engine does not fit is reported first (student_t: the
    Laplace engine has no family with a residual scale besides the Gaussian REML/ML fit)."""
    family = get_family(family)
    if family.response == "real" and family.name != "gaussian":
        raise FamilyError(
            f"fit_reml fits the gaussian family by REML/ML and the families without a residual "
            f"scale by the Laplace approximation; {family.name!r} is not implemented. Use "
            "fit_bayes for it."
        )


def _design(formula, data, family, method, missing, known_sigma, check_nlevels) -> Design:
    """The design, after the checks of the arguments (a typo is reported before the data)."""
    if not isinstance(formula, Design):
        if method is not None and family == "gaussian":
            check_method(method)
        _check_family(family)
    design = _given_design(formula, data, family, missing, known_sigma, check_nlevels)
    if not design.blocks:
        raise HierbayesError(
            f"The formula {design.formula!r} has no group-level term such as '(1 | g)': it is "
            "not a mixed model. Add one, or fit it with fit_bayes (a plain Bayesian regression) "
            "or an ordinary least-squares / GLM routine."
        )
    return design


def _given_design(formula, data, family, missing, known_sigma, check_nlevels) -> Design:
    if not isinstance(formula, Design):
        return design_for(formula, data, family, missing, known_sigma, check_nlevels)
    if known_sigma is not None and known_sigma != formula.known_sigma_column:
        raise HierbayesError(
            f"known_sigma={known_sigma!r} differs from the design's own known SDs "
            f"({formula.known_sigma_column!r}): known SDs belong to the design, build it with "
            "make_design(..., known_sigma=...)."
        )
    return formula
