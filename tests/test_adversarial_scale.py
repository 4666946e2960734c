"""Scale equivariance over the float range (issue 12): a response multiplied by c and a predictor
by d give REML estimates multiplied by c, c/d, ... and a criterion shifted by the log-Jacobian
2(n − p)·log c + 2·log d (REML), for c, d anywhere in 1e-150..1e150 — inside the band the engine
fits as it is, outside it the data are rescaled by powers of two and the fit transformed back
(`hierbayes.reml.scaling`). Where float64 cannot hold the answer (a variance of 1e400) the fit is
refused by name, and the Bayesian model refuses columns whose squares leave float64, since its
data-scaled priors would silently turn into inf or 0; inside that range its priors scale exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hierbayes as hb
from hierbayes.errors import DesignError, HierbayesError

SLEEP = hb.datasets.load("sleepstudy")
SIMPLE = "Reaction ~ Days + (1 | Subject)"
SLOPES = "Reaction ~ Days + (Days | Subject)"
N, P = 180, 2

exponents = st.floats(min_value=-150, max_value=150, allow_nan=False)
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def quietly(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def fit(formula, c=1.0, d=1.0):
    data = SLEEP.assign(Reaction=SLEEP["Reaction"] * c, Days=SLEEP["Days"] * d)
    return quietly(hb.fit_reml, formula, data)


REFERENCE = {SIMPLE: fit(SIMPLE), SLOPES: fit(SLOPES)}


def assert_equivariant(got, ref, c: float, d: float, rtol: float = 1e-5) -> None:
    """`got` is `ref` with the response times c and Days times d."""
    np.testing.assert_allclose(got.beta, ref.beta * [c, c / d], rtol=1e-7)
    factor = np.array([c, c / d])
    np.testing.assert_allclose(np.sqrt(np.diag(got.vcov)), np.sqrt(np.diag(ref.vcov)) * factor,
                               rtol=rtol)
    assert got.sigma == pytest.approx(c * ref.sigma, rel=rtol)
    block_scale = np.array([c, c / d][: ref.covariance["Subject"].shape[0]])
    np.testing.assert_allclose(np.sqrt(np.diag(got.covariance["Subject"])),
                               np.sqrt(np.diag(ref.covariance["Subject"])) * block_scale,
                               rtol=rtol)
    np.testing.assert_allclose(got.modes["Subject"] / block_scale, ref.modes["Subject"],
                               rtol=rtol, atol=rtol * np.abs(ref.modes["Subject"]).max())
    shift = 2 * (N - P) * np.log(c) + 2 * np.log(d)
    assert got.criterion == pytest.approx(ref.criterion + shift, abs=1e-6 * (1 + abs(shift)))
    assert got.singular == ref.singular


@SETTINGS
@given(exponents)
def test_response_scale(e):
    c = 10.0**e
    assert_equivariant(fit(SIMPLE, c=c), REFERENCE[SIMPLE], c, 1.0)


@SETTINGS
@given(exponents)
def test_predictor_scale(e):
    d = 10.0**e
    assert_equivariant(fit(SIMPLE, d=d), REFERENCE[SIMPLE], 1.0, d)


def correlation(cov: np.ndarray) -> float:
    return cov[0, 1] / np.sqrt(cov[0, 0]) / np.sqrt(cov[1, 1])  # no product of two variances


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.floats(min_value=-90, max_value=90, allow_nan=False),
       st.floats(min_value=-60, max_value=60, allow_nan=False))
def test_response_and_varying_slope_scale(e, f):
    """The slope varies by Subject too: its SD and its θ scale with the column (the exponents
    keep the slope's variance, (c/d)², inside float64)."""
    c, d = 10.0**e, 10.0**f
    got, ref = fit(SLOPES, c=c, d=d), REFERENCE[SLOPES]
    assert_equivariant(got, ref, c, d)
    assert correlation(got.covariance["Subject"]) == pytest.approx(
        correlation(ref.covariance["Subject"]), abs=1e-5)
    np.testing.assert_allclose(got.theta, ref.theta * [1, 1 / d, 1 / d], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("d", [0.02, 0.05, 3.0, 20.0, 100.0, 1e5])
def test_a_slope_in_other_units_finds_the_same_optimum(d):
    """Days × 20 once stopped, "converged", at the intercept SD 0 with a criterion 23 too high:
    θ's units follow the column, and the start θ = 1 was far from the optimum."""
    assert_equivariant(fit(SLOPES, d=d), REFERENCE[SLOPES], 1.0, d)


@pytest.mark.parametrize(("c", "d"), [(1e150, 1.0), (1e-130, 1e-100), (1.0, 1e120)])
def test_tables_and_profile_intervals_scale_too(c, d):
    """What users read: fixef, varcorr (profile intervals of the rescaled fit, transformed back),
    ranef and predict."""
    ref, got = REFERENCE[SIMPLE], fit(SIMPLE, c=c, d=d)
    assert type(got).__name__ == "RescaledFit"
    v, v0 = got.varcorr(), ref.varcorr()
    for column in ("estimate", "std_error", "lower", "upper"):
        np.testing.assert_allclose(v[column], v0[column] * c, rtol=1e-5)
    np.testing.assert_allclose(v["variance"], v0["variance"] * c * c, rtol=1e-5)
    np.testing.assert_allclose(got.fixef()["estimate"], ref.fixef()["estimate"] * [c, c / d],
                               rtol=1e-7)
    np.testing.assert_allclose(got.ranef()["estimate"], ref.ranef()["estimate"] * c, rtol=1e-5)
    new = pd.DataFrame({"Days": [2 * d, 7 * d], "Subject": ["308", "new"]})
    np.testing.assert_allclose(got.predict(new), ref.predict(new.assign(Days=[2, 7])) * c,
                               rtol=1e-6)
    assert "Residual" in got.summary() and np.isfinite(got.aic)


def test_inside_the_band_nothing_is_rescaled():
    """Ordinary data take the engine's own path, bit for bit."""
    ref = REFERENCE[SLOPES]
    assert type(ref) is hb.RemlFit
    again = fit(SLOPES, c=1000.0)
    assert type(again) is hb.RemlFit


def poisson_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(20), 15)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(1.0 + (0.4 + rng.normal(0, 0.3, 20)[g]) * x
                           + rng.normal(0, 0.5, 20)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.mark.parametrize("d", [1e6, 30.0, 1e-120, 1e120])
def test_glmm_predictor_and_slope_scale(d):
    """A Poisson GLMM with a varying slope (no residual scale: only x is rescaled). Its β is
    optimised with θ, so PIRLS once failed outright (LinAlgError) on x × 1e6."""
    data = poisson_data()
    ref = quietly(hb.fit_reml, "y ~ x + (x | g)", data, family="poisson")
    got = quietly(hb.fit_reml, "y ~ x + (x | g)", data.assign(x=data["x"] * d),
                  family="poisson")
    np.testing.assert_allclose(got.beta, ref.beta * [1, 1 / d], rtol=1e-5)
    np.testing.assert_allclose(np.diag(got.vcov), np.diag(ref.vcov) * [1, d**-2], rtol=1e-4)
    assert got.criterion == pytest.approx(ref.criterion, abs=1e-6)  # ML: no Jacobian
    np.testing.assert_allclose(np.sqrt(np.diag(got.covariance["g"])),
                               np.sqrt(np.diag(ref.covariance["g"])) * [1, 1 / d], rtol=1e-4)
    v, v0 = got.varcorr(), ref.varcorr()
    np.testing.assert_allclose(v["estimate"], v0["estimate"] * [1, 1 / d, 1], rtol=1e-4)
    np.testing.assert_allclose(v["upper"], v0["upper"] * [1, 1 / d, 1], rtol=1e-3)


@pytest.mark.parametrize(("c", "d", "match"), [
    (1e200, 1.0, r"variance of the fixed effect 'Intercept' .* about 1e\+402.* response"),
    (1e-200, 1.0, r"about 1e-398.* response 'Reaction'"),
    (1e150, 1e-150, r"variance of the fixed effect 'Days' .* 1e\+60\d.*response 'Reaction' "
                    r"and the column 'Days'"),
])
def test_refused_where_float64_cannot_hold_the_answer(c, d, match):
    with pytest.raises(HierbayesError, match=match):
        fit(SIMPLE, c=c, d=d)


# --- the Bayesian model -----------------------------------------------------------------------


def prior_scales(c=1.0, d=1.0) -> dict:
    spec = hb.build_model(SLOPES, SLEEP.assign(Reaction=SLEEP["Reaction"] * c,
                                               Days=SLEEP["Days"] * d))
    return {name: spec.priors[name].params for name in spec.priors}


@pytest.mark.parametrize(("c", "d"), [(1e120, 1.0), (1e-120, 1.0), (1.0, 1e100), (1e50, 1e-80)])
def test_bayes_priors_scale_with_the_data(c, d):
    """The default priors are data-scaled: they move with the units, so the model of c·y says
    what the model of y says."""
    ref, got = prior_scales(), prior_scales(c, d)
    assert got["Intercept"]["mu"] == pytest.approx(ref["Intercept"]["mu"] * c, rel=1e-9)
    assert got["Intercept"]["sigma"] == pytest.approx(ref["Intercept"]["sigma"] * c, rel=1e-9)
    assert got["Days"]["sigma"] == pytest.approx(ref["Days"]["sigma"] * c / d, rel=1e-9)
    np.testing.assert_allclose(got["sd_Subject"]["sigma"],
                               np.array(ref["sd_Subject"]["sigma"]) * [c, c / d], rtol=1e-9)
    assert got["sigma"]["lam"] == pytest.approx(ref["sigma"]["lam"] / c, rel=1e-9)
    assert got["corr_Subject"] == ref["corr_Subject"]


@pytest.mark.parametrize(("c", "d", "match"), [
    (1e160, 1.0, r"the response 'Reaction': its values are of magnitude 3.0e\+162"),
    (1e-200, 1.0, r"the response 'Reaction': its values are of magnitude 3.0e-198"),
    (1.0, 1e160, r"the fixed-effect column 'Days'"),
    (1.0, 1e-160, r"the fixed-effect column 'Days'"),
])
def test_bayes_refuses_what_its_priors_cannot_hold(c, d, match):
    """Without the check the priors read sigma=inf, lam=0 or a slope prior of SD 0."""
    with pytest.raises(DesignError, match=match):
        prior_scales(c, d)
