"""A fit's criterion as a function of its variance parameters on the SD/correlation scale.

`SdCorCriterion(fit, coords)` evaluates, at φ (sdcor.Coordinates), the criterion the fit
minimised, with every parameter that is not a variance parameter profiled out as in the fit:

- REML / ML (σ estimated): log|M| + [log|RX|²] + r²/σ² + dof·log(2πσ²) − Σ log w at θ(φ) and
  σ = σ̂·e^ℓ (β profiled out: integrated for REML, maximised for ML). At σ = σ̂ this is the
  profiled criterion, so its minimum is the fit's `criterion`. This is lme4's `devfun2` (which
  profiles the ML deviance only) extended to the REML criterion.
- known residual SDs: the fit's own criterion at θ(φ) (σ is not a parameter).
- GLMMs: the Laplace deviance at (θ(φ), β), β being φ's extra coordinates, and for the negative
  binomial also log α (lme4 profiles glmer fits in (θ, β) the same way).

`value_and_gradient` is analytic where the fit's criterion has an analytic gradient in θ (chain
rule through the cheap map φ → θ), else None and callers use differences.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .negbin import LOG_ALPHA_BOUNDS, WithDispersion
from .pls import criterion
from .sdcor import Coordinates


class SdCorCriterion:
    def __init__(self, fit, coords: Coordinates):
        self.fit, self.coords, self.dev = fit, coords, fit.deviance
        self.glmm = fit.method == "Laplace"
        self.negbin = fit.dispersion is not None
        self.evaluate = WithDispersion(self.dev) if self.negbin else self.dev
        self.has_gradient = bool(self.dev.has_gradient)
        self.lower, self.upper = coords.lower, coords.upper
        if self.negbin:
            self.lower[-1], self.upper[-1] = LOG_ALPHA_BOUNDS

    def start(self) -> np.ndarray:
        """φ at the fit's optimum."""
        fit = self.fit
        extra = []
        if self.glmm:
            extra = list(fit.beta) + ([np.log(fit.dispersion)] if self.negbin else [])
        return self.coords.from_theta(fit.theta, extra)

    def _par(self, phi: np.ndarray) -> tuple[np.ndarray, float]:
        """The fit criterion's own argument at φ (θ, or (θ, β[, log α])) and s/ŝ."""
        theta, ratio = self.coords.theta(phi)
        if self.glmm:
            return np.concatenate([theta, phi[self.coords.n_psi:]]), ratio
        return theta, ratio

    def __call__(self, phi) -> float:
        phi = np.asarray(phi, float)
        par, ratio = self._par(phi)
        if self.glmm or not self.coords.has_sigma:
            return float(self.evaluate(par))
        state = self.dev.state(par)
        return self._sigma_criterion(state, ratio)

    def _sigma_criterion(self, state, ratio: float) -> float:
        layout = self.dev.layout
        s2 = (self.coords.scale * ratio) ** 2
        return criterion(state.logdet_M, state.logdet_X, state.r2, layout.n, layout.p,
                         self.dev.method, s2) - layout.log_weights

    def value_and_gradient(self, phi) -> tuple[float, np.ndarray]:
        phi = np.asarray(phi, float)
        par, ratio = self._par(phi)
        J = self.coords.theta_jacobian(phi)
        n_theta = J.shape[0]
        if self.glmm:
            g_par = self.dev.gradient(par)
            grad = J.T @ g_par[:n_theta]
            grad[self.coords.n_psi:] += g_par[n_theta:]
            return float(self.dev(par)), grad
        state = self.dev.state(par)
        if not self.coords.has_sigma:
            return float(state.criterion), J.T @ self.dev.gradient(par)
        layout, method = self.dev.layout, self.dev.method
        s2 = (self.coords.scale * ratio) ** 2
        # The backend's gradient with σ² held at s2 (its r² term is divided by that σ²).
        g_theta = self.dev.backend.gradient(replace(state, sigma2_fixed=s2), method)
        grad = J.T @ g_theta
        dof = layout.n - layout.p if method == "REML" else layout.n
        grad[self.coords.n_psi - 1] += 2.0 * dof - 2.0 * state.r2 / s2  # ∂/∂ℓ at fixed θ
        return self._sigma_criterion(state, ratio), grad

    def restore(self) -> None:
        """Leave the fit's criterion at its optimum (and the negative binomial's α at α̂)."""
        if self.negbin:
            self.dev.set_dispersion(self.fit.dispersion)
        self.dev.state(self.fit.optim.par)
