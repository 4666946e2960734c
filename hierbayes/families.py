"""Response families and their links: the one place that holds their math.

Every engine reads this module: the PyMC builder (inverse links and log-odds as PyTensor graphs),
the Laplace engine (`reml.glmfamily`: μ, dμ/dη and log-probabilities per PIRLS step), the
comparison (GLM working weights and scores: `compare.nopool`, `compare.shrinkage`) and prediction
(`bayes.predict`: means and response draws). Nothing else writes an inverse link, a variance
function or a working weight.

Spec layer: numpy and scipy only. PyTensor is imported inside the two `*_tensor` methods, so that
importing this module (and `fit_reml`) never loads PyMC or PyTensor.

Conventions. η is the linear predictor, μ = g⁻¹(η) the mean (per trial for the binomial), μ' =
dμ/dη. Binomial responses count successes y of m trials (Bernoulli: m = 1). The variance of one
observation is m·V(μ)·φ, with φ = σ² for the Gaussian and 1 otherwise, and the negative binomial's
V(μ) = μ + μ²/α (lme4's θ, PyMC's alpha). The GLM working (Fisher) weight is
w = m·μ'²/(V(μ)·φ) and the score is dℓ/dη = (y − m·μ)·μ'/(V(μ)·φ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

from .errors import FamilyError

_TINY = np.finfo(float).tiny
_HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))
_SQRT_HALF = float(np.sqrt(0.5))
# exp() overflows just above 709: the complementary log-log clamps η here (the mean is then 1 to
# every digit and log(1 − μ) = −e^η is far below any log-probability that matters).
_CLOGLOG_MAX = 700.0


class LinkTerms(NamedTuple):
    """A link evaluated at η, elementwise. Fields that do not apply to the link are None."""

    mu: np.ndarray  # μ = g⁻¹(η)
    mu_c: np.ndarray | None  # 1 − μ without cancellation (the binomial links)
    dmu: np.ndarray  # dμ/dη
    log_mu: np.ndarray | None  # log μ (log, logit, probit, cloglog)
    log_1m_mu: np.ndarray | None  # log(1 − μ) (the binomial links)


class Link:
    """One link function g: μ = g⁻¹(η) in numpy and in PyTensor, dμ/dη, log-probabilities."""

    name = ""

    def terms(self, eta, logs: bool = True) -> LinkTerms:
        """μ, 1 − μ, dμ/dη and (with `logs`) log μ and log(1 − μ), sharing the work."""
        raise NotImplementedError

    def inverse(self, eta) -> np.ndarray:
        """μ = g⁻¹(η)."""
        return self.terms(eta, logs=False).mu

    def dmu_deta(self, eta) -> np.ndarray:
        return self.terms(eta, logs=False).dmu

    def link(self, mu) -> np.ndarray:
        """g(μ) (starting values: the link of the observed mean)."""
        raise NotImplementedError

    def inverse_tensor(self, eta):
        """μ as a PyTensor graph of the tensor `eta`."""
        raise NotImplementedError

    def log_odds_tensor(self, eta):
        """log(μ / (1 − μ)) as a PyTensor graph, from stable log-probabilities: PyMC's
        Bernoulli / Binomial ``logit_p=`` then never rounds μ to 0 or 1."""
        raise FamilyError(f"The {self.name} link is not a link for probabilities.")

    def __repr__(self) -> str:
        return f"Link({self.name!r})"


class IdentityLink(Link):
    name = "identity"

    def terms(self, eta, logs: bool = True) -> LinkTerms:
        eta = np.asarray(eta, dtype=float)
        return LinkTerms(eta, None, np.ones_like(eta), None, None)

    def link(self, mu):
        return np.asarray(mu, dtype=float)

    def inverse_tensor(self, eta):
        return eta


class LogLink(Link):
    name = "log"

    def terms(self, eta, logs: bool = True) -> LinkTerms:
        eta = np.asarray(eta, dtype=float)
        # A far-off PIRLS trial step may overflow to inf; the caller's deviance then rejects it.
        with np.errstate(over="ignore"):
            mu = np.exp(eta)
        return LinkTerms(mu, None, mu, eta, None)

    def link(self, mu):
        return np.log(mu)

    def inverse_tensor(self, eta):
        import pytensor.tensor as pt

        return pt.exp(eta)


class LogitLink(Link):
    name = "logit"

    def terms(self, eta, logs: bool = True) -> LinkTerms:
        """From one exp and one log1p: with e = exp(−|η|), μ and 1 − μ are 1/(1 + e) and
        e/(1 + e) (which is which depends on the sign of η), μ' = μ(1 − μ) = e/(1 + e)², and
        log(1 − μ) = −softplus(η), log μ = −softplus(−η)."""
        eta = np.asarray(eta, dtype=float)
        e = np.exp(-np.abs(eta))
        inv = 1.0 / (1.0 + e)
        positive = eta >= 0
        mu, mu_c = np.where(positive, inv, e * inv), np.where(positive, e * inv, inv)
        dmu = e * inv * inv
        if not logs:
            return LinkTerms(mu, mu_c, dmu, None, None)
        log1pe = np.log1p(e)
        log_1m = -(np.maximum(eta, 0.0) + log1pe)
        log_mu = -(np.maximum(-eta, 0.0) + log1pe)
        return LinkTerms(mu, mu_c, dmu, log_mu, log_1m)

    def inverse(self, eta):
        return special.expit(eta)

    def link(self, mu):
        mu = np.asarray(mu, dtype=float)
        return np.log(mu / (1 - mu))

    def inverse_tensor(self, eta):
        import pytensor.tensor as pt

        return pt.sigmoid(eta)

    def log_odds_tensor(self, eta):
        return eta


class ProbitLink(Link):
    name = "probit"

    def terms(self, eta, logs: bool = True) -> LinkTerms:
        """Φ is evaluated once, in the lower tail q = Φ(−|η|) where it is accurate; the other
        probability is 1 − q and its log log1p(−q)."""
        eta = np.asarray(eta, dtype=float)
        tail = -np.abs(eta)
        q = special.ndtr(tail)
        big = 1.0 - q
        positive = eta >= 0
        mu, mu_c = np.where(positive, big, q), np.where(positive, q, big)
        dmu = np.exp(-0.5 * eta * eta - _HALF_LOG_2PI)
        if not logs:
            return LinkTerms(mu, mu_c, dmu, None, None)
        log_q, log_big = special.log_ndtr(tail), np.log1p(-q)
        return LinkTerms(mu, mu_c, dmu, np.where(positive, log_big, log_q),
                         np.where(positive, log_q, log_big))

    def inverse(self, eta):
        return special.ndtr(eta)

    def link(self, mu):
        return special.ndtri(mu)

    def inverse_tensor(self, eta):
        import pytensor.tensor as pt

        return 0.5 * pt.erfc(-eta * _SQRT_HALF)

    def log_odds_tensor(self, eta):
        return _log_ndtr_tensor(eta) - _log_ndtr_tensor(-eta)


def _log_ndtr_tensor(x):
    """log Φ(x) in PyTensor: through the scaled erfcx in the lower tail (Φ underflows there),
    log1p elsewhere. Each branch sees its argument clamped to its own range, so that the branch
    not taken is finite and its gradient does not turn the switch's gradient into NaN."""
    import pytensor.tensor as pt

    low = pt.minimum(x, -1.0)
    high = pt.maximum(x, -1.0)
    lower_tail = pt.log(0.5 * pt.erfcx(-low * _SQRT_HALF)) - 0.5 * low * low
    return pt.switch(pt.lt(x, -1.0), lower_tail, pt.log1p(-0.5 * pt.erfc(high * _SQRT_HALF)))


class CloglogLink(Link):
    name = "cloglog"

    def terms(self, eta, logs: bool = True) -> LinkTerms:
        """μ = 1 − exp(−e^η): 1 − μ = exp(−e^η), μ = −expm1(−e^η), μ' = exp(η − e^η)."""
        eta = np.minimum(np.asarray(eta, dtype=float), _CLOGLOG_MAX)
        e = np.exp(eta)
        mu = -np.expm1(-e)
        terms = LinkTerms(mu, np.exp(-e), np.exp(eta - e), None, None)
        if not logs:
            return terms
        # μ ≈ e^η underflows only below η ≈ −745; log μ is η there.
        with np.errstate(divide="ignore"):
            log_mu = np.where(mu > 0, np.log(np.maximum(mu, _TINY)), eta)
        return terms._replace(log_mu=log_mu, log_1m_mu=-e)

    def link(self, mu):
        return np.log(-np.log1p(-np.asarray(mu, dtype=float)))

    def inverse_tensor(self, eta):
        import pytensor.tensor as pt

        return -pt.expm1(-pt.exp(eta))

    def log_odds_tensor(self, eta):
        import pytensor.tensor as pt

        e = pt.exp(eta)
        return pt.log(-pt.expm1(-e)) + e  # log μ − log(1 − μ)


LINKS: dict[str, Link] = {
    link.name: link
    for link in (IdentityLink(), LogLink(), LogitLink(), ProbitLink(), CloglogLink())
}


def get_link(link: str | Link) -> Link:
    if isinstance(link, Link):
        return link
    try:
        return LINKS[link]
    except (KeyError, TypeError):
        raise FamilyError(f"Unknown link {link!r}; valid links are: {', '.join(LINKS)}.") from None


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
        if self.name == "negative_binomial":
            return 1.0 + 2.0 * mu / _needs(alpha, "alpha", self)
        return np.zeros_like(mu)

    def unit_weight(self, terms: LinkTerms, link: Link, alpha=None):
        """μ'²/V(μ): the working weight of one trial at unit dispersion, from `link`'s terms."""
        self._check_glm(link)
        if link.name == self.canonical:
            return terms.dmu  # μ' = V(μ) under the canonical link
        if self.name == "negative_binomial":
            # Log link (the family's only one): μ/(1 + μ/α) = α·expit(η − log α), finite for
            # every η (log μ = η).
            a = _needs(alpha, "alpha", self)
            return a * special.expit(terms.log_mu - np.log(a))
        return terms.dmu * self.score_factor(terms, link, alpha)

    def score_factor(self, terms: LinkTerms, link: Link, alpha=None):
        """μ'/V(μ), so that the score is (y − m·μ)·μ'/V(μ) (1 under the canonical link)."""
        self._check_glm(link)
        if link.name == self.canonical:
            return np.ones_like(terms.mu)
        if self.name == "negative_binomial":
            return special.expit(np.log(_needs(alpha, "alpha", self)) - terms.log_mu)
        # V(μ) underflows only where μ' has underflowed too: 0/tiny is then 0, never 0/0.
        return terms.dmu / np.maximum(self.variance(terms.mu, alpha, terms.mu_c), _TINY)

    def working_weight(self, eta, link: str | Link | None = None, *, trials=None, alpha=None,
                       sigma=None):
        """w = m·μ'²/(V(μ)·φ) at η (logit: m·μ(1 − μ); Poisson: μ; negative binomial:
        αμ/(α + μ); probit: m·φ(η)²/(Φ(η)(1 − Φ(η))); Gaussian identity: 1/σ²)."""
        link = self.link(link)
        terms = link.terms(eta, logs=self.name == "negative_binomial")
        return _per_trial(trials) * self.unit_weight(terms, link, alpha) / _dispersion(sigma)

    def score(self, y, eta, link: str | Link | None = None, *, trials=None, alpha=None,
              sigma=None):
        """dℓ/dη = (y − m·μ)·μ'/(V(μ)·φ) at η (y: successes for the binomial)."""
        link = self.link(link)
        terms = link.terms(eta, logs=self.name == "negative_binomial")
        residual = np.asarray(y, dtype=float) - _per_trial(trials) * terms.mu
        return residual * self.score_factor(terms, link, alpha) / _dispersion(sigma)

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
