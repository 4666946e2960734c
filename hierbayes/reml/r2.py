"""Variance explained by a mixed model: Nakagawa's marginal / conditional R² and the ICC.

Nakagawa & Schielzeth (2013), with Johnson's (2014) extension to random slopes, as the R package
performance and mixedlm compute them (the reference in the tests):

- fixed: the sample variance (n − 1) of the fixed part of the linear predictor, Xβ (plus the
  offset, as mixedlm counts it);
- random: per grouping factor, the mean over the observations of z_iᵀΣz_i, Σ its blocks'
  covariance (random slopes count at the covariates' values, correlations included);
- residual: for Gaussian fits σ² times the mean of 1/w (prior weights), or the mean known
  variance; for GLMMs the distribution-specific variance on the link scale: π²/3 (logit),
  1 (probit), π²/6 (cloglog) for binomial responses ("theoretical"); for log links
  log(1 + V(μ)/μ²) averaged over the observations at the conditional means μ ("lognormal", the
  default; Poisson: log(1 + 1/μ); negative binomial: log(1 + 1/μ + 1/α)) or V(μ)/μ² ("delta").

marginal R² = fixed / total, conditional R² = (fixed + random) / total; the adjusted ICC is
random / (random + residual), the unadjusted one random / total. All on the link scale, all
plug-in point estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HierbayesError

APPROXIMATIONS = ("lognormal", "delta", "theoretical")
_BINOMIAL_LINK_VARIANCE = {"logit": np.pi ** 2 / 3, "probit": 1.0, "cloglog": np.pi ** 2 / 6}


@dataclass(frozen=True)
class VarianceExplained:
    """The variance decomposition behind R² and the ICC (see the module docstring)."""

    fixed: float
    random: float
    residual: float
    random_by_group: dict[str, float]
    approximation: str  # "gaussian", "theoretical", "lognormal" or "delta"

    @property
    def total(self) -> float:
        return self.fixed + self.random + self.residual

    @property
    def r2_marginal(self) -> float:
        return _ratio(self.fixed, self.total)

    @property
    def r2_conditional(self) -> float:
        return _ratio(self.fixed + self.random, self.total)

    @property
    def icc_adjusted(self) -> float:
        return _ratio(self.random, self.random + self.residual)

    @property
    def icc_unadjusted(self) -> float:
        return _ratio(self.random, self.total)

    def icc_by_group(self, adjusted: bool = True) -> dict[str, float]:
        denominator = self.random + self.residual if adjusted else self.total
        return {g: _ratio(v, denominator) for g, v in self.random_by_group.items()}


def variance_explained(fit, approximation: str = "lognormal") -> VarianceExplained:
    if approximation not in APPROXIMATIONS:
        raise HierbayesError(
            f"approximation must be one of {', '.join(map(repr, APPROXIMATIONS))}; got "
            f"{approximation!r}."
        )
    design = fit.design
    if design.moments is not None:  # from a Dask frame (gaussian): from the sums
        from ..bigdata.summaries import variance_parts

        fixed, by_group = variance_parts(fit)
        residual, used = _residual(fit, None, approximation)
        return VarianceExplained(fixed, float(sum(by_group.values())), residual, by_group, used)
    eta_fixed = design.X @ fit.beta + (0.0 if design.offset is None else design.offset)
    fixed = float(np.var(eta_fixed - eta_fixed[0], ddof=1)) if eta_fixed.size > 1 else 0.0
    by_group: dict[str, float] = {}
    for block in design.blocks:
        cov = fit.covariance[block.name]
        share = float(np.mean(np.einsum("ia,ab,ib->i", block.Z, cov, block.Z)))
        by_group[block.group] = by_group.get(block.group, 0.0) + max(share, 0.0)
    residual, used = _residual(fit, eta_fixed, approximation)
    return VarianceExplained(max(fixed, 0.0), float(sum(by_group.values())), residual, by_group,
                             used)


def _residual(fit, eta_fixed: np.ndarray, approximation: str) -> tuple[float, str]:
    design = fit.design
    if fit.method != "Laplace":
        if fit.sigma is None:  # known residual SDs
            return float(np.mean(design.known_sigma ** 2)), "gaussian"
        weights = fit.deviance.weights
        inv_w = 1.0 if weights is None else float(np.mean(1.0 / weights))
        return fit.sigma ** 2 * inv_w, "gaussian"
    if design.family.response in ("binary", "binomial") and approximation != "delta":
        return _BINOMIAL_LINK_VARIANCE[fit.link], "theoretical"
    if approximation == "theoretical":
        raise HierbayesError(
            "approximation='theoretical' (π²/3 and kin) exists for binomial responses only; "
            f"this is a {design.family.name} model: use 'lognormal' or 'delta'."
        )
    mu = np.exp(eta_fixed + _random_part(fit))
    if fit.link != "log":
        raise HierbayesError(
            f"R² and ICC for a {design.family.name} model with the {fit.link} link are not "
            "implemented (log links and binomial links are)."
        )
    family = design.family.name
    if family == "gamma":  # var/μ² = 1/α
        relative = np.full(mu.size, 1.0 / fit.dispersion)
    elif family == "gaussian":  # σ²/μ²
        relative = (fit.dispersion / mu) ** 2
    else:
        relative = 1.0 / mu  # V(μ)/μ² for the Poisson
        if fit.dispersion is not None:  # + 1/α for the negative binomial
            relative = relative + 1.0 / fit.dispersion
    values = np.log1p(relative) if approximation == "lognormal" else relative
    return float(np.mean(values)), approximation


def _random_part(fit) -> np.ndarray:
    """Zb at the conditional modes, per observation."""
    out = np.zeros(fit.design.n_obs)
    for block in fit.design.blocks:
        out += np.einsum("ik,ik->i", block.Z, fit.modes[block.name][block.index])
    return out


def _ratio(numerator: float, denominator: float) -> float:
    if not np.isfinite(denominator) or denominator <= 0:
        return float("nan")
    return float(np.clip(numerator / denominator, 0.0, 1.0))
