"""Crossed GLMMs and the optimiser's robustness: lme4's grouse-ticks example (Elston et al. 2001),
the analytic gradient for several scalar grouping factors, failed PIRLS solves, and the LMM
Newton steps.

References: lme4's own test of this model (tests/elston.R in lme4's repository: θ and β of
`glmer(TICKS ~ YEAR + HEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION), poisson)`), and mixedlm's
glmer (the Rust port of lme4, a test-only dependency) for −2 logLik, which it evaluates at the
exact conditional mode as hierbayes' default does.
"""

import warnings

import mixedlm  # the test extra installs it: a missing one fails loudly
import numpy as np
import pandas as pd
import pytest
from mixedlm.datasets import load_grouseticks
from mixedlm.families import Poisson

import hierbayes as hb
from hierbayes.reml.laplace import LaplaceDeviance
from hierbayes.reml.optimize import fd_gradient

TICKS = "TICKS ~ YEAR + {height} + (1|BROOD) + (1|INDEX) + (1|LOCATION)"
# lme4's tests/elston.R ("lme4 summary results"), raw HEIGHT: θ in lme4's order (INDEX, BROOD,
# LOCATION: lme4 sorts terms by levels) and β (Intercept, YEAR96, YEAR97, HEIGHT).
LME4_THETA = {"INDEX": 0.541509425632023, "BROOD": 0.750034415832756,
              "LOCATION": 0.528723159081737}
LME4_BETA = [11.3559080756861, 1.1804105508475, -0.978704335712111, -0.0237607330254979]
FITS: dict = {}


def ticks() -> pd.DataFrame:
    if "data" not in FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the loader's own pandas deprecation notice
            FITS["data"] = load_grouseticks()  # factors as strings (INDEX, BROOD, YEAR, LOCATION)
    return FITS["data"].copy()


def fit_ticks(height: str, **kwargs):
    key = (height, tuple(sorted(kwargs.items())))
    if key not in FITS:
        data = ticks()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # neither singular, unconverged nor separated
            FITS[key] = hb.fit_reml(TICKS.format(height=height), data, family="poisson",
                                    **kwargs)
    return FITS[key]


def mixedlm_minus2loglik(height: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mixedlm.glmer(TICKS.format(height=height), ticks(), family=Poisson())
    return -2.0 * float(fit.logLik().value)


@pytest.mark.parametrize("height", ["HEIGHT", "cHEIGHT"])
def test_grouseticks_default_fit_lands_on_lme4s_optimum(height):
    """The default (exact Laplace) fit used to raise numpy's LinAlgError from a diverged PIRLS
    solve; raw and centred HEIGHT now both reach lme4's θ and β."""
    fit = fit_ticks(height)
    assert fit.converged and fit.laplace == "exact" and fit.deviance.has_gradient
    theta = dict(zip([b.group for b in fit.design.blocks], fit.theta, strict=True))
    for group, value in LME4_THETA.items():
        assert theta[group] == pytest.approx(value, abs=5e-5), group
    beta = fit.fixef()["estimate"].to_numpy()
    se = fit.fixef()["std_error"].to_numpy()
    lme4 = np.array(LME4_BETA)
    if height == "cHEIGHT":  # centring moves the intercept only
        lme4[0] += lme4[3] * ticks()["HEIGHT"].mean()
    assert np.all(np.abs(beta - lme4) < 1e-3 * se)
    assert fit.criterion == pytest.approx(mixedlm_minus2loglik(height), abs=1e-6)


def test_grouseticks_lme4_mode_is_lme4s_deviance_above_the_exact_one():
    exact, lme4 = fit_ticks("cHEIGHT"), fit_ticks("cHEIGHT", laplace="lme4")
    assert lme4.converged
    # glmer's evaluation (modes one PIRLS step short) sits above the exact Laplace value.
    assert 0 < lme4.criterion - exact.criterion < 1e-4
    assert np.allclose(lme4.theta, exact.theta, atol=1e-4)


def test_a_failed_pirls_solve_is_infinite_not_an_exception():
    """At β 40× the optimum the Poisson weights overflow and the Schur complement is not
    positive definite in floating point: the deviance is +inf there (the optimiser backs off),
    and the next evaluation restarts its modes, so it equals a fresh deviance's value."""
    fit = fit_ticks("cHEIGHT")
    dev = LaplaceDeviance(fit.design)
    far = np.concatenate([fit.theta, 40 * fit.beta])
    assert dev(far) == np.inf
    assert np.all(dev.gradient(far) == 0.0)
    at = np.concatenate([fit.theta, fit.beta])
    assert dev(at) == pytest.approx(LaplaceDeviance(fit.design)(at), abs=1e-9)
    assert dev(at) == pytest.approx(fit.criterion, abs=1e-9)


def crossed_binomial(seed=3, n=600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, x = rng.integers(0, 20, n), rng.integers(0, 15, n), rng.normal(size=n)
    eta = -0.3 + 0.5 * x + rng.normal(0, 0.8, 20)[a] + rng.normal(0, 0.5, 15)[b]
    m = rng.integers(1, 6, n)
    y = rng.binomial(m, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "f": m - y, "x": x, "a": [f"a{i}" for i in a],
                         "b": [f"b{i}" for i in b]})


@pytest.mark.parametrize("case", ["ticks", "binomial"])
def test_crossed_analytic_gradient_matches_central_differences(case):
    if case == "ticks":
        design = hb.make_design(TICKS.format(height="cHEIGHT"), ticks(), "poisson")
        par = np.array([0.6, 0.5, 0.4, 0.3, 1.0, -0.8, -0.02])
    else:
        design = hb.make_design("cbind(y, f) ~ x + (1|a) + (1|b) + (1|a:b)",
                                crossed_binomial(), "binomial")
        par = np.array([0.7, 0.4, 0.2, -0.2, 0.4])
    dev = LaplaceDeviance(design)
    assert dev.has_gradient and dev.crossed_rows is not None
    analytic = dev.gradient(par)
    numeric = fd_gradient(dev, par, dev.lower_bounds)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-4)
    theta = par[:dev.n_theta]
    _, profiled = dev.profiled_value_and_gradient(theta)
    np.testing.assert_allclose(profiled, fd_gradient(dev.profiled, theta,
                                                     dev.thetas.lower_bounds),
                               rtol=1e-6, atol=1e-5)


def test_crossed_gradient_is_not_claimed_where_it_does_not_apply():
    """Two scalar blocks on one factor ((1|b) + (0+x|b)) and the probit link keep finite
    differences."""
    data = crossed_binomial()
    two_blocks = hb.make_design("cbind(y, f) ~ x + (1|a) + (1|b) + (0 + x|b)", data, "binomial")
    assert not LaplaceDeviance(two_blocks).has_gradient
    probit = hb.make_design("cbind(y, f) ~ x + (1|a) + (1|b)", data, "binomial")
    assert not LaplaceDeviance(probit, link="probit").has_gradient
    assert LaplaceDeviance(probit).has_gradient


def test_crossed_binomial_matches_mixedlm():
    data = crossed_binomial()
    formula = "cbind(y, f) ~ x + (1|a) + (1|b)"
    fit = hb.fit_reml(formula, data, family="binomial")
    from mixedlm.families import Binomial
    data = data.assign(n=data["y"] + data["f"], p=data["y"] / (data["y"] + data["f"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.glmer("p ~ x + (1|a) + (1|b)", data, family=Binomial(),
                               weights=data["n"].to_numpy(float))
    # mixedlm's binomial logLik leaves out the binomial coefficients; compare the β and θ.
    assert fit.beta == pytest.approx(np.array(list(theirs.fixef().values())), abs=1e-5)
    assert fit.theta == pytest.approx(np.asarray(theirs.theta), abs=1e-4)
