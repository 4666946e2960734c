"""`cmp.groups["complete_pool"]`: the pooled regression beside no pooling, REML and posterior.

The posterior side is mocked (`hierbayes.testing.fakes`): complete pooling reads only the design
and the frequentist fit."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import load_reference

import hierbayes as hb
from hierbayes.compare.complete import complete_pooling
from hierbayes.testing.fakes import fake_fit


def _compare(formula, data, family="gaussian"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = hb.build_model(formula, data, family=family)
        reml = hb.fit_reml(formula, data, family=family)
        return hb.compare(fake_fit(spec, draws=40), reml), reml


def test_complete_pool_is_the_pooled_least_squares_fit_minus_the_population_value():
    data, _ = load_reference("sleepstudy")
    cmp, reml = _compare("Reaction ~ Days + (Days | Subject)", data)
    ols = sm.OLS(data["Reaction"], sm.add_constant(data["Days"])).fit().params
    g = cmp.groups
    for term, pooled in (("Intercept", ols["const"]), ("Days", ols["Days"])):
        values = g.loc[g["term"] == term, "complete_pool"]
        np.testing.assert_allclose(values, pooled - reml.fixef().loc[term, "estimate"],
                                   rtol=0, atol=1e-8)
    # The population value plus complete_pool is every group's pooled coefficient.
    assert (g["population_reml"] + g["complete_pool"]).groupby(g["term"]).nunique().eq(1).all()


def test_unbalanced_groups_pool_to_the_raw_mean_not_the_mixed_model_mean():
    sim = hb.simulate.zip_income(n_zips=40, seed=3)
    cmp, _ = _compare("income ~ 1 + (1 | zip)", sim.data)
    pooled = cmp.groups["complete_pool"] + cmp.groups["population_reml"]
    np.testing.assert_allclose(pooled, sim.data["income"].mean(), rtol=1e-12)
    # Big ZIPs dominate the raw mean; the mixed model weighs ZIPs more evenly: they differ.
    assert abs(cmp.groups["complete_pool"].iloc[0]) > 1e-3


def test_complete_pool_of_a_binomial_model_is_the_pooled_glm():
    data, _ = load_reference("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    cmp, reml = _compare(formula, data, family="binomial")
    X = pd.get_dummies(data["period"].astype(str), prefix="p", drop_first=True, dtype=float)
    endog = np.column_stack([data["incidence"], data["size"] - data["incidence"]])
    glm = sm.GLM(endog, sm.add_constant(X), family=sm.families.Binomial()).fit(tol=1e-12)
    expected = glm.params["const"] - reml.fixef().loc["Intercept", "estimate"]
    np.testing.assert_allclose(cmp.groups["complete_pool"], expected, atol=1e-7)


def test_a_term_outside_the_fixed_part_pools_to_zero():
    data, _ = load_reference("sleepstudy")
    cmp, _ = _compare("Reaction ~ 1 + (0 + Days | Subject)", data)
    assert (cmp.groups["complete_pool"] == 0).all()


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
def test_complete_pooling_of_count_models_matches_statsmodels(family):
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(0.4 + 0.3 * x + rng.normal(0, 0.5, 15)[g]))
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})
    design = hb.make_design("y ~ x + (1 | g)", data, family=family)
    alpha = 1.7 if family == "negative_binomial" else None
    # statsmodels' NB2 alpha is 1/α of var = μ + μ²/α
    sm_family = (sm.families.Poisson() if alpha is None
                 else sm.families.NegativeBinomial(alpha=1 / alpha))
    glm = sm.GLM(data["y"], sm.add_constant(data["x"]), family=sm_family).fit(tol=1e-12)
    np.testing.assert_allclose(complete_pooling(design, alpha=alpha), glm.params, atol=1e-8)


def test_separated_pooled_glm_has_no_finite_estimate():
    data = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1] * 2, "x": [-3, -2, -1, 1, 2, 3] * 2,
                         "g": list("aabbcc") * 2})
    design = hb.make_design("y ~ x + (1 | g)", data, family="bernoulli")
    assert np.isnan(complete_pooling(design)).all()


def test_naive_variance_of_zip_means_is_biased_high_and_reml_is_not():
    """var(ȳ_j) ≈ τ² + mean(σ²/n_j): each ZIP mean carries its own noise."""
    sim = hb.simulate.zip_income(n_zips=300, seed=3)
    data, tau2, sigma2 = sim.data, sim.truth["sd_zip"] ** 2, sim.truth["sigma"] ** 2
    means = data.groupby("zip")["income"].mean()
    sizes = data.groupby("zip").size()
    naive = means.var()
    assert naive > 1.8 * tau2
    assert naive == pytest.approx(tau2 + np.mean(sigma2 / sizes), rel=0.1)
    reml = hb.fit_reml("income ~ 1 + (1 | zip)", data)
    tau2_hat = reml.varcorr().set_index("group").loc["zip", "estimate"] ** 2
    assert tau2_hat == pytest.approx(tau2, rel=0.2) and tau2_hat < naive / 1.8
