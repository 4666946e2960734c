"""The Laplace deviance of a GLMM as a function of (θ, β): lme4's glmer devfun (nAGQ = 1).

`make_deviance(design, "Laplace")` returns a `LaplaceDeviance`. Called with par = (θ, β) (θ in
lme4's order, then β in the design's column order) it returns

    −2 log p(y | û) + ‖û‖² + log|ΛᵀZᵀWZΛ + I|,

û the conditional mode from PIRLS and W the working weights there: the Laplace approximation of
−2 log-likelihood, with the binomial / Poisson constants, i.e. −2 × lme4's logLik. `profiled(θ)`
is lme4's first stage (nAGQ = 0): the same quantity at the joint mode of (β, u) for θ alone.
`gradient` is analytic for a canonical link with one grouping factor (laplace_grad) or several
of scalar blocks (laplace_grad_crossed), else by central differences, which PIRLS's tight
tolerance makes accurate.

`Lme4LaplaceDeviance` (fit_reml(..., laplace="lme4")) is glmer's own devfun instead: PIRLS
restarted from the stage-1 η and stopped early, log|L|² from the weights one step before û
(pirls.Pirls.solve_lme4). It is not the exact Laplace value (5.7e-4 higher on cbpp) but it is
what lme4 optimises and differentiates, so it reproduces lme4's published numbers.
"""

from __future__ import annotations

import numpy as np

from ..design import Design
from ..errors import HierbayesError
from .glmfamily import GlmFamily
from .laplace_grad import laplace_gradient, profiled_gradient
from .laplace_grad_crossed import RowPattern
from .laplace_grad_crossed import applies as crossed_applies
from .optimize import fd_gradient
from .pirls import Pirls, PirlsState
from .schur import dense_schur_fits
from .theta import ThetaLayout, theta_layout

# fit_reml's `laplace`: the exact approximation (glmmTMB's value) or glmer's (lme4's value).
LAPLACE_MODES = ("exact", "lme4")


class LaplaceDeviance:
    """The Laplace-approximated deviance of one GLMM design."""

    method = "Laplace"
    laplace = "exact"
    relative_hessian_step = True

    def __init__(self, design: Design, link: str | None = None, weights=None):
        if design.known_sigma is not None:
            raise HierbayesError(
                f"Known residual SDs (known_sigma) apply to Gaussian models only; the "
                f"{design.family.name!r} family has no residual SD."
            )
        self.design = design
        self.weights = weights  # prior weights (checked by the caller), or None
        self.family = GlmFamily(design, link, weights)
        self.thetas: ThetaLayout = theta_layout(design)
        self.pirls = Pirls(design, self.thetas, self.family)
        self.layout = self.pirls.base
        self.n_theta, self.p = self.thetas.n_theta, design.X.shape[1]
        # The analytic gradient covers canonical links with one grouping factor, or several
        # grouping factors of scalar blocks (laplace_grad_crossed).
        crossed = crossed_applies(self.layout) and dense_schur_fits(self.layout)
        self.crossed_rows = RowPattern(self.layout) if crossed else None
        self.has_gradient = self.family.canonical and (self.pirls.single
                                                       or self.crossed_rows is not None)
        self.beta_start = self.family.start(design.X, design.offset)
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
            self._last = self._solve(theta, beta)
        return self._last

    def _solve(self, theta: np.ndarray, beta: np.ndarray) -> PirlsState:
        return self.pirls.solve(theta, beta=beta)

    def __call__(self, par) -> float:
        return self.state(par).criterion

    def profiled_state(self, theta) -> PirlsState:
        """Stage 1: β and u at their joint mode for this θ (lme4's nAGQ = 0 deviance)."""
        theta, _ = self.split(np.concatenate([np.asarray(theta, float), self.beta_start]))
        self.n_evaluations += 1
        state = self.pirls.solve(theta, beta_start=self.beta_start)
        if np.isfinite(state.criterion):  # a failed solve is no start for the next one
            self.beta_start = state.beta
        return state

    def profiled(self, theta) -> float:
        return self.profiled_state(theta).criterion

    def profiled_value_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """Stage 1's deviance and its analytic gradient in θ (has_gradient models only)."""
        state = self.profiled_state(theta)
        if not np.isfinite(state.criterion):
            return np.inf, np.zeros(self.n_theta)
        return state.criterion, profiled_gradient(self, state)

    def gradient(self, par) -> np.ndarray:
        """∂f/∂(θ, β): analytic where `has_gradient`, else central differences. At a failed
        evaluation (+inf, see pirls.Pirls.solve) 0: L-BFGS-B backs off on the value alone."""
        if self.has_gradient:
            state = self.state(par)
            if not np.isfinite(state.criterion):
                return np.zeros(self.n_theta + self.p)
            return laplace_gradient(self, state)
        return fd_gradient(self, np.asarray(par, float), self.lower_bounds)

    def value_and_gradient(self, par) -> tuple[float, np.ndarray]:
        return self(par), self.gradient(par)


class Lme4LaplaceDeviance(LaplaceDeviance):
    """lme4's glmer devfun (nAGQ = 1): the deviance at the modes of pirls.solve_lme4, started
    from `lp0`, the η of the last stage-1 (`profiled_state`) evaluation, as glmer's is. Its
    early stop makes it smooth only to ~1e-7, so gradients are central differences, and the
    Hessian step is lme4's deriv12's, an absolute 1e-4."""

    laplace = "lme4"
    relative_hessian_step = False

    def __init__(self, design: Design, link: str | None = None, weights=None):
        super().__init__(design, link, weights)
        self.has_gradient = False
        self.lp0: np.ndarray | None = None

    def profiled_state(self, theta) -> PirlsState:
        state = super().profiled_state(theta)
        self.lp0, self._last = state.eta, None  # the stage-2 function starts from here
        return state

    def _solve(self, theta: np.ndarray, beta: np.ndarray) -> PirlsState:
        if self.lp0 is None:
            raise HierbayesError(
                "The lme4-compatible deviance starts PIRLS from the θ-only stage's linear "
                "predictor: call profiled_state(θ) (stage 1) before evaluating it at (θ, β)."
            )
        return self.pirls.solve_lme4(theta, beta, self.lp0)


def check_laplace(laplace, family: str) -> None:
    """fit_reml's `laplace`: one of LAPLACE_MODES; "lme4" only where glmer applies. A Gaussian
    model is rejected rather than silently ignored: its REML/ML criterion is exact (no Laplace
    step) and already lmer's, so asking for lme4's Laplace evaluation there is a mistake."""
    if not isinstance(laplace, str) or laplace not in LAPLACE_MODES:
        raise HierbayesError(
            f"laplace must be 'exact' (the Laplace approximation at the exact conditional mode: "
            f"glmmTMB's value) or 'lme4' (glmer's own evaluation, to reproduce lme4's published "
            f"numbers); got laplace={laplace!r}."
        )
    if laplace == "lme4" and family in ("gaussian", "negative_binomial", "gamma"):
        why = ("a Gaussian identity-link fit has no Laplace approximation: its REML/ML "
               "criterion is exact and already lmer's; and families with a dispersion are "
               "fitted with the exact Laplace value only" if family == "gaussian" else
               f"the {family.replace('_', ' ')} family is fitted with the exact Laplace value "
               "only")
        raise HierbayesError(f"laplace='lme4' does not apply here: {why}. Leave laplace out.")


def laplace_deviance(design: Design, link: str | None = None, laplace: str = "exact",
                     weights=None) -> LaplaceDeviance:
    """The deviance for fit_reml's `laplace` mode (checked by the caller)."""
    kind = Lme4LaplaceDeviance if laplace == "lme4" else LaplaceDeviance
    return kind(design, link, weights)
