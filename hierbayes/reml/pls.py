"""Penalized least squares at fixed θ and the profiled criteria (Bates et al. 2015, §3).

With M = ΛᵀZᵀZΛ + I = L Lᵀ, a backend supplies log|M| and the forward solves
cu = L⁻¹ΛᵀZᵀy and RZX = L⁻¹ΛᵀZᵀX. Then XᵀV⁻¹X = XᵀX − RZXᵀRZX = RX RXᵀ, β solves it, the
penalized residual sum of squares is r² = yᵀy − |cu|² − |cβ|², and

    REML:  log|M| + log|RX|² + r²/σ² + (n−p)·log(2π σ²)
    ML:    log|M| + r²/σ² + n·log(2π σ²)

(minus Σ log w_i with prior weights). Usually σ is profiled out (σ̂² = r²/(n−p) or r²/n, which
turns r²/σ² into n−p or n) and β too, so both are functions of θ alone. With known residual SDs
(meta-analysis) σ is not a parameter: it is fixed at a known value σ0 (the weights carry the
SDs, w_i = σ0²/s_i²) and the same formulas hold with σ = σ0; Λθ is then relative to σ0.
Nothing here depends on the Gaussian family beyond y: a GLMM's Laplace step can call the same
backends with weighted cross-products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

METHODS = ("REML", "ML")
_LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, eq=False)
class PLSState:
    """Everything known at one θ; `beta` is relative to the layout's OLS β."""

    theta: np.ndarray
    factor: object  # the backend's factor (logdet, cu, RZX, backward, inverse_blocks)
    RX: np.ndarray  # (p, p) lower Cholesky factor of XᵀV⁻¹X (relative to σ²)
    beta: np.ndarray  # (p,)
    r2: float  # penalized residual sum of squares
    logdet_M: float
    logdet_X: float
    criterion: float
    sigma2_fixed: float | None = None  # σ0² when σ is known, else None (σ profiled)


def profiled(layout, factor, theta: np.ndarray, method: str,
             sigma2_fixed: float | None = None) -> PLSState:
    """Solve the PLS problem given the backend's factor and profile out β and σ (β only when
    `sigma2_fixed` gives σ²)."""
    RZX, cu = factor.RZX, factor.cu
    C = layout.XtX - RZX.T @ RZX
    # A model without fixed effects (y ~ 0 + ...) has p = 0: nothing to factor.
    RX = cholesky(C, lower=True, check_finite=False) if C.size else C
    cbeta = solve_triangular(RX, layout.Xty - RZX.T @ cu, lower=True, check_finite=False)
    beta = solve_triangular(RX, cbeta, lower=True, trans="T", check_finite=False)
    # Clipped: at a perfect fit r² would be a rounding error of either sign.
    r2 = max(layout.yty - cu @ cu - cbeta @ cbeta, 1e-300)
    logdet_X = 2.0 * float(np.log(np.diag(RX)).sum())
    crit = criterion(factor.logdet, logdet_X, r2, layout.n, layout.p, method, sigma2_fixed)
    return PLSState(np.array(theta, float), factor, RX, beta, r2, factor.logdet, logdet_X,
                    crit - layout.log_weights, sigma2_fixed)


def criterion(logdet_M: float, logdet_X: float, r2: float, n: int, p: int, method: str,
              sigma2_fixed: float | None = None) -> float:
    dof = n - p if method == "REML" else n
    if sigma2_fixed is None:  # profiled: r²/σ̂² is exactly dof
        return logdet_M + (logdet_X if method == "REML" else 0.0) + dof * (
            1.0 + _LOG_2PI + np.log(r2 / dof))
    return (logdet_M + (logdet_X if method == "REML" else 0.0) + r2 / sigma2_fixed
            + dof * (_LOG_2PI + np.log(sigma2_fixed)))


def sigma2(state: PLSState, n: int, p: int, method: str) -> float:
    """σ̂², or the known σ0². The gradients' r² term is scaled by its inverse (dof/r² when σ is
    profiled), so one formula serves both cases."""
    if state.sigma2_fixed is not None:
        return state.sigma2_fixed
    return state.r2 / (n - p if method == "REML" else n)


def spherical_modes(state: PLSState) -> np.ndarray:
    """u = L⁻ᵀ(cu − RZX β): the spherical random effects (b = Λu)."""
    factor = state.factor
    return factor.backward(factor.cu - factor.RZX @ state.beta)


def beta_covariance(state: PLSState) -> np.ndarray:
    """(XᵀV⁻¹X)⁻¹, to be multiplied by σ²."""
    return cho_solve((state.RX, True), np.eye(state.RX.shape[0]), check_finite=False)
