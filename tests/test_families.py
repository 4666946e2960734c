"""Links and families (`hierbayes.links`, `hierbayes.families`) against scipy and closed forms.

The references are scipy's distributions whose CDF is each inverse link (logistic, normal,
Gumbel-min), scipy's pmfs for scores and Fisher weights, and finite differences.
"""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.families import FAMILIES, LINKS, get_family, get_link
from hierbayes.reml.glmfamily import GlmFamily

EPS = np.finfo(float).eps
ETA = np.concatenate([np.linspace(-40, 40, 161), [-1e-9, 1e-9, -0.3, 0.7, 3.7]])
# The distribution whose CDF is the inverse link: μ = cdf(η), 1 − μ = sf(η), μ' = pdf(η).
PROBABILITY_LINKS = {"logit": stats.logistic, "probit": stats.norm, "cloglog": stats.gumbel_l}


def _close(actual, expected, rtol=1e-12, atol=0.0):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(autouse=True)
def _quiet_scipy():
    # scipy's references overflow harmlessly in the far tails (e.g. exp(e^40)).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROBABILITY_LINKS))
def test_probability_links_match_scipy_in_the_far_tails(name):
    dist, link = PROBABILITY_LINKS[name], LINKS[name]
    terms = link.terms(ETA)
    _close(link.inverse(ETA), dist.cdf(ETA))
    _close(terms.mu, dist.cdf(ETA))
    _close(terms.mu_c, dist.sf(ETA))  # 1 − μ without cancellation, e.g. 4e-18 at η = 40 (logit)
    _close(terms.dmu, dist.pdf(ETA))
    _close(link.dmu_deta(ETA), dist.pdf(ETA))
    _close(terms.log_1m_mu, dist.logsf(ETA))
    # log μ: relative precision, except cloglog's near μ = 1 (absolute ε, what a log-likelihood
    # needs: there log μ ≈ −e^(−e^η), e.g. −3.5e-65 at η = 5).
    atol = EPS if name == "cloglog" else 0.0
    _close(terms.log_mu, dist.logcdf(ETA), atol=atol)


def test_identity_and_log_links():
    eta = np.linspace(-700, 700, 57)
    identity, log = LINKS["identity"].terms(eta), LINKS["log"].terms(eta)
    _close(identity.mu, eta)
    _close(identity.dmu, np.ones_like(eta))
    _close(log.mu, np.exp(eta))
    _close(log.dmu, np.exp(eta))
    _close(log.log_mu, eta)


@pytest.mark.parametrize("name", list(LINKS))
def test_dmu_deta_is_the_derivative_of_the_inverse(name):
    link, h = LINKS[name], 1e-6
    eta = np.linspace(-12, 12, 97)
    up, down = link.terms(eta + h), link.terms(eta - h)
    # Differentiate the smaller of μ and 1 − μ, which each link gives to full precision.
    if name in PROBABILITY_LINKS:
        lower = up.mu < 0.5
        diff = np.where(lower, up.mu - down.mu, down.mu_c - up.mu_c)
    else:
        diff = up.mu - down.mu
    expected = link.dmu_deta(eta)
    usable = expected > 1e-250  # below, μ or 1 − μ are subnormal and differences meaningless
    assert usable.sum() > 40
    _close(diff[usable] / (2 * h), expected[usable], rtol=2e-7)


@pytest.mark.parametrize("name", list(LINKS))
def test_numpy_and_pytensor_inverses_agree(name):
    import pytensor
    import pytensor.tensor as pt

    eta = pt.dvector("eta")
    link = LINKS[name]
    values = ETA if name not in ("identity", "log") else np.linspace(-700, 700, 41)
    inverse = pytensor.function([eta], link.inverse_tensor(eta, pt))
    _close(inverse(values), link.inverse(values), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("identity", -1e3, 1e3), ("log", -700, 700), ("logit", -30, 5), ("probit", -30, 5),
     ("cloglog", -30, 2)],
)
def test_link_inverts_the_inverse_link(name, low, high):
    link = LINKS[name]
    eta = np.linspace(low, high, 53)
    _close(link.link(link.inverse(eta)), eta, rtol=1e-10, atol=1e-12)


# --- families: variance, weights, scores ---------------------------------------------------------


def test_variance_functions_and_their_derivatives():
    mu = np.linspace(0.01, 0.99, 9)
    _close(FAMILIES["binomial"].variance(mu), mu * (1 - mu))
    _close(FAMILIES["bernoulli"].variance(mu, mu_c=1 - mu), mu * (1 - mu))
    _close(FAMILIES["poisson"].variance(mu * 10), mu * 10)
    counts = 10 * mu
    _close(FAMILIES["negative_binomial"].variance(counts, alpha=2.5), counts + counts**2 / 2.5)
    _close(FAMILIES["gaussian"].variance(mu), np.ones_like(mu))
    h = 1e-6
    for name in ("binomial", "poisson", "negative_binomial", "gaussian"):
        family = FAMILIES[name]
        up, down = family.variance(mu + h, alpha=2.5), family.variance(mu - h, alpha=2.5)
        numeric = (up - down) / (2 * h)
        _close(family.dvariance(mu, alpha=2.5), numeric, rtol=1e-7, atol=1e-9)


def test_working_weights_match_their_closed_forms():
    eta = np.linspace(-30, 30, 121)
    m = np.resize([1.0, 3.0, 7.0], eta.size)
    expit = stats.logistic.cdf
    _close(FAMILIES["binomial"].working_weight(eta, "logit", trials=m),
           m * expit(eta) * expit(-eta))
    _close(FAMILIES["poisson"].working_weight(eta), np.exp(eta))
    for alpha in (0.4, 3.0):
        mu = np.exp(eta)
        _close(FAMILIES["negative_binomial"].working_weight(eta, alpha=alpha),
               alpha * mu / (alpha + mu))
    # As far out as the squared density of the reference does not underflow.
    for name, high in (("probit", 15), ("cloglog", 5)):
        keep = (eta >= -15) & (eta <= high)
        dist, e, mt = PROBABILITY_LINKS[name], eta[keep], m[keep]
        expected = mt * dist.pdf(e) ** 2 / (dist.cdf(e) * dist.sf(e))
        _close(FAMILIES["binomial"].working_weight(e, name, trials=mt), expected)
        _close(FAMILIES["bernoulli"].working_weight(e, name), expected / mt)
    _close(FAMILIES["gaussian"].working_weight(eta, sigma=2.0), np.full(eta.size, 0.25))
    eta = np.linspace(-5, 5, 11)
    _close(FAMILIES["gaussian"].working_weight(eta, "log", sigma=2.0), np.exp(2 * eta) / 4)


def test_weights_broadcast_draws_against_observations():
    eta = np.random.default_rng(1).normal(size=(4, 9))  # (S, n)
    alpha = np.array([0.5, 1.0, 2.0, 8.0])[:, None]  # (S, 1)
    w = FAMILIES["negative_binomial"].working_weight(eta, alpha=alpha)
    assert w.shape == (4, 9)
    _close(w[2], FAMILIES["negative_binomial"].working_weight(eta[2], alpha=2.0))


def _pmf(name, link, eta, m=5, alpha=2.0):
    """Support, log-pmf at every support point and every η: (K,), (K, n)."""
    mu = LINKS[link].inverse(eta)
    if name == "binomial":
        y = np.arange(m + 1.0)
        return y, stats.binom.logpmf(y[:, None], m, mu[None, :])
    y = np.arange(400.0)
    if name == "poisson":
        return y, stats.poisson.logpmf(y[:, None], mu[None, :])
    return y, stats.nbinom.logpmf(y[:, None], alpha, alpha / (alpha + mu[None, :]))


@pytest.mark.parametrize(
    ("name", "link"),
    [("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"),
     ("poisson", "log"), ("negative_binomial", "log")],
)
def test_score_and_weight_are_the_likelihoods_derivative_and_fisher_information(name, link):
    """dℓ/dη by a central difference of scipy's log-pmf, and w = E[score²] summed over the
    support: neither uses the closed forms of hierbayes.families."""
    family, eta, h = FAMILIES[name], np.array([-2.5, -0.7, 0.0, 0.4, 1.3, 2.2]), 1e-6
    kwargs = {"trials": 5.0} if name == "binomial" else {"alpha": 2.0}
    y, logp = _pmf(name, link, eta)
    numeric = (_pmf(name, link, eta + h)[1] - _pmf(name, link, eta - h)[1]) / (2 * h)
    score = np.stack([family.score(np.full(eta.size, k), eta, link, **kwargs) for k in y])
    _close(score, numeric, rtol=1e-6, atol=1e-7)
    fisher = np.sum(np.exp(logp) * score**2, axis=0)
    _close(family.working_weight(eta, link, **kwargs), fisher, rtol=1e-9)


@pytest.mark.parametrize(
    ("name", "link"),
    [(f, lk) for f in ("bernoulli", "binomial") for lk in ("logit", "probit", "cloglog")]
    + [("poisson", "log"), ("negative_binomial", "log"), ("gaussian", "identity"),
       ("gaussian", "log")],
)
def test_weights_and_scores_stay_finite_far_out(name, link):
    family, eta = FAMILIES[name], np.linspace(-800, 800, 321)
    kwargs = {"trials": 4.0, "alpha": 2.0, "sigma": 1.5}
    kwargs = {k: v for k, v in kwargs.items()
              if (k, name) in {("trials", "binomial"), ("alpha", "negative_binomial"),
                               ("sigma", "gaussian")}}
    y = np.ones_like(eta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, divide or invalid warnings either
        with np.errstate(over="ignore"):  # e^800 is inf: a Poisson weight of inf is the truth
            w = family.working_weight(eta, link, **kwargs)
            s = family.score(y, eta, link, **kwargs)
    assert not np.isnan(w).any() and not np.isnan(s).any()
    assert np.all(w >= 0)


def test_errors_name_the_link_family_and_parameter():
    with pytest.raises(hb.FamilyError, match="Unknown link 'probitt'; valid links are: identity"):
        get_link("probitt")
    assert get_link("probit") is LINKS["probit"]
    message = "poisson family has no link 'probit'; valid links: log"
    with pytest.raises(hb.FamilyError, match=message):
        FAMILIES["poisson"].working_weight(np.zeros(3), "probit")
    assert FAMILIES["poisson"].working_weight(np.zeros(3), "log").tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(hb.FamilyError, match="negative_binomial family needs alpha"):
        FAMILIES["negative_binomial"].working_weight(np.zeros(3))
    with pytest.raises(hb.FamilyError, match="student_t family has no GLM working weight"):
        FAMILIES["student_t"].working_weight(np.zeros(3))
    assert get_family("student_t").default_link == "identity"


# --- response draws ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "mean", "var"),
    [
        ("gaussian", {"sigma": 2.0}, 1.5, 4.0),
        ("student_t", {"sigma": 2.0, "nu": 5.0}, 1.5, 4.0 * 5 / 3),
        ("bernoulli", {}, 0.3, 0.21),
        ("binomial", {"trials": 7}, 7 * 0.3, 7 * 0.21),
        ("poisson", {}, 4.0, 4.0),
        ("negative_binomial", {"alpha": 2.0}, 4.0, 4.0 + 16.0 / 2.0),
    ],
)
def test_response_draws_have_the_familys_mean_and_variance(name, kwargs, mean, var):
    mu = {"gaussian": 1.5, "student_t": 1.5, "bernoulli": 0.3, "binomial": 0.3}.get(name, 4.0)
    n = 200_000
    draws = FAMILIES[name].draw(np.full(n, mu), np.random.default_rng(3), **kwargs)
    assert draws.mean() == pytest.approx(mean, abs=5 * np.sqrt(var / n))
    assert draws.var() == pytest.approx(var, rel=0.03)
    if name not in ("gaussian", "student_t"):
        assert np.all(draws == np.round(draws))


# --- prediction ----------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_predicted_means_follow_the_models_link(link):
    from hierbayes.testing.fakes import fake_fit

    data = pd.DataFrame({"y": [0, 1, 1, 0, 1, 1] * 4, "x": np.linspace(-1, 1, 24),
                         "g": list("abcd") * 6})
    fit = fake_fit(hb.build_model("y ~ x + (1 | g)", data, family="bernoulli", link=link),
                   chains=1, draws=15)
    eta = fit.predict(kind="link").values
    _close(fit.predict(kind="mean").values, PROBABILITY_LINKS[link].cdf(eta), atol=1e-300)
    response = fit.predict(kind="response", random_seed=2).values
    assert set(np.unique(response)) <= {0.0, 1.0}


def test_response_draws_with_known_sds_use_the_datas_sds():
    """Without new data, a known-SD model draws its responses with the data's own SDs (this
    raised AttributeError before)."""
    from hierbayes.testing.fakes import fake_fit

    data = hb.datasets.load("eight_schools")
    spec = hb.build_model("effect ~ 1 + (1 | school)", data, known_sigma="se")
    fit = fake_fit(spec, chains=1, draws=4000)
    mean = fit.predict(kind="mean").values.reshape(-1, len(data))
    response = fit.predict(kind="response", random_seed=3).values.reshape(-1, len(data))
    sds = (response - mean).std(axis=0)
    np.testing.assert_allclose(sds, data["se"].to_numpy(), rtol=0.05)
    again = fit.predict(data, kind="response", random_seed=3).values.reshape(-1, len(data))
    np.testing.assert_array_equal(again, response)


# --- the Laplace engine's PIRLS weights ----------------------------------------------------------


def _bernoulli_design():
    data = pd.DataFrame({"y": [0.0, 1.0] * 10, "x": np.arange(20.0), "g": list("ab") * 10})
    return hb.make_design("y ~ x + (1 | g)", data, family="bernoulli")


@pytest.mark.parametrize(("link", "far"), [("probit", 12.0), ("probit", -12.0), ("cloglog", 5.0)])
def test_pirls_weights_of_far_out_observations_are_floored_not_inflated(link, far):
    """R floors μ' at ε; before the shared family table the probit and cloglog weights were
    m·ε²/max(μ(1 − μ), ε²), which is 1 per trial once 1 − μ rounds to 0 (cloglog from η ≈ 3.6):
    an observation that carries no information weighed as much as one at η = 0."""
    family = GlmFamily(_bernoulli_design(), link)
    eta = np.full(20, far)
    assert np.all(family.working(eta).weights == EPS)
    near = np.linspace(-2, 2, 20)
    dist = PROBABILITY_LINKS[link]
    expected = dist.pdf(near) ** 2 / (dist.cdf(near) * dist.sf(near))
    _close(family.working(near).weights, expected)


def test_families_and_links_do_not_load_pymc():
    code = ("import sys, hierbayes.families, hierbayes.links, hierbayes.reml.glmfamily; "
            "print(sorted(m for m in ('pymc', 'pytensor') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
