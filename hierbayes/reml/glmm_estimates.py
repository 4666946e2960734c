"""A GLMM at its Laplace optimum: the fixed effects' covariance, the modes, separation.

`glmm_optimum` is the GLMM counterpart of `estimates.lmm_optimum`: both return the
`estimates.Optimum` that `results.RemlFit`'s one constructor stores. `vcov` is lme4's default for
glmer, twice the inverse Hessian of the deviance in (θ, β), its β block ("Hessian"), or, when that
Hessian is not positive definite, the conditional (XᵀWX − RZXᵀRZX)⁻¹ ("RX"). Conditional SDs of the
modes come from ΛM⁻¹Λᵀ at the mode, as lme4's condVar. No residual SD: `sigma` is None and θ is
on the link scale (`sd_scale` 1).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve

from .estimates import Estimates, Optimum, random_effects
from .glmm_optimize import hessian_vcov
from .laplace import LaplaceDeviance
from .optimize import OptimResult
from .separation import separated_terms

# Below this many rows the separation LP is always run (it takes a few ms); above, only when the
# fit shows its symptoms (0.1 s at 50,000 rows with continuous covariates).
ALWAYS_CHECK_ROWS = 10_000
# A fixed effect whose contribution to η reaches this many units (e^8 ≈ 3,000 in odds or rate
# ratio) is a symptom: separated estimates run off until the likelihood is flat (|η| ≳ 15).
RUNAWAY_ETA = 8.0


def glmm_optimum(dev: LaplaceDeviance, opt: OptimResult) -> Optimum:
    state = dev.state(opt.par)
    vcov_rx = _rx_covariance(state)
    V = hessian_vcov(dev, opt.par)
    dev.state(opt.par)  # leave the deviance at the optimum
    vcov, source = (V, "Hessian") if V is not None else (vcov_rx, "RX")
    random = random_effects(dev.design, state.layout, dev.thetas.templates(state.theta),
                            state.u, state.factor, 1.0)
    est = Estimates(beta=state.beta.copy(), vcov=vcov, sigma=None, **random)
    check = _worth_checking(dev.design.X, est.beta, vcov, source)
    return Optimum(state=state, criterion=float(state.criterion), estimates=est,
                   family=dev.family.name, link=dev.family.link, vcov_source=source,
                   vcov_rx=vcov_rx, sigma_known=False, sd_scale=1.0, laplace=dev.laplace,
                   dispersion=opt.dispersion,
                   separated=tuple(separated_terms(dev.design)) if check else ())


def _rx_covariance(state) -> np.ndarray:
    """(XᵀWX − RZXᵀRZX)⁻¹: the fixed effects' covariance with θ taken as known."""
    RX = state.RX
    return cho_solve((RX, True), np.eye(RX.shape[0]), check_finite=False)


def _worth_checking(X: np.ndarray, beta: np.ndarray, vcov: np.ndarray, source: str) -> bool:
    """Run the separation LP? Always for small data; else only when an estimate ran away, its SE
    exploded or the Hessian was not positive definite."""
    if X.shape[0] <= ALWAYS_CHECK_ROWS or source != "Hessian":
        return True
    reach = np.max(np.abs(X), axis=0)
    se = np.sqrt(np.abs(np.diag(vcov)))
    return bool(np.any(np.abs(beta) * reach > RUNAWAY_ETA)
                or np.any(se * reach > RUNAWAY_ETA) or not np.all(np.isfinite(beta)))
