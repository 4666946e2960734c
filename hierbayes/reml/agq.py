"""Adaptive Gauss–Hermite quadrature (lme4's nAGQ > 1) for a GLMM with one scalar random effect.

With a single grouping factor and one term per level the marginal likelihood is a product of
one-dimensional integrals, one per level l:

    p(y_l) = ∫ p(y_l | η(u)) φ(u) du,   η_i(u) = x_iβ + λ z_i u   (u standard normal).

With g_l(u) = −2 log p(y_l | η(u)) + u² and the conditional mode û_l (PIRLS), the integrand is
centred at û_l and scaled by s_l = M_l^(−1/2), M_l = 1 + λ²Σ_{i∈l} w_i z_i² (the curvature
g_l''/2 at û_l with the working weights there, as lme4 takes it from its Cholesky factor). With
the K probabilists' Gauss–Hermite nodes z_k and weights ω_k (Σω_k = 1 after dividing by √(2π)):

    −2 log p(y_l) ≈ log M_l − 2 log Σ_k ω_k exp(z_k²/2 − g_l(û_l + s_l z_k)/2).

K = 1 (z = 0, ω = 1) is the Laplace approximation, log M_l + g_l(û_l). The deviance is the sum over
levels, constants included: −2 × lme4's logLik. (lme4 prints as its "deviance" the same quantity
with the saturated model's −2 log-likelihood subtracted; tests/test_glmm_agq.py checks both.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.special import logsumexp

from ..design import Design
from ..errors import HierbayesError
from .laplace import LaplaceDeviance
from .pirls import PirlsState

MAX_NAGQ = 100


@dataclass(frozen=True, eq=False)
class AGQState(PirlsState):
    """A PIRLS state whose criterion is the quadrature value, not the Laplace one."""

    agq: float = np.nan

    @property
    def criterion(self) -> float:
        return self.agq


def check_nagq(nagq, design: Design) -> int:
    """nAGQ: an integer >= 1; above 1 only for one grouping factor with one scalar term."""
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or not (
            1 <= nagq <= MAX_NAGQ):
        raise HierbayesError(
            f"nagq must be an integer from 1 (the Laplace approximation) to {MAX_NAGQ} "
            f"(adaptive Gauss-Hermite quadrature nodes); got nagq={nagq!r}."
        )
    if nagq > 1 and not (len(design.blocks) == 1 and design.blocks[0].n_terms == 1):
        terms = ", ".join(b.source for b in design.blocks)
        raise HierbayesError(
            f"nagq > 1 (adaptive Gauss-Hermite quadrature) needs a single scalar random effect "
            f"such as '(1 | g)', as in lme4; this model has {terms}. Use nagq=1 (Laplace)."
        )
    return int(nagq)


class AGQDeviance(LaplaceDeviance):
    """The adaptive Gauss–Hermite deviance of (θ, β) (see the module docstring); central
    differences for its gradient."""

    def __init__(self, design: Design, link: str | None = None, nagq: int = 2, weights=None):
        super().__init__(design, link, weights)
        self.nagq = check_nagq(nagq, design)
        self.has_gradient = False
        z, w = np.polynomial.hermite_e.hermegauss(self.nagq)
        self.nodes = z
        self.log_weights = np.log(w / np.sqrt(2.0 * np.pi)) + 0.5 * z * z

    def _solve(self, theta: np.ndarray, beta: np.ndarray) -> PirlsState:
        state = self.pirls.solve(theta, beta=beta)
        if not np.isfinite(state.criterion):
            return state
        values = {f.name: getattr(state, f.name) for f in fields(PirlsState)}
        return AGQState(**values, agq=self.quadrature(state))

    def quadrature(self, state: PirlsState) -> float:
        group = self.layout.groups[0]
        lam = float(state.theta[0])
        index, z = group.index, group.Z[:, 0]
        s = state.factor.Linv[:, 0, 0]  # M_l^(−1/2)
        u_hat = state.u
        eta_fixed = state.eta - lam * z * u_hat[index]
        u = u_hat[None, :] + s[None, :] * self.nodes[:, None]  # (K, L)
        eta = eta_fixed[None, :] + lam * z[None, :] * u[:, index]  # (K, n)
        rows = self.family.minus2loglik_rows(eta)
        g = np.stack([np.bincount(index, weights=r, minlength=group.n_levels) for r in rows])
        g += u * u
        lse = logsumexp(self.log_weights[:, None] - 0.5 * g, axis=0)  # (L,)
        log_M = -2.0 * np.log(s)
        value = float(np.sum(log_M - 2.0 * lse))
        return value if np.isfinite(value) else np.inf
