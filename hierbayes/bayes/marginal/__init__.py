"""Gaussian models with the group effects integrated out (`model`), then drawn exactly (`draws`).

`grouped` and `schur` hold the likelihoods' numba kernels; `linalg` the element-wise
k × k factorizations of the exact draws.
"""

from .draws import ATTR, complete_posterior, draw_group_effects, pointwise_log_likelihood
from .model import MAX_DENSE, MarginalPlan, build_marginal_model, plan_for

__all__ = [
    "ATTR",
    "MAX_DENSE",
    "MarginalPlan",
    "build_marginal_model",
    "complete_posterior",
    "draw_group_effects",
    "plan_for",
    "pointwise_log_likelihood",
]
