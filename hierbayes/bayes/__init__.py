"""The Bayesian engine: priors, the PyMC model, NUTS and the `BayesFit` it returns.

Stages, each usable alone: `build_model` (design + priors + `pm.Model`: `model`, `builder`,
`priors`) -> `sample` (NUTS; Gaussian models with the group effects integrated out: `marginal`)
-> `BayesFit` (`fit`: tidy tables from `posterior`, checks from `diagnostics`, `predict`,
`save` / `load`). `fit_bayes` (`api`) runs them all. This package is the only one that imports
PyMC.
"""

from .api import fit_bayes
from .fit import BayesFit
from .interrupt import SamplingInterrupted
from .model import BayesModel, build_model
from .priors import Prior, Priors, default_priors
from .restore import load
from .sampling import sample

__all__ = [
    "BayesFit",
    "BayesModel",
    "Prior",
    "Priors",
    "SamplingInterrupted",
    "build_model",
    "default_priors",
    "fit_bayes",
    "load",
    "sample",
]
