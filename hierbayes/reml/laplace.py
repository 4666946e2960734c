"""The Laplace deviance of a GLMM as a function of (θ, β): lme4's glmer devfun (nAGQ = 1).

`make_deviance(design, "Laplace")` returns a `LaplaceDeviance`. Called with par = (θ, β) (θ in
lme4's order, then β in the design's column order) it returns

    −2 log p(y | û) + ‖û‖² + log|ΛᵀZᵀWZΛ + I|,

û the conditional mode from PIRLS and W the working weights there: the Laplace approximation of
−2 log-likelihood, with the binomial / Poisson constants, i.e. −2 × lme4's logLik. `profiled(θ)`
is lme4's first stage (nAGQ = 0): the same quantity at the joint mode of (β, u) for θ alone.
`gradient` is analytic for one grouping factor and a canonical link (laplace_grad), else by
central differences, which PIRLS's tight tolerance makes accurate.
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from ..errors import HierbayesError
from .glmfamily import GlmFamily
from .laplace_grad import laplace_gradient, profiled_gradient
from .pirls import Pirls, PirlsState
from .theta import ThetaLayout, theta_layout

# Relative step of the central differences (the deviance is smooth to ~1e-11, see pirls.TOL).
FD_STEP = 1e-5


class LaplaceDeviance:
    """The Laplace-approximated deviance of one GLMM design."""

    method = "Laplace"

    def __init__(self, design: Design, link: str | None = None):
        if design.known_sigma is not None:
            raise HierbayesError(
                f"Known residual SDs (known_sigma) apply to Gaussian models only; the "
                f"{design.family.name!r} family has no residual SD."
            )
        self.design = design
        self.family = GlmFamily(design, link)
        self.thetas: ThetaLayout = theta_layout(design)
        self.pirls = Pirls(design, self.thetas, self.family)
        self.layout = self.pirls.base
        self.n_theta, self.p = self.thetas.n_theta, design.X.shape[1]
        # The analytic gradient covers the block-diagonal backend and canonical links.
        self.has_gradient = self.pirls.single and self.family.canonical
        self.beta_start = self.family.start(design.X)
        self._last: PirlsState | None = None
        self.n_evaluations = 0

    def set_dispersion(self, alpha: float) -> None:
        """The negative binomial's α for the following evaluations (negbin.py's outer loop)."""
        self.family.alpha = float(alpha)
        self._last = None

    @property
    def lower_bounds(self) -> np.ndarray:
        """Bounds of par = (θ, β): diagonals of θ at 0, the rest free."""
        return np.concatenate([self.thetas.lower_bounds, np.full(self.p, -np.inf)])

    def split(self, par) -> tuple[np.ndarray, np.ndarray]:
        par = np.array(par, dtype=float).reshape(-1)  # a copy: states keep θ and β
        if par.shape != (self.n_theta + self.p,):
            raise HierbayesError(
                f"par has {par.size} values; this model has {self.n_theta} θ "
                f"({', '.join(self.thetas.names)}) and {self.p} fixed effects "
                f"({', '.join(self.design.fixed_names)})."
            )
        theta, beta = par[:self.n_theta], par[self.n_theta:]
        if np.any(theta < self.thetas.lower_bounds):
            raise HierbayesError("The diagonal entries of θ (the relative SDs) must be >= 0.")
        return theta, beta

    def state(self, par) -> PirlsState:
        theta, beta = self.split(par)
        last = self._last
        if last is None or not (np.array_equal(last.theta, theta)
                                and np.array_equal(last.beta, beta)):
            self.n_evaluations += 1
            self._last = self.pirls.solve(theta, beta=beta)
        return self._last

    def __call__(self, par) -> float:
        return self.state(par).criterion

    def profiled_state(self, theta) -> PirlsState:
        """Stage 1: β and u at their joint mode for this θ (lme4's nAGQ = 0 deviance)."""
        theta, _ = self.split(np.concatenate([np.asarray(theta, float), self.beta_start]))
        self.n_evaluations += 1
        state = self.pirls.solve(theta, beta_start=self.beta_start)
        self.beta_start = state.beta
        return state

    def profiled(self, theta) -> float:
        return self.profiled_state(theta).criterion

    def profiled_value_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """Stage 1's deviance and its analytic gradient in θ (has_gradient models only)."""
        state = self.profiled_state(theta)
        return state.criterion, profiled_gradient(self, state)

    def gradient(self, par) -> np.ndarray:
        if self.has_gradient:
            return laplace_gradient(self, self.state(par))
        return fd_gradient(self, np.asarray(par, float), self.lower_bounds)

    def value_and_gradient(self, par) -> tuple[float, np.ndarray]:
        return self(par), self.gradient(par)


def fd_gradient(f, x: np.ndarray, lower: np.ndarray, step: float = FD_STEP,
                f0: float | None = None) -> np.ndarray:
    """Central differences; one-sided (inwards) where x is within a step of its lower bound.
    With `step` below 1e-6 and f0 = f(x) given: forward differences (half the evaluations, for
    a stage whose optimum need not be exact)."""
    h = step * np.maximum(1.0, np.abs(x))
    out = np.empty_like(x)
    if f0 is not None and step < 1e-6:
        for j in range(x.size):
            up = x.copy()
            up[j] += h[j]
            out[j] = (f(up) - f0) / h[j]
        return out
    for j in range(x.size):
        up, down = x.copy(), x.copy()
        up[j] += h[j]
        down[j] -= h[j]
        if down[j] >= lower[j]:
            out[j] = (f(up) - f(down)) / (2 * h[j])
            continue
        if f0 is None:
            f0 = f(x)
        up2 = x.copy()
        up2[j] += 2 * h[j]
        # Second-order one-sided difference: as accurate as the central one.
        out[j] = (-3 * f0 + 4 * f(up) - f(up2)) / (2 * h[j])
    return out
