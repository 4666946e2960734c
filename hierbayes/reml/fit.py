"""`fit_reml` and `RemlFit`: lme4's `lmer` as four stages (design, deviance, optimise, fit)."""

from __future__ import annotations

import contextlib
import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from ..design import Design, make_design
from ..errors import ConvergenceWarning, HierbayesError, SingularFitWarning
from ..tidy import CI_PROB
from . import tables
from .deviance import Deviance, check_gaussian, check_method, make_deviance
from .estimates import Estimates, estimates
from .laplace import check_laplace
from .optimize import OptimResult, optimize_theta
from .printing import format_fit


def fit_reml(formula: str | Design, data: pd.DataFrame | None = None, method: str | None = None,
             family: str = "gaussian", missing: str = "drop", *, link: str | None = None,
             weights=None, start=None, maxiter: int = 1000,
             known_sigma: str | None = None, laplace: str = "exact") -> RemlFit:
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
    if design.family.name != "gaussian":
        from .glmm import fit_glmm  # glmm builds on RemlFit: imported here to avoid a cycle
        return fit_glmm(design, method, link=link, weights=weights, start=start,
                        maxiter=maxiter, laplace=laplace)
    method = "REML" if method is None else method
    check_method(method)
    check_gaussian(design)
    if link not in (None, "identity"):
        raise HierbayesError(
            f"fit_reml fits Gaussian models with the identity link only, got link={link!r}. "
            "Use fit_bayes for other links."
        )
    with _single_threaded_blas():
        dev = make_deviance(design, method, weights)
        opt = optimize_theta(dev, start=start, maxiter=maxiter)
        fit = RemlFit(dev, opt)
    warn_status(fit, opt.message, opt.gradient, dev.thetas, opt.theta)
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


def warn_status(fit, message: str, gradient: np.ndarray, thetas, theta: np.ndarray,
                stacklevel: int = 3) -> None:
    """The convergence and singularity warnings of a fit (lme4's messages, in plain words)."""
    if not fit.converged:
        warnings.warn(
            f"The optimiser did not converge ({message}; largest projected gradient "
            f"{np.max(np.abs(gradient), initial=0.0):.2g}); the estimates are its best point.",
            ConvergenceWarning, stacklevel=stacklevel,
        )
    if fit.singular:
        names = [n for n, t, d in zip(thetas.names, theta, thetas.is_diagonal, strict=True)
                 if d and t < 1e-4]
        warnings.warn(
            f"Singular fit: relative SD(s) {', '.join(names)} at or near 0 (boundary). "
            "The model may be over-specified for these data.", SingularFitWarning,
            stacklevel=stacklevel,
        )


_BLAS = {}


def _single_threaded_blas():
    """One BLAS thread for the fit. Each θ step is many small LAPACK calls (and L-BFGS-B's own
    BLAS calls); OpenBLAS threads spin-waiting for them cost 2-10× on a busy 2-core machine
    (measured: sleepstudy 100 ms -> 8 ms, InstEval-sized 2.2 s -> 0.8 s under load).
    threadpoolctl comes with PyMC; without it, nothing is limited. Its scan of the loaded
    libraries is done once (it costs ~4 ms)."""
    if "controller" not in _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS["controller"] = ThreadpoolController()
        except ImportError:  # pragma: no cover
            _BLAS["controller"] = None
    controller = _BLAS["controller"]
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


class RemlFit:
    """A fitted linear mixed model. Tidy tables: `fixef()`, `varcorr()`, `ranef()`.

    Attributes: `criterion` (REML criterion, or ML deviance), `method`, `theta` (lme4 order, see
    `theta_names`), `sigma`, `singular`, `converged`, `vcov` (of the fixed effects), `loglik`,
    `aic`, `bic`, `design`, `sigma_known` (residual SDs known: `sigma` is None), `sd_scale` (what
    θ and the singular rule are relative to: σ̂, or the median known SD), `covariance` (block
    name -> k×k covariance of its effects), `condcov` (block name -> (levels, k, k) conditional
    covariance of the modes, level order of `design.blocks[i].levels`), `modes` (block name ->
    (levels, k)), `group_condcov` (grouping factor -> (levels, K, K), the blocks of one factor
    together), `deviance` (the callable of θ).
    """

    def __init__(self, dev: Deviance, opt: OptimResult):
        self.deviance, self.optim = dev, opt
        self.design: Design = dev.design
        self.method: str = dev.method
        self.theta: np.ndarray = opt.theta
        self.theta_names: tuple[str, ...] = dev.thetas.names
        self.criterion: float = float(dev(opt.theta))
        self.converged: bool = opt.converged
        self.singular: bool = dev.thetas.singular(opt.theta)
        est: Estimates = estimates(dev, dev.state(opt.theta))
        self.estimates = est
        self.sigma, self.vcov = est.sigma, est.vcov
        self.sigma_known: bool = dev.sigma_fixed is not None
        self.sd_scale: float = dev.sigma_fixed if self.sigma_known else est.sigma
        self.covariance, self.modes = est.covariance, est.modes
        self.condcov, self.group_condcov = est.condcov, est.group_condcov

    @property
    def beta(self) -> np.ndarray:
        return self.estimates.beta

    @property
    def n_params(self) -> int:
        """β, θ and σ: the degrees of freedom lme4 gives logLik (no σ when it is known)."""
        return self.design.X.shape[1] + len(self.theta) + (not self.sigma_known)

    @property
    def loglik(self) -> float:
        """−criterion/2: the REML log-likelihood for REML fits, the log-likelihood for ML."""
        return -0.5 * self.criterion

    @property
    def aic(self) -> float:
        return self.criterion + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.criterion + np.log(self.design.n_obs) * self.n_params

    def fixef(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        return tables.fixef_table(self, ci_prob)

    def varcorr(self) -> pd.DataFrame:
        return tables.varcorr_table(self)

    def ranef(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        return tables.ranef_table(self, ci_prob)

    @cached_property
    def _text(self) -> str:
        return format_fit(self)

    def summary(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return self._text
