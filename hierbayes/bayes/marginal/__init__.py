"""Gaussian models with the group effects integrated out (`model`), then drawn exactly (`draws`).

`linalg` holds the element-wise k × k factorizations both share.
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
