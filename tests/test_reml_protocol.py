"""One fit contract on both sides (hierbayes.tidy.Fit) and one fit class for LMMs and GLMMs.

The Bayesian fits are `hierbayes.testing.fakes.fake_fit`s (prior draws standing in for NUTS): the
tables' shapes do not depend on the draws.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

import hierbayes as hb
from hierbayes.errors import HierbayesError
from hierbayes.reml import GlmmFit, OptimResult, RemlFit
from hierbayes.testing.fakes import fake_fit
from hierbayes.tidy import FIXEF_COLUMNS, RANEF_COLUMNS, VARCORR_COLUMNS, Fit

SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def sleep_pair():
    data, _ = load_reference("sleepstudy")
    return fake_fit(hb.build_model(SLEEP, data), chains=2, draws=40), hb.fit_reml(SLEEP, data)


@pytest.fixture(scope="module")
def cbpp_pair():
    data, _ = load_reference("cbpp")
    bayes = fake_fit(hb.build_model(CBPP, data, family="binomial"), chains=2, draws=40)
    return bayes, hb.fit_reml(CBPP, data, family="binomial")


@pytest.mark.parametrize("pair", ["sleep_pair", "cbpp_pair"])
@pytest.mark.parametrize(("table", "core"), [("fixef", FIXEF_COLUMNS),
                                             ("varcorr", VARCORR_COLUMNS),
                                             ("ranef", RANEF_COLUMNS)])
def test_core_columns_match_by_name_order_and_dtype(pair, table, core, request):
    bayes, reml = request.getfixturevalue(pair)
    b, r = getattr(bayes, table)(ci_prob=0.9), getattr(reml, table)(ci_prob=0.9)
    assert list(b.columns[:len(core)]) == core == list(r.columns[:len(core)])
    pd.testing.assert_series_equal(b.dtypes[core], r.dtypes[core])
    assert b.index.dtype == r.index.dtype
    # The same rows in the same order: comparison is a join.
    keys = {"fixef": [], "varcorr": ["group", "term1", "term2"],
            "ranef": ["group", "level", "term"]}[table]
    if keys:
        pd.testing.assert_frame_equal(b[keys], r[keys])
    else:
        assert list(b.index) == list(r.index)
    assert "90%" in b.attrs["interval"] and "90%" in r.attrs["interval"]


def test_each_side_keeps_its_documented_extras(sleep_pair):
    bayes, reml = sleep_pair
    assert list(bayes.varcorr().columns[7:]) == ["median", "block"]
    assert list(reml.varcorr().columns[7:]) == ["variance", "covariance", "block"]
    assert list(bayes.fixef().columns[4:]) == ["median"]
    assert list(reml.fixef().columns[4:]) == ["statistic"]
    assert list(bayes.ranef().columns[7:]) == ["median", "block"]
    assert list(reml.ranef().columns[7:]) == ["block"]


def test_interval_kinds_are_named(sleep_pair):
    bayes, reml = sleep_pair
    for table in ("fixef", "varcorr", "ranef"):
        assert "equal-tailed credible" in getattr(bayes, table)().attrs["interval"]
    assert "Wald" in reml.fixef().attrs["interval"]
    assert "Wald" in reml.ranef().attrs["interval"]
    assert "profile likelihood" in reml.varcorr().attrs["interval"]
    assert "Wald" not in reml.varcorr().attrs["interval"]


def test_variance_on_sd_rows_covariance_on_correlation_rows(sleep_pair):
    """Never a covariance in the `variance` column: each has its own column and rows."""
    _, reml = sleep_pair
    vc = reml.varcorr()
    sd, corr = vc[vc["term2"].isna()], vc[vc["term2"].notna()]
    np.testing.assert_allclose(sd["variance"], sd["estimate"] ** 2, rtol=1e-12)
    assert sd["covariance"].isna().all() and corr["variance"].isna().all()
    cov = reml.covariance["Subject"]
    assert corr["covariance"].item() == pytest.approx(cov[0, 1], rel=1e-12)
    assert corr["estimate"].item() == pytest.approx(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]))


def test_both_fits_satisfy_the_protocol(sleep_pair, cbpp_pair):
    for fit in (*sleep_pair, *cbpp_pair):
        assert isinstance(fit, Fit)
    assert not isinstance(object(), Fit)
    assert [f.method for f in (*sleep_pair, *cbpp_pair)] == ["NUTS", "REML", "NUTS", "Laplace"]
    assert [f.link for f in (*sleep_pair, *cbpp_pair)] == ["identity"] * 2 + ["logit"] * 2


@pytest.mark.parametrize("bad", [2, 0, -1, True, "0.9", np.nan])
def test_both_sides_reject_the_same_bad_ci_prob(sleep_pair, bad):
    for fit in sleep_pair:
        for table in (fit.fixef, fit.varcorr, fit.ranef):
            with pytest.raises(HierbayesError, match=r"ci_prob must be a probability.*got"):
                table(ci_prob=bad)


# --- one fit class -------------------------------------------------------------------------


def test_lmm_and_glmm_are_one_class_built_the_same_way(sleep_pair, cbpp_pair):
    reml, glmm = sleep_pair[1], cbpp_pair[1]
    assert type(reml) is type(glmm) is RemlFit and GlmmFit is RemlFit
    assert isinstance(reml.optim, OptimResult) and isinstance(glmm.optim, OptimResult)
    assert reml.optim.par.shape == (3,) and glmm.optim.par.shape == (1 + 4,)
    assert glmm.optim.stage1 is not None and reml.optim.stage1 is None
    # What differs is in fields, each with a value on both sides.
    assert (reml.method, reml.family, reml.link, reml.laplace) == ("REML", "gaussian",
                                                                   "identity", None)
    assert (glmm.method, glmm.family, glmm.link, glmm.laplace) == ("Laplace", "binomial",
                                                                   "logit", "exact")
    assert (reml.vcov_source, glmm.vcov_source) == ("RX", "Hessian")
    assert reml.dispersion is None and glmm.dispersion is None and glmm.separated == ()
    np.testing.assert_array_equal(reml.vcov_rx, reml.vcov)
    assert not np.allclose(glmm.vcov_rx, glmm.vcov)  # glmer's Hessian accounts for θ
    assert (reml.sigma_known, reml.sd_scale) == (False, reml.sigma)
    assert (glmm.sigma, glmm.sd_scale) == (None, 1.0)
    assert (reml.n_params, glmm.n_params) == (2 + 3 + 1, 4 + 1)


def test_negative_binomial_dispersion_is_a_field_of_the_fit():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 30, 600)
    mu = np.exp(1 + rng.normal(0, 0.5, 30)[g])
    data = pd.DataFrame({"y": rng.negative_binomial(2, 2 / (2 + mu)),
                         "g": [f"g{i}" for i in g]})
    fit = hb.fit_reml("y ~ 1 + (1 | g)", data, family="negative_binomial")
    assert type(fit) is RemlFit and fit.family == "negative_binomial" and fit.link == "log"
    assert fit.dispersion == fit.optim.dispersion == fit.deviance.family.alpha
    assert 1.0 < fit.dispersion < 4.0 and fit.n_params == 1 + 1 + 1
    vc = fit.varcorr()
    row = vc.iloc[0]
    assert 0 < row["lower"] < row["estimate"] < row["upper"] and row["std_error"] > 0
    assert fit.deviance.family.alpha == fit.dispersion  # profiling put α̂ back


def test_lme4_laplace_mode_profiles_its_own_deviance():
    data, _ = load_reference("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = hb.fit_reml(CBPP, data, family="binomial")
        lme4 = hb.fit_reml(CBPP, data, family="binomial", laplace="lme4")
    assert lme4.laplace == "lme4" and exact.laplace == "exact"
    e, m = exact.varcorr().iloc[0], lme4.varcorr().iloc[0]
    # Different deviances (lme4's is 5.7e-4 higher), nearly the same intervals.
    assert e["upper"] == pytest.approx(m["upper"], rel=1e-3) and e["upper"] != m["upper"]
    assert e["lower"] == pytest.approx(m["lower"], rel=1e-3)
