"""REML / ML fits of linear mixed models, as lme4 does them (Bates et al. 2015, JSS 67(1)).

Four stages, each usable alone: `make_design` (hierbayes.design) -> `make_deviance` (the profiled
criterion as a function of θ) -> `optimize_theta` -> `RemlFit`. `fit_reml` runs them all.
numpy/scipy only: this package never imports PyMC.
"""

from .deviance import Deviance, make_deviance
from .fit import RemlFit, fit_reml
from .optimize import optimize_theta
from .theta import SINGULAR_TOL, theta_layout

__all__ = ["SINGULAR_TOL", "Deviance", "RemlFit", "fit_reml", "make_deviance", "optimize_theta",
           "theta_layout"]
