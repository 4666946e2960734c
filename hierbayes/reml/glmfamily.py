"""The conditional distribution of a GLMM for PIRLS: working weights, working response and
−2 log p(y | η), per step.

The link and family math (μ, dμ/dη, log μ, log(1 − μ), the working weight μ'²/V(μ)) comes from
`hierbayes.families`; this module adds what the Laplace engine needs around it: the likelihood
constants, R's floors, and the cheap canonical forms of the log-likelihood.

Binomial responses are modelled as proportions ŷ = y/m with prior weight m (the trials), as in R's
`glm`: the working weight is m·(dμ/dη)²/(μ(1−μ)). Bernoulli is binomial with m = 1. For the
log-likelihood the binomial coefficient and the Poisson log(y!) are included, so that
−2 log p(y | η) is the number lme4 puts into its logLik (R's `family$aic` without the 2·rank).
Log-probabilities come from the links' log forms, so that μ near 0 or 1 loses no precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from ..design import Design
from ..errors import FamilyError
from ..families import check_link

# dμ/dη, and the working weight per trial, are kept above this (R's binomial links floor μ' at
# .Machine$double.eps), so that the working response stays finite and the weights of far-out
# observations stay positive while carrying nothing the Laplace determinant can see.
_EPS = np.finfo(float).eps
_TINY, _HUGE = np.finfo(float).tiny, np.finfo(float).max


# The families the Laplace engine fits (gaussian: with a link other than the identity; the
# identity link is the exact LMM of pls.py).
LAPLACE_FAMILIES = ("bernoulli", "binomial", "poisson", "negative_binomial", "gamma", "gaussian")


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

    `prior` are prior weights w_i (lme4's glmer `weights`, R's glm semantics): observation i's
    −2 log-likelihood and its working weight are multiplied by w_i, so an integer weight acts
    as that many copies of the row.
    """

    def __init__(self, design: Design, link: str | None = None, prior=None):
        family = design.family
        if family.name not in LAPLACE_FAMILIES:
            raise FamilyError(
                f"The Laplace fit covers the {', '.join(LAPLACE_FAMILIES)} families; "
                f"{family.name!r} is not implemented. Use fit_bayes for it."
            )
        self.family = family
        self.prior = None if prior is None else np.asarray(prior, dtype=float)
        self.name = family.name
        # The family's extra parameter, set by the outer search (negbin.py): the negative
        # binomial's α, the Gamma's shape α, the Gaussian's σ.
        self.alpha = 1.0
        self._cached_alpha, self._cached_constant = None, 0.0
        self.link = check_link(family, link)
        self._link = family.link(self.link)
        self.y = design.y
        binomial = family.response in ("binary", "binomial")
        self.trials = design.trials if design.trials is not None else (
            np.ones_like(design.y) if binomial else None)
        # log C(m, y) or −log y!: the part of the log-likelihood free of η (and of α).
        self._constant = 0.0
        if family.response == "count":
            self._constant = -float(gammaln(self.y + 1).sum())
        elif binomial:
            m, y = self.trials, self.y
            self._constant = float((gammaln(m + 1) - gammaln(y + 1) - gammaln(m - y + 1)).sum())
            self._yhat = np.divide(y, m, out=np.zeros_like(y), where=m > 0)
            self._bernoulli = bool(np.all(m == 1))

    def working(self, eta: np.ndarray) -> Working:
        if self.name == "negative_binomial":
            work = self._negative_binomial(eta)
        elif self.name in ("gamma", "gaussian"):
            work = self._continuous(eta)
        elif self.trials is None:
            work = self._poisson(eta)
        else:
            work = self._binomial(eta)
        if self.prior is None:
            return work
        return Working(work.weights * self.prior, work.response,
                       float(np.sum(self.minus2loglik_rows(eta))))

    def minus2loglik_rows(self, eta: np.ndarray) -> np.ndarray:
        """−2 log p(y_i | η_i) per observation, constants included, times the prior weight
        (η may be (..., n)): what adaptive quadrature (agq.py) sums per level at each node."""
        terms = self._link.terms(eta)
        y = self.y
        with np.errstate(over="ignore", invalid="ignore"):
            if self.name in ("gamma", "gaussian"):
                ll = self._continuous_rows(terms)
            elif self.name == "negative_binomial":
                a = self.alpha
                log_a_mu = np.logaddexp(np.log(a), eta)
                ll = (y * eta - (a + y) * log_a_mu + gammaln(y + a) - gammaln(a) + a * np.log(a)
                      - gammaln(y + 1))
            elif self.trials is None:
                ll = y * eta - terms.mu - gammaln(y + 1)
            else:
                m = self.trials
                # 0·log 0 = 0: a row with no successes (or no failures) has μ → 0 allowed.
                ll = (np.where(y > 0, y * terms.log_mu, 0.0)
                      + np.where(m > y, (m - y) * terms.log_1m_mu, 0.0)
                      + gammaln(m + 1) - gammaln(y + 1) - gammaln(m - y + 1))
        return -2.0 * ll if self.prior is None else -2.0 * ll * self.prior

    @property
    def canonical(self) -> bool:
        """Logit for binomial, log for Poisson: Fisher scoring is then Newton's method, which the
        analytic gradient (laplace_grad) relies on. (The log link is not canonical for the
        negative binomial.)"""
        return self.link == self.family.canonical

    def _binomial(self, eta: np.ndarray) -> Working:
        """The canonical logit costs one exp and one log1p (this runs once per PIRLS step), and
        its log-likelihood y log μ + (m − y) log(1 − μ) is yη + m log(1 − μ)."""
        terms = self._link.terms(eta)
        dmu = np.maximum(terms.dmu, _EPS)
        # The canonical link's unit weight is μ' itself: reuse it rather than recompute it.
        weights = dmu if self.canonical else np.maximum(
            self.family.unit_weight(terms, self._link), _EPS)
        if not self._bernoulli:
            weights = self.trials * weights
        if self.canonical:
            loglik = self.y @ eta + self.trials @ terms.log_1m_mu
        else:
            loglik = self.y @ terms.log_mu + (self.trials - self.y) @ terms.log_1m_mu
        return Working(weights, eta + (self._yhat - terms.mu) / dmu,
                       -2.0 * float(loglik + self._constant))

    def _negative_binomial(self, eta: np.ndarray) -> Working:
        """log p = lgamma(y+α) − lgamma(α) − log y! + α log α + yη − (α+y) log(α+μ), μ = e^η;
        Fisher weight μ²/var = αμ/(α+μ)."""
        a, y = self.alpha, self.y
        terms = self._link.terms(eta)
        log_a_mu = np.logaddexp(np.log(a), eta)  # log(α + μ) without overflow
        loglik = y @ eta - (a + y) @ log_a_mu + self._alpha_constant() + self._constant
        weights = np.maximum(self.family.unit_weight(terms, self._link, a), _TINY)
        with np.errstate(invalid="ignore"):  # as in _poisson
            safe = np.clip(terms.mu, _TINY, _HUGE)
            return Working(weights, eta + (y - terms.mu) / safe, -2.0 * float(loglik))

    def _continuous(self, eta: np.ndarray) -> Working:
        """Gamma (shape α) or Gaussian (SD σ = alpha) at η: Fisher weight μ'²/(V(μ)φ), i.e.
        α under the Gamma's log link and μ'²/σ² for the Gaussian."""
        terms = self._link.terms(eta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mu, dmu = terms.mu, np.maximum(np.abs(terms.dmu), _TINY)
            if self.name == "gamma":
                weights = self.alpha * self.family.unit_weight(terms, self._link)
            else:
                weights = dmu * dmu / (self.alpha * self.alpha)
            weights = np.clip(weights, _TINY, _HUGE)
            response = eta + (self.y - mu) / dmu
            loglik = float(np.sum(self._continuous_rows(terms)))
        return Working(weights, response, -2.0 * loglik)

    def _continuous_rows(self, terms) -> np.ndarray:
        """log p(y_i | μ_i) for the Gamma (shape α) and the Gaussian (SD σ = alpha)."""
        y, a, mu = self.y, self.alpha, terms.mu
        if self.name == "gamma":
            return (a * np.log(a) - a * terms.log_mu + (a - 1.0) * np.log(y) - a * y / mu
                    - gammaln(a))
        return -0.5 * np.log(2.0 * np.pi * a * a) - 0.5 * ((y - mu) / a) ** 2

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
        """Canonical links: ∂(−2 log p)/∂η, the working weight w and dw/dη = w·V'(μ), per
        observation."""
        terms = self._link.terms(eta)
        m = 1.0 if self.trials is None else self.trials
        w = m * self.family.unit_weight(terms, self._link)
        score = self.y - m * terms.mu  # (y − mμ)·μ'/V(μ), and μ' = V(μ) here
        wprime = w * self.family.dvariance(terms.mu)
        if self.prior is not None:
            return -2.0 * score * self.prior, w * self.prior, wprime * self.prior
        return -2.0 * score, w, wprime

    def start(self, X: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        """A start for β: the intercept (a column of ones, if any) at the link of the overall
        mean less the mean offset, the rest 0, so that PIRLS does not begin far off (e.g.
        counts in the thousands, or rates per a large exposure)."""
        beta = np.zeros(X.shape[1])
        ones = np.flatnonzero(np.all(X == 1.0, axis=0))
        if ones.size == 0:
            return beta
        if self.trials is None:
            mean = max(float(np.mean(self.y)), 1e-8)
        else:
            mean = float(np.clip(self.y.sum() / max(self.trials.sum(), 1.0), 1e-8, 1 - 1e-8))
        beta[ones[0]] = float(self._link.link(mean)) - (0.0 if offset is None
                                                         else float(np.mean(offset)))
        return beta

    def _poisson(self, eta: np.ndarray) -> Working:
        # A far-off trial step may overflow: its deviance is then inf and the step is halved.
        terms = self._link.terms(eta)
        mu = terms.mu
        with np.errstate(invalid="ignore"):
            loglik = self.y @ eta - mu.sum() + self._constant
            safe = np.clip(self.family.unit_weight(terms, self._link), _TINY, _HUGE)  # = μ
            return Working(safe, eta + (self.y - mu) / safe, -2.0 * float(loglik))
