"""The profiled criterion as a function of θ alone: lme4's `mkLmerDevfun` stage.

`make_deviance(design, "REML")` returns a callable `dev(theta) -> float` (the REML criterion, or
the ML deviance with "ML") that tests can evaluate at any θ, plus `dev.state(theta)` with the full
PLS solution and `dev.gradient(theta)` (analytic with one grouping factor, else None).

A design with known residual SDs s_i (`make_design(..., known_sigma=column)`: meta-analysis) gets
the same criterion with σ fixed instead of profiled: σ0 = median(s_i) and prior weights
w_i = σ0²/s_i², so var(e_i) = σ0²/w_i = s_i². σ0 is a scale, not a parameter: it keeps Λθ
relative to a typical SD, so lme4's start (θ = 1), the optimiser's tolerances and the singular
rule (θ < 1e-4, i.e. an SD below 1e-4·median(s)) mean what they mean for an ordinary fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design import Design
from ..errors import HierbayesError
from .ai import ai_hessian
from .backends import choose_backend
from .laplace import LaplaceDeviance
from .layout import Layout, make_layout
from .pls import METHODS, PLSState, profiled
from .theta import ThetaLayout, theta_layout


class Deviance:
    """The profiled REML criterion or ML deviance of one design."""

    def __init__(self, design: Design, method: str = "REML", weights=None):
        check_method(method)
        check_gaussian(design)
        self.design, self.method = design, method
        self.weights = check_weights(weights, design)
        # σ0 (known residual SDs) or None (σ profiled); see the module docstring.
        self.sigma_fixed, row_weights = known_sigma_weights(design, self.weights)
        self.thetas: ThetaLayout = theta_layout(design)
        self.layout: Layout = make_layout(design, row_weights)
        self.backend = choose_backend(self.layout)(self.layout, self.thetas)
        self._last: PLSState | None = None
        self.n_evaluations = 0

    @property
    def sigma2_fixed(self) -> float | None:
        return None if self.sigma_fixed is None else self.sigma_fixed ** 2

    @property
    def has_gradient(self) -> bool:
        return bool(self.backend.has_gradient)

    def state(self, theta) -> PLSState:
        theta = self._check(theta)
        if self._last is None or not np.array_equal(self._last.theta, theta):
            self.n_evaluations += 1
            factor = self.backend.evaluate(theta)
            self._last = profiled(self.layout, factor, theta, self.method, self.sigma2_fixed)
        return self._last

    def __call__(self, theta) -> float:
        return self.state(theta).criterion

    def gradient(self, theta) -> np.ndarray | None:
        if not self.has_gradient:
            return None
        return self.backend.gradient(self.state(theta), self.method)

    def ai_hessian(self, theta) -> np.ndarray:
        """The average-information approximation of the criterion's Hessian in θ (ai.py)."""
        return ai_hessian(self, self.state(theta))

    def value_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        state = self.state(theta)
        return state.criterion, self.backend.gradient(state, self.method)

    def _check(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float).reshape(-1)
        if theta.shape != (self.thetas.n_theta,):
            raise HierbayesError(
                f"θ has {theta.size} values; this model has {self.thetas.n_theta}: "
                f"{', '.join(self.thetas.names)}."
            )
        if np.any(theta < self.thetas.lower_bounds):
            raise HierbayesError("The diagonal entries of θ (the relative SDs) must be >= 0.")
        return theta


def make_deviance(design: Design, method: str = "REML", weights=None, link: str | None = None):
    """The profiled criterion of `design` as a function of θ (lme4's θ order, design blocks).

    `weights`: optional prior weights, var(e_i) = σ²/w_i as in lme4 (one per row of the design).
    When the design has known residual SDs (`design.known_sigma`) σ is not estimated: the
    criterion is the REML or ML one with var(e_i) = s_i² (see the module docstring).
    With method "Laplace" (bernoulli, binomial and poisson designs) it is the Laplace deviance of
    a GLMM as a function of (θ, β) instead: see hierbayes.reml.laplace.
    """
    if method == "Laplace":
        return LaplaceDeviance(design, link, check_weights(weights, design))
    return Deviance(design, method, weights)


def check_weights(weights, design: Design) -> np.ndarray | None:
    """Weights aligned with the design's rows: an array of n_obs values, or a Series indexed like
    the caller's data (rows the design dropped are dropped here too)."""
    if weights is None:
        return None
    if design.moments is not None:
        raise HierbayesError("Prior weights are not supported for a Dask frame: fit a pandas "
                             "frame, or fold the weights into the data.")
    if isinstance(weights, pd.Series):
        weights = weights.reindex(design.row_labels)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.shape != (design.n_obs,):
        raise HierbayesError(
            f"weights has {w.size} values; the design has {design.n_obs} rows (pass one weight "
            "per used row, or a Series indexed like the data)."
        )
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise HierbayesError("weights must be finite and > 0 (var(e_i) = σ²/w_i).")
    return w


def known_sigma_weights(design: Design, weights: np.ndarray | None):
    """(σ0, the layout's row weights): σ0 = median of the known SDs and w_i = σ0²/s_i², or
    (None, `weights`) when the design has no known SDs and σ is estimated."""
    s = design.known_sigma
    if s is None:
        return None, weights
    if weights is not None:
        raise HierbayesError(
            "Prior weights and known residual SDs (known_sigma) both set var(e_i): give the SDs "
            "only (fold any weights into them as s_i/√w_i)."
        )
    sigma0 = float(np.median(s))
    return sigma0, (sigma0 / np.asarray(s, dtype=float)) ** 2


def check_method(method: str) -> None:
    if method not in METHODS:
        valid = ", ".join(map(repr, METHODS))
        raise HierbayesError(f"method must be one of {valid}, got {method!r}.")


def check_gaussian(design: Design) -> None:
    if design.family.name != "gaussian":
        raise HierbayesError(
            f"The profiled REML/ML criterion is for Gaussian models; the {design.family.name!r} "
            "family is fitted by the Laplace approximation: make_deviance(design, 'Laplace') "
            "or fit_reml(..., family=...)."
        )
