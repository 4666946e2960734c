"""Link functions: the one place that holds inverse-link math.

A `Link` gives μ = g⁻¹(η) and dμ/dη in numpy (`Link.terms`, with 1 − μ, log μ and log(1 − μ)
computed without cancellation), the same μ as a PyTensor graph (for the PyMC likelihood), and g(μ)
itself (starting values). `hierbayes.families` builds the GLM
quantities (variance functions, working weights, scores) on top of them; every engine reaches
links through there.

Spec layer: numpy and scipy only. `Link.inverse_tensor` builds the same μ in PyTensor from the
tensor namespace its caller (the Bayesian engine) passes in, so this module never imports PyTensor.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy import special

from .errors import FamilyError

_HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))
_SQRT_HALF = float(np.sqrt(0.5))
# exp() overflows just above 709: the complementary log-log clamps η here (the mean is then 1 to
# every digit and log(1 − μ) = −e^η is far below any log-probability that matters).
_CLOGLOG_MAX = 700.0


class LinkTerms:
    """A link evaluated at η, elementwise. Each field is computed on first use, from intermediate
    results shared with the other fields, so that a PIRLS step pays only for what it reads."""

    def __init__(self, eta):
        self.eta = np.asarray(eta, dtype=float)

    @cached_property
    def mu(self) -> np.ndarray:
        """μ = g⁻¹(η)."""
        raise NotImplementedError

    @cached_property
    def dmu(self) -> np.ndarray:
        """dμ/dη."""
        raise NotImplementedError

    @cached_property
    def mu_c(self) -> np.ndarray:
        """1 − μ without cancellation (the binomial links)."""
        return 1.0 - self.mu

    @cached_property
    def log_mu(self) -> np.ndarray:
        return np.log(self.mu)

    @cached_property
    def log_1m_mu(self) -> np.ndarray:
        """log(1 − μ) (the binomial links)."""
        return np.log(self.mu_c)


class _IdentityTerms(LinkTerms):
    @cached_property
    def mu(self):
        return self.eta

    @cached_property
    def dmu(self):
        return np.ones_like(self.eta)


class _LogTerms(LinkTerms):
    @cached_property
    def mu(self):
        # A far-off PIRLS trial step may overflow to inf; its deviance then rejects the step.
        with np.errstate(over="ignore"):
            return np.exp(self.eta)

    @cached_property
    def dmu(self):
        return self.mu

    @cached_property
    def log_mu(self):
        return self.eta


class _LogitTerms(LinkTerms):
    """From one exp and one log1p: with e = exp(−|η|), μ and 1 − μ are 1/(1 + e) and e/(1 + e)
    (which is which depends on the sign of η), μ' = μ(1 − μ) = e/(1 + e)², and
    log(1 − μ) = −softplus(η), log μ = −softplus(−η)."""

    @cached_property
    def _e(self):
        return np.exp(-np.abs(self.eta))

    @cached_property
    def _inv(self):
        return 1.0 / (1.0 + self._e)

    @cached_property
    def mu(self):
        return np.where(self.eta >= 0, self._inv, self._e * self._inv)

    @cached_property
    def mu_c(self):
        return np.where(self.eta >= 0, self._e * self._inv, self._inv)

    @cached_property
    def dmu(self):
        return self._e * self._inv * self._inv

    @cached_property
    def _log1pe(self):
        return np.log1p(self._e)

    @cached_property
    def log_mu(self):
        return _minus_softplus(-self.eta, self._log1pe)

    @cached_property
    def log_1m_mu(self):
        return _minus_softplus(self.eta, self._log1pe)


def _minus_softplus(x, log1pe):
    """−log(1 + eˣ) = −(max(x, 0) + log1p(e^−|x|)), in place (once per PIRLS step)."""
    out = np.maximum(x, 0.0)
    out += log1pe
    return np.negative(out, out=out)


class _ProbitTerms(LinkTerms):
    """Φ is evaluated once, in the lower tail q = Φ(−|η|) where it is accurate; the other
    probability is 1 − q, and its log log1p(−q)."""

    @cached_property
    def _q(self):
        return special.ndtr(-np.abs(self.eta))

    @cached_property
    def mu(self):
        return np.where(self.eta >= 0, 1.0 - self._q, self._q)

    @cached_property
    def mu_c(self):
        return np.where(self.eta >= 0, self._q, 1.0 - self._q)

    @cached_property
    def dmu(self):
        return np.exp(-0.5 * self.eta * self.eta - _HALF_LOG_2PI)

    @cached_property
    def _logs(self):
        return special.log_ndtr(-np.abs(self.eta)), np.log1p(-self._q)  # tail, other side

    @cached_property
    def log_mu(self):
        return np.where(self.eta >= 0, self._logs[1], self._logs[0])

    @cached_property
    def log_1m_mu(self):
        return np.where(self.eta >= 0, self._logs[0], self._logs[1])


class _CloglogTerms(LinkTerms):
    """μ = 1 − exp(−e^η): 1 − μ = exp(−e^η), μ = −expm1(−e^η), μ' = e^η·(1 − μ), and
    log(1 − μ) = −e^η. η is clamped at _CLOGLOG_MAX."""

    @cached_property
    def _e(self):
        return np.exp(np.minimum(self.eta, _CLOGLOG_MAX))

    @cached_property
    def mu(self):
        return -np.expm1(-self._e)

    @cached_property
    def mu_c(self):
        return np.exp(-self._e)

    @cached_property
    def dmu(self):
        return self._e * self.mu_c

    @cached_property
    def log_mu(self):
        # To absolute precision ε where μ is near 1 (what a log-likelihood needs; its relative
        # precision there would cost a log1p per PIRLS step), and η itself where μ ≈ e^η has
        # underflowed (η below about −745).
        with np.errstate(divide="ignore"):
            return np.where(self.mu > 0, np.log(self.mu), self.eta)

    @cached_property
    def log_1m_mu(self):
        return -self._e


class Link:
    """One link function g: μ = g⁻¹(η) in numpy and in PyTensor, dμ/dη, log-probabilities."""

    name = ""
    _terms = LinkTerms

    def terms(self, eta) -> LinkTerms:
        """μ, 1 − μ, dμ/dη, log μ and log(1 − μ) at η, each computed when first read."""
        return self._terms(eta)

    def inverse(self, eta) -> np.ndarray:
        """μ = g⁻¹(η)."""
        return self.terms(eta).mu

    def dmu_deta(self, eta) -> np.ndarray:
        return self.terms(eta).dmu

    def link(self, mu) -> np.ndarray:
        """g(μ) (starting values: the link of the observed mean)."""
        raise NotImplementedError

    def inverse_tensor(self, eta, pt):
        """μ as a PyTensor graph of the tensor `eta`; `pt` is ``pytensor.tensor``, passed in by
        the Bayesian engine so that this spec-layer module never imports PyTensor itself."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Link({self.name!r})"


class IdentityLink(Link):
    name, _terms = "identity", _IdentityTerms

    def link(self, mu):
        return np.asarray(mu, dtype=float)

    def inverse_tensor(self, eta, pt):
        return eta


class LogLink(Link):
    name, _terms = "log", _LogTerms

    def link(self, mu):
        return np.log(mu)

    def inverse_tensor(self, eta, pt):
        return pt.exp(eta)


class LogitLink(Link):
    name, _terms = "logit", _LogitTerms

    def inverse(self, eta):
        return special.expit(eta)

    def link(self, mu):
        mu = np.asarray(mu, dtype=float)
        return np.log(mu / (1 - mu))

    def inverse_tensor(self, eta, pt):
        return pt.sigmoid(eta)


class ProbitLink(Link):
    name, _terms = "probit", _ProbitTerms

    def inverse(self, eta):
        return special.ndtr(eta)

    def link(self, mu):
        return special.ndtri(mu)

    def inverse_tensor(self, eta, pt):
        return 0.5 * pt.erfc(-eta * _SQRT_HALF)


class CloglogLink(Link):
    name, _terms = "cloglog", _CloglogTerms

    def link(self, mu):
        return np.log(-np.log1p(-np.asarray(mu, dtype=float)))

    def inverse_tensor(self, eta, pt):
        return -pt.expm1(-pt.exp(eta))


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
