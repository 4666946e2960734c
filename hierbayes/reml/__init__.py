"""REML / ML fits of linear mixed models, as lme4 does them (Bates et al. 2015, JSS 67(1)), and
Laplace fits of GLMMs (bernoulli, binomial, poisson, negative_binomial, gamma, and gaussian with a
non-identity link), as lme4's glmer does, with adaptive Gauss-Hermite quadrature (`nagq`) for one
scalar random effect.

Four stages, each usable alone: `make_design` (hierbayes.design) -> `make_deviance` (the profiled
criterion as a function of θ, or with method "Laplace" the Laplace deviance of (θ, β)) ->
`optimize_theta` / `optimize_laplace` (Newton steps with an average-information Hessian for LMMs,
L-BFGS-B otherwise: one `OptimResult`) -> `RemlFit` (one class for LMMs and GLMMs; `GlmmFit` is
the same class). `fit_reml` runs them all. M = ΛᵀZᵀZΛ + I is factored block-diagonally (one
grouping factor), by a dense Schur complement of the smaller factors, or by a sparse Cholesky
(optional qdldl) when that would not fit in memory: backends.py chooses.
`RemlFit.varcorr` adds profile likelihood intervals of the variance components (profile; lme4's
ML-refit profile with criterion="ML"); `anova` compares nested fits (likelihood-ratio tests, REML
fits refitted by ML as lme4 does); `RemlFit.r2`/`icc` give Nakagawa's R² and the ICC;
`RemlFit.bootstrap` a parametric bootstrap.
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
