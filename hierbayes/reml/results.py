"""`RemlFit`: the one fitted-model class of the LMM and GLMM paths, and its warnings."""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from ..arguments import keywords_checked
from ..bigdata import is_dask_frame
from ..design import Design
from ..errors import ConvergenceWarning, SingularFitWarning
from ..tidy import CI_PROB, check_ci_prob
from . import tables
from .bootstrap import Bootstrap, bootstrap
from .estimates import Optimum, lmm_optimum
from .glmm_estimates import glmm_optimum
from .optimize import OptimResult
from .predict import predict_reml
from .printing import format_fit
from .r2 import VarianceExplained, variance_explained


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


class RemlFit:
    """A fitted linear (REML / ML) or generalized linear (Laplace) mixed model.

    Built by one constructor from the criterion (`deviance.Deviance` for an LMM,
    `laplace.LaplaceDeviance` for a GLMM) and the optimiser's `OptimResult`; what differs between
    the two is computed at the optimum by `estimates.lmm_optimum` or `glmm_estimates.glmm_optimum`
    and stored here as plain fields. Tidy tables: `fixef()`, `varcorr()`, `ranef()` (the
    `hierbayes.tidy.Fit` protocol); `summary()` / `repr` print lme4's summary layout.

    Attributes:

    - `method`: "REML", "ML" or "Laplace"; `family` ("gaussian" for LMMs), `link` ("identity" for
      LMMs); `laplace`: "exact" or "lme4" for GLMMs (fit_reml's `laplace`), None for LMMs;
      `nagq`: quadrature nodes for GLMMs (1: Laplace; more: adaptive Gauss-Hermite), else None.
    - `criterion`: the REML criterion, the ML deviance, or for GLMMs −2 log-likelihood (Laplace
      approximation, constants included: lme4's −2·logLik); `loglik` = −criterion/2, `aic`,
      `bic`, `n_params` (lme4's logLik degrees of freedom: β, θ, and σ or α when estimated).
    - `theta` (lme4 order, see `theta_names`), `converged`, `singular` (lme4's isSingular).
    - `beta`, `vcov` (of the fixed effects) and `vcov_source`: "RX" for σ²(XᵀV⁻¹X)⁻¹ (lmer) or
      the conditional (XᵀWX − RZXᵀRZX)⁻¹ (a GLMM whose Hessian was not positive definite),
      "Hessian" for glmer's default, twice the inverse Hessian of the deviance in (θ, β), its β
      block. `vcov_rx` is always the RX-based one (θ taken as known; equal to `vcov` for LMMs).
    - `sigma`: the residual SD (None for GLMMs and with known residual SDs); `sigma_known`;
      `sd_scale`: what θ and the singular rule are relative to (σ̂, the median known SD, or 1 on
      a GLMM's link scale); `dispersion`: the negative binomial's α (var = μ + μ²/α), else None.
    - `covariance` (block name -> k×k covariance of its effects), `modes` (block name ->
      (levels, k) conditional modes), `condcov` (block name -> (levels, k, k) conditional
      covariance of the modes, level order of `design.blocks[i].levels`), `group_condcov`
      (grouping factor -> (levels, K, K), the blocks of one factor together), `estimates` (all of
      these in one `Estimates`).
    - `separated`: GLMM fixed effects with infinite estimates (complete separation), else ().
    - `design`, `deviance` (the criterion as a callable), `optim` (the `OptimResult`), `state`
      (the criterion's solution at the optimum).
    """

    def __init__(self, dev, opt: OptimResult):
        at = glmm_optimum if dev.method == "Laplace" else lmm_optimum
        optimum: Optimum = at(dev, opt)
        self.deviance, self.optim = dev, opt
        self.design: Design = dev.design
        self.method: str = dev.method
        self.theta: np.ndarray = np.array(opt.theta, float)
        self.theta_names: tuple[str, ...] = dev.thetas.names
        self.converged: bool = opt.converged
        self.singular: bool = dev.thetas.singular(self.theta)
        self.state = optimum.state
        self.criterion: float = optimum.criterion
        self.estimates = optimum.estimates
        self.family: str = optimum.family
        self.link: str = optimum.link
        self.laplace: str | None = optimum.laplace
        self.nagq: int | None = getattr(dev, "nagq", 1) if dev.method == "Laplace" else None
        self.dispersion: float | None = optimum.dispersion
        self.vcov_source: str = optimum.vcov_source
        self.vcov_rx: np.ndarray = optimum.vcov_rx
        self.sigma_known: bool = optimum.sigma_known
        self.sd_scale: float = optimum.sd_scale
        self.separated: tuple[str, ...] = optimum.separated
        self._profiles: dict[float, object] = {}

    # The estimates, under the names users read.
    beta = property(lambda self: self.estimates.beta)
    vcov = property(lambda self: self.estimates.vcov)
    sigma = property(lambda self: self.estimates.sigma)
    covariance = property(lambda self: self.estimates.covariance)
    modes = property(lambda self: self.estimates.modes)
    condcov = property(lambda self: self.estimates.condcov)
    group_condcov = property(lambda self: self.estimates.group_condcov)

    @property
    def n_params(self) -> int:
        """β, θ, and σ or the negative binomial's α when estimated: lme4's logLik df."""
        scale = (self.sigma is not None) or (self.dispersion is not None)
        return self.design.X.shape[1] + len(self.theta) + int(scale)

    @property
    def loglik(self) -> float:
        """−criterion/2: the REML log-likelihood for REML fits, the log-likelihood otherwise."""
        return -0.5 * self.criterion

    @property
    def aic(self) -> float:
        return self.criterion + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.criterion + np.log(self.design.n_obs) * self.n_params

    def fixef(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        """Fixed effects: estimate, standard error, Wald interval, and `statistic` (estimate /
        SE: lme4's t value, or z value for GLMMs and known residual SDs)."""
        return tables.fixef_table(self, check_ci_prob(ci_prob))

    def varcorr(self, ci_prob: float = CI_PROB, criterion: str = "fit") -> pd.DataFrame:
        """SDs and correlations of the group effects, then the residual SD, with profile
        likelihood intervals: see hierbayes.reml.profile and hierbayes.reml.tables.varcorr_table
        for the columns. Profiles are computed once per `ci_prob` and kept.

        `criterion`: "fit" (default) profiles the criterion this fit minimised, so a REML
        fit's intervals surround its REML estimates; "ML" reproduces lme4's
        confint(method = "profile"), which refits a REML model by ML and profiles the ML
        deviance (its intervals surround the ML estimates). For ML and GLMM fits the two
        are the same. Estimates and SEs are this fit's either way."""
        return tables.varcorr_table(self, check_ci_prob(ci_prob), criterion)

    def ranef(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        """Conditional modes and conditional SDs per level × term, Wald (conditional) intervals."""
        return tables.ranef_table(self, check_ci_prob(ci_prob))

    @keywords_checked
    def predict(self, new_data=None, group_effects="conditional", kind="link") -> pd.Series:
        """Predictions per row of `new_data` (default: the fitted rows): see reml.predict.
        A Dask frame gives a Dask Series (hierbayes.bigdata.predict)."""
        if is_dask_frame(new_data):
            from ..bigdata.predict import predict_dask

            return predict_dask(self, new_data, group_effects=group_effects, kind=kind)
        return predict_reml(self, new_data, group_effects, kind)

    def variance_explained(self, approximation: str = "lognormal") -> VarianceExplained:
        """Nakagawa's variance decomposition (fixed, random per grouping factor, residual on the
        link scale): see hierbayes.reml.r2 for the definitions and `approximation`."""
        return variance_explained(self, approximation)

    def r2(self, approximation: str = "lognormal") -> dict[str, float]:
        """Nakagawa's marginal (fixed effects) and conditional (fixed and random) R²."""
        ve = self.variance_explained(approximation)
        return {"marginal": ve.r2_marginal, "conditional": ve.r2_conditional}

    def icc(self, approximation: str = "lognormal") -> dict:
        """Intraclass correlation: `adjusted` (random / (random + residual)), `unadjusted`
        (random / total, fixed effects' variance included), and `by_group` (each grouping
        factor's adjusted share)."""
        ve = self.variance_explained(approximation)
        return {"adjusted": ve.icc_adjusted, "unadjusted": ve.icc_unadjusted,
                "by_group": ve.icc_by_group()}

    def bootstrap(self, n: int = 200, seed: int | None = None) -> Bootstrap:
        """Parametric bootstrap (lme4's bootMer): `n` responses simulated from this fit, each
        refitted by the same criterion; `.fixef(ci_prob)` and `.varcorr(ci_prob)` give
        bootstrap SEs and percentile intervals, `.replicates` every replicate. Seeded with
        `seed` (numpy's default_rng): the same seed gives the same replicates. See
        hierbayes.reml.bootstrap."""
        return bootstrap(self, n, seed)

    @cached_property
    def _text(self) -> str:
        return format_fit(self)

    def summary(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return self._text

    def _repr_html_(self) -> str:
        """The compact notebook display (`hierbayes.report.display`)."""
        from ..report.display import fit_display_html

        return fit_display_html(self)

    def ridge_equivalent(self, scale: float = 1.0) -> pd.DataFrame:
        """The modes as an explicit ridge solution, penalty σ²Σ⁻¹ (`hierbayes.reml.ridge`)."""
        from .ridge import ridge_equivalent

        return ridge_equivalent(self, scale)
