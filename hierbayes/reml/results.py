"""`RemlFit`: the fitted model both the LMM and the GLMM paths return, and its warnings."""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from ..design import Design
from ..errors import ConvergenceWarning, SingularFitWarning
from ..tidy import CI_PROB
from . import tables
from .deviance import Deviance
from .estimates import Estimates, estimates
from .optimize import OptimResult
from .printing import format_fit


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
        self.link: str = "identity"
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

    def _repr_html_(self) -> str:
        """The compact notebook display (`hierbayes.report.display`)."""
        from ..report.display import fit_display_html

        return fit_display_html(self)
