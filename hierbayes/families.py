"""Response families: their links, variance functions, GLM working weights, scores and draws.

Every engine reads this module: the PyMC builder (inverse links and log-odds as PyTensor graphs),
the Laplace engine (`reml.glmfamily`: μ, dμ/dη and log-probabilities per PIRLS step, the unit
working weight), the comparison (working weights and scores: `compare.nopool`,
`compare.shrinkage`) and prediction (`bayes.predict`: means and response draws). The links
themselves live in `hierbayes.links` (re-exported here); nothing else writes an inverse link, a
variance function or a working weight.

Conventions. η is the linear predictor, μ = g⁻¹(η) the mean (per trial for the binomial), μ' =
dμ/dη. Binomial responses count successes y of m trials (Bernoulli: m = 1). The variance of one
observation is m·V(μ)·φ, with φ = σ² for the Gaussian, 1/α for the Gamma (shape α, V(μ) = μ²)
and 1 otherwise, and the negative binomial's V(μ) = μ + μ²/α (lme4's θ, PyMC's alpha). The GLM
working (Fisher) weight is w = m·μ'²/(V(μ)·φ) and the score is dℓ/dη = (y − m·μ)·μ'/(V(μ)·φ).

Spec layer: numpy and scipy only; never imports PyMC or PyTensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import FamilyError
from .links import LINKS, Link, LinkTerms, get_link

__all__ = ["FAMILIES", "LINKS", "Family", "Link", "LinkTerms", "check_link", "get_family",
           "get_link"]

_TINY = np.finfo(float).tiny


@dataclass(frozen=True)
class Family:
    """A response family: its links, variance function, working weights, scores and draws.

    ``trials`` is m (None: 1), ``alpha`` the negative binomial's α, ``sigma`` the Gaussian σ
    (None: 1, i.e. the quantity per 1/σ²). They broadcast against η and μ, so that (S, 1) draws
    of a parameter go with (S, n) linear predictors.
    """

    name: str
    response: str  # "real", "binary", "binomial" (cbind) or "count"
    links: tuple[str, ...]  # the first is the default
    canonical: str | None = None  # the link under which Fisher scoring is Newton's method

    @property
    def default_link(self) -> str:
        return self.links[0]

    def link(self, link: str | Link | None = None) -> Link:
        """The `Link` object of `link` (default: the family's default), checked."""
        return LINKS[check_link(self, link.name if isinstance(link, Link) else link)]

    def variance(self, mu, alpha=None, mu_c=None):
        """V(μ); `mu_c` is 1 − μ computed without cancellation, where the caller has it."""
        mu = np.asarray(mu, dtype=float)
        if self.response in ("binary", "binomial"):
            return mu * (1.0 - mu if mu_c is None else mu_c)
        if self.name == "poisson":
            return mu
        if self.name == "gamma":
            return mu * mu
        if self.name == "negative_binomial":
            return mu + mu * mu / _needs(alpha, "alpha", self)
        return np.ones_like(mu)

    def dvariance(self, mu, alpha=None):
        """V'(μ): for a canonical link dw/dη = w·V'(μ) (the Laplace engine's analytic gradient)."""
        mu = np.asarray(mu, dtype=float)
        if self.response in ("binary", "binomial"):
            return 1.0 - 2.0 * mu
        if self.name == "poisson":
            return np.ones_like(mu)
        if self.name == "gamma":
            return 2.0 * mu
        if self.name == "negative_binomial":
            return 1.0 + 2.0 * mu / _needs(alpha, "alpha", self)
        return np.zeros_like(mu)

    def unit_weight(self, terms: LinkTerms, link: Link, alpha=None):
        """μ'²/V(μ): the working weight of one trial at unit dispersion, from `link`'s terms."""
        self._check_glm(link)
        if link.name == self.canonical:
            return terms.dmu  # μ' = V(μ) under the canonical link
        if self.name == "negative_binomial":
            # Log link (the family's only one, μ' = μ): μ/(1 + μ/α) = α/(1 + α/μ), which is
            # finite for μ = 0 and μ = inf alike.
            a = _needs(alpha, "alpha", self)
            with np.errstate(divide="ignore"):
                return a / (1.0 + a / terms.mu)
        return terms.dmu * self.score_factor(terms, link, alpha)

    def score_factor(self, terms: LinkTerms, link: Link, alpha=None):
        """μ'/V(μ), so that the score is (y − m·μ)·μ'/V(μ) (1 under the canonical link)."""
        self._check_glm(link)
        if link.name == self.canonical:
            return np.ones_like(terms.mu)
        if self.name == "negative_binomial":  # 1/(1 + μ/α), the log link's μ'/V(μ)
            return 1.0 / (1.0 + terms.mu / _needs(alpha, "alpha", self))
        # V(μ) underflows only where μ' has underflowed too: 0/tiny is then 0, never 0/0.
        return terms.dmu / np.maximum(self.variance(terms.mu, alpha, terms.mu_c), _TINY)

    def working_weight(self, eta, link: str | Link | None = None, *, trials=None, alpha=None,
                       sigma=None):
        """w = m·μ'²/(V(μ)·φ) at η (logit: m·μ(1 − μ); Poisson: μ; negative binomial:
        αμ/(α + μ); probit: m·φ(η)²/(Φ(η)(1 − Φ(η))); Gaussian identity: 1/σ²)."""
        link = self.link(link)
        terms = link.terms(eta)
        return _per_trial(trials) * self.unit_weight(terms, link, alpha) / _dispersion(sigma)

    def score(self, y, eta, link: str | Link | None = None, *, trials=None, alpha=None,
              sigma=None):
        """dℓ/dη = (y − m·μ)·μ'/(V(μ)·φ) at η (y: successes for the binomial)."""
        link = self.link(link)
        terms = link.terms(eta)
        y, factor = np.asarray(y, dtype=float), self.score_factor(terms, link, alpha)
        if self.name == "negative_binomial":
            # (y − μ)·μ'/V = y·μ'/V − μ'²/V under the log link: finite where μ overflows.
            return (y * factor - self.unit_weight(terms, link, alpha)) / _dispersion(sigma)
        return (y - _per_trial(trials) * terms.mu) * factor / _dispersion(sigma)

    def draw(self, mu, rng: np.random.Generator, *, trials=None, sigma=None, nu=None,
             alpha=None) -> np.ndarray:
        """One draw of the response per element of `mu` (float; successes for the binomial)."""
        mu = np.asarray(mu, dtype=float)
        if self.name == "gaussian":
            return mu + _needs(sigma, "sigma", self) * rng.standard_normal(mu.shape)
        if self.name == "student_t":
            t = rng.standard_t(_needs(nu, "nu", self), size=mu.shape)
            return mu + _needs(sigma, "sigma", self) * t
        if self.response in ("binary", "binomial"):
            n = 1 if trials is None else trials
            return rng.binomial(n, mu).astype(float)
        if self.name == "poisson":
            return rng.poisson(mu).astype(float)
        if self.name == "gamma":  # shape α, mean μ: var = μ²/α
            a = _needs(alpha, "alpha", self)
            return rng.gamma(a, mu / a)
        # numpy's (n, p) form: n = α, p = α/(α + μ) gives mean μ and variance μ + μ²/α.
        a = _needs(alpha, "alpha", self)
        return rng.negative_binomial(a, a / (a + mu)).astype(float)

    def _check_glm(self, link: Link) -> None:
        if self.name == "student_t":
            raise FamilyError(
                "The student_t family has no GLM working weight here (its Fisher weight needs "
                "ν); weights and scores cover gaussian, bernoulli, binomial, poisson and "
                "negative_binomial."
            )
        check_link(self, link.name)


def _per_trial(trials):
    return 1.0 if trials is None else np.asarray(trials, dtype=float)


def _dispersion(sigma):
    return 1.0 if sigma is None else np.asarray(sigma, dtype=float) ** 2


def _needs(value, name: str, family: Family):
    if value is None:
        raise FamilyError(f"The {family.name} family needs {name} here; got None.")
    return np.asarray(value, dtype=float)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("gaussian", "real", ("identity", "log"), "identity"),
        Family("student_t", "real", ("identity",)),
        Family("bernoulli", "binary", ("logit", "probit", "cloglog"), "logit"),
        Family("binomial", "binomial", ("logit", "probit", "cloglog"), "logit"),
        Family("poisson", "count", ("log",), "log"),
        # The log link is not canonical for the negative binomial.
        Family("negative_binomial", "count", ("log",)),
        # Positive continuous: shape α (PyMC's alpha), var = μ²/α; the inverse link is canonical.
        Family("gamma", "positive", ("log",)),
    )
}


def get_family(name: str | Family) -> Family:
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise FamilyError(
            f"Unknown family {name!r}; valid families are: {', '.join(FAMILIES)}."
        ) from None


def check_link(family: Family, link: str | None) -> str:
    if link is None:
        return family.default_link
    if link not in family.links:
        raise FamilyError(
            f"The {family.name} family has no link {link!r}; "
            f"valid links: {', '.join(family.links)}."
        )
    return link
