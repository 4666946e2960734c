"""The same model refitted by ML: lme4's refitML, for likelihood-ratio tests (anova) and for
lme4-compatible profile intervals of REML fits (varcorr(criterion="ML"))."""

from __future__ import annotations

from ..blas import one_blas_thread
from .deviance import Deviance
from .optimize import optimize_theta


def ml_refit(fit):
    """`fit` itself unless it is a REML fit; else the ML fit of its design (same prior weights,
    started at its θ), computed once and kept on the fit."""
    if fit.method != "REML":
        return fit
    cached = fit._profiles.get("ml_refit")
    if cached is None:
        with one_blas_thread():
            dev = Deviance(fit.design, "ML", fit.deviance.weights)
            opt = optimize_theta(dev, start=fit.theta)
            cached = type(fit)(dev, opt)
        fit._profiles["ml_refit"] = cached
    return cached
