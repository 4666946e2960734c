"""REML / ML fits of linear mixed models, as lme4 does them (Bates et al. 2015, JSS 67(1)), and
Laplace fits of GLMMs (bernoulli, binomial, poisson, negative_binomial), as lme4's glmer does.

Four stages, each usable alone: `make_design` (hierbayes.design) -> `make_deviance` (the profiled
criterion as a function of θ, or with method "Laplace" the Laplace deviance of (θ, β)) ->
`optimize_theta` / `optimize_laplace` (one L-BFGS-B driver, one `OptimResult`) -> `RemlFit`
(one class for LMMs and GLMMs; `GlmmFit` is the same class). `fit_reml` runs them all.
`RemlFit.varcorr` adds profile likelihood intervals of the variance components (profile);
`anova` compares nested fits (likelihood-ratio tests, REML fits refitted by ML as lme4 does).
numpy/scipy only: this package never imports PyMC.
"""

from .anova import anova
from .api import fit_reml
from .deviance import Deviance, make_deviance
from .glmm import GlmmFit, SeparationWarning, fit_glmm
from .glmm_optimize import optimize_laplace
from .laplace import LaplaceDeviance, Lme4LaplaceDeviance
from .optimize import OptimResult, optimize_theta
from .results import RemlFit
from .theta import SINGULAR_TOL, theta_layout

__all__ = ["SINGULAR_TOL", "Deviance", "GlmmFit", "LaplaceDeviance", "Lme4LaplaceDeviance",
           "OptimResult", "RemlFit", "SeparationWarning", "anova", "fit_glmm", "fit_reml",
           "make_deviance", "optimize_laplace", "optimize_theta", "theta_layout"]
