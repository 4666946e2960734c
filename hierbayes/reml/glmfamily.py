"""The conditional distribution of a GLMM: links, working weights and −2 log p(y | η).

Binomial responses are modelled as proportions ŷ = y/m with prior weight m (the trials), as in R's
`glm`: the working weight is m·(dμ/dη)²/(μ(1−μ)). Bernoulli is binomial with m = 1. For the
log-likelihood the binomial coefficient and the Poisson log(y!) are included, so that
−2 log p(y | η) is the number lme4 puts into its logLik (R's `family$aic` without the 2·rank).
Log-probabilities come from log-sum-exp forms, so that μ near 0 or 1 loses no precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, log_ndtr, ndtr, ndtri

from ..design import Design
from ..errors import FamilyError
from ..families import check_link

# dμ/dη is kept above this (R's binomial links do the same with .Machine$double.eps), so that
# the working weights of far-out observations stay positive.
_EPS = np.finfo(float).eps
_LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class Working:
    """One PIRLS linearisation at η."""

    weights: np.ndarray  # (n,) working weights
    response: np.ndarray  # (n,) working response z = η + (ŷ − μ)/(dμ/dη)
    minus2loglik: float  # −2 log p(y | η), constants included


class GlmFamily:
    """Binomial (with trials), Bernoulli, Poisson or negative binomial, with one of their links.

    The negative binomial has var = μ + μ²/α (lme4's θ, PyMC's alpha); `alpha` is set by the
    outer optimisation (negbin.py) before each fit at fixed α.
    """

    def __init__(self, design: Design, link: str | None = None):
        family = design.family
        if family.name not in ("bernoulli", "binomial", "poisson", "negative_binomial"):
            raise FamilyError(
                f"The Laplace fit covers the bernoulli, binomial, poisson and negative_binomial "
                f"families; {family.name!r} is not implemented. Use fit_bayes for it."
            )
        self.name = family.name
        self.alpha = 1.0
        self._cached_alpha, self._cached_constant = None, 0.0
        self.link = check_link(family, link)
        self.y = design.y
        self.trials = design.trials if design.trials is not None else (
            np.ones_like(design.y) if family.response != "count" else None)
        # log C(m, y) or −log y!: the part of the log-likelihood free of η.
        if self.trials is None:
            self._constant = -float(gammaln(self.y + 1).sum())
        else:
            m, y = self.trials, self.y
            self._constant = float((gammaln(m + 1) - gammaln(y + 1) - gammaln(m - y + 1)).sum())
            self._yhat = np.divide(y, m, out=np.zeros_like(y), where=m > 0)
            self._bernoulli = bool(np.all(m == 1))

    def working(self, eta: np.ndarray) -> Working:
        if self.name == "negative_binomial":
            return self._negative_binomial(eta)
        if self.trials is None:
            return self._poisson(eta)
        if self.link == "logit":
            return self._logit(eta)
        m = self.trials
        mu, dmu, log_mu, log_1m = self._binomial_link(eta)
        weights = m * dmu * dmu / np.maximum(mu * (1 - mu), _EPS * _EPS)
        loglik = self.y @ log_mu + (m - self.y) @ log_1m + self._constant
        return Working(weights, eta + (self._yhat - mu) / dmu, -2.0 * float(loglik))

    def _logit(self, eta: np.ndarray) -> Working:
        """The canonical link in one exp and one log1p (this runs once per PIRLS step):
        y log μ + (m − y) log(1 − μ) = yη − m·log(1 + e^η), and dμ/dη = μ(1 − μ) is the
        weight per trial."""
        e = np.exp(-np.abs(eta))
        softplus = np.maximum(eta, 0.0) + np.log1p(e)
        inv = 1.0 / (1.0 + e)
        mu = np.where(eta >= 0, inv, e * inv)
        dmu = np.maximum(e * inv * inv, _EPS)
        loglik = self.y @ eta - self.trials @ softplus + self._constant
        weights = dmu if self._bernoulli else self.trials * dmu
        return Working(weights, eta + (self._yhat - mu) / dmu, -2.0 * float(loglik))

    @property
    def canonical(self) -> bool:
        """Logit for binomial, log for Poisson: Fisher scoring is then Newton's method, which the
        analytic gradient (laplace_grad) relies on. (The log link is not canonical for the
        negative binomial.)"""
        if self.name == "negative_binomial":
            return False
        return self.link == ("log" if self.trials is None else "logit")

    def _negative_binomial(self, eta: np.ndarray) -> Working:
        """log p = lgamma(y+α) − lgamma(α) − log y! + α log α + yη − (α+y) log(α+μ), μ = e^η;
        Fisher weight μ²/var = αμ/(α+μ)."""
        a, y = self.alpha, self.y
        log_a_mu = np.logaddexp(np.log(a), eta)  # log(α + μ) without overflow
        loglik = y @ eta - (a + y) @ log_a_mu + self._alpha_constant() + self._constant
        weights = np.clip(a * np.exp(eta - log_a_mu), np.finfo(float).tiny, None)
        with np.errstate(over="ignore", invalid="ignore"):  # as in _poisson
            mu = np.exp(eta)
            safe = np.clip(mu, np.finfo(float).tiny, np.finfo(float).max)
            return Working(weights, eta + (y - mu) / safe, -2.0 * float(loglik))

    def _alpha_constant(self) -> float:
        """Σ lgamma(y+α) − lgamma(α) + α log α, cached per α (n lgamma calls otherwise)."""
        a = self.alpha
        if self._cached_alpha != a:
            y = self.y
            self._cached_constant = (float((gammaln(y + a) - gammaln(a)).sum())
                                     + a * np.log(a) * y.size)
            self._cached_alpha = a
        return self._cached_constant

    def score_terms(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canonical links: ∂(−2 log p)/∂η, the working weight w and dw/dη, per observation."""
        if self.trials is None:
            mu = np.exp(eta)
            return -2.0 * (self.y - mu), mu, mu
        mu = expit(eta)
        w = self.trials * mu * (1.0 - mu)
        return -2.0 * (self.y - self.trials * mu), w, w * (1.0 - 2.0 * mu)

    def start(self, X: np.ndarray) -> np.ndarray:
        """A start for β: the intercept (a column of ones, if any) at the link of the overall
        mean, the rest 0, so that PIRLS does not begin far off (e.g. counts in the thousands)."""
        beta = np.zeros(X.shape[1])
        ones = np.flatnonzero(np.all(X == 1.0, axis=0))
        if ones.size == 0:
            return beta
        if self.trials is None:
            beta[ones[0]] = np.log(max(float(np.mean(self.y)), 1e-8))
            return beta
        p = float(np.clip(self.y.sum() / max(self.trials.sum(), 1.0), 1e-8, 1 - 1e-8))
        beta[ones[0]] = {"logit": np.log(p / (1 - p)), "probit": float(ndtri(p)),
                         "cloglog": float(np.log(-np.log1p(-p)))}[self.link]
        return beta

    def _poisson(self, eta: np.ndarray) -> Working:
        # A far-off trial step may overflow: its deviance is then inf and the step is halved.
        with np.errstate(over="ignore", invalid="ignore"):
            mu = np.exp(eta)
            loglik = self.y @ eta - mu.sum() + self._constant
            safe = np.clip(mu, np.finfo(float).tiny, np.finfo(float).max)
            return Working(safe, eta + (self.y - mu) / safe, -2.0 * float(loglik))

    def _binomial_link(self, eta: np.ndarray):
        """μ, dμ/dη (floored), log μ and log(1 − μ)."""
        if self.link == "logit":
            mu = expit(eta)
            dmu = np.maximum(mu * (1 - mu), _EPS)
            return mu, dmu, -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
        if self.link == "probit":
            dens = np.exp(-0.5 * eta * eta - 0.5 * _LOG_2PI)
            return ndtr(eta), np.maximum(dens, _EPS), log_ndtr(eta), log_ndtr(-eta)
        # cloglog: μ = 1 − exp(−exp(η))
        e = np.exp(np.minimum(eta, 700.0))
        mu = -np.expm1(-e)
        dmu = np.maximum(np.exp(np.minimum(eta, 700.0) - e), _EPS)
        return mu, dmu, np.log(np.maximum(mu, np.finfo(float).tiny)), -e
