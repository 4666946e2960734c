"""Gamma (log link) and Gaussian non-identity-link GLMMs by the Laplace approximation, with the
dispersion (the Gamma's shape α, the Gaussian's σ) estimated jointly with (θ, β).

References (mixedlm fixes these families' dispersion at 1, so it is no reference here): the
Gaussian identity link through the same Laplace machinery is exactly lmer's ML fit (the Laplace
approximation is exact for a Gaussian); the Gamma fit at θ = 0 is the Gamma GLM, whose ML fit
over (β, α) is computed independently with scipy; and simulated truths."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import hierbayes as hb
from hierbayes.errors import DesignError, HierbayesError
from hierbayes.reml.glmm import fit_glmm


def simulated(seed=101, n=1500, groups=26, sd=0.5):
    rng = np.random.default_rng(seed)
    g, x = rng.integers(0, groups, n), rng.uniform(size=n)
    eta = 1 + 0.5 * x + rng.normal(0, sd, groups)[g]
    return pd.DataFrame({"y": rng.gamma(2.0, np.exp(eta) / 2.0),  # shape 2, mean e^η
                         "yg": np.exp(eta) + rng.normal(0, 0.5, n), "x": x,
                         "g": [f"g{i:02d}" for i in g]})


def test_gaussian_identity_by_laplace_is_lmers_ml_fit():
    design = hb.make_design("yg ~ x + (1 | g)", simulated())
    ml = hb.fit_reml(design, method="ML")
    laplace = fit_glmm(design, link="identity")
    assert laplace.criterion == pytest.approx(ml.criterion, abs=1e-7)
    assert laplace.beta == pytest.approx(ml.beta, abs=1e-6)
    assert laplace.dispersion == pytest.approx(ml.sigma, rel=1e-6)  # σ
    assert laplace.theta[0] == pytest.approx(ml.theta[0] * ml.sigma, rel=1e-5)  # absolute SD


def test_gaussian_log_link_recovers_the_truth():
    fit = hb.fit_reml("yg ~ x + (1 | g)", simulated(), link="log")
    assert fit.method == "Laplace" and fit.family == "gaussian" and fit.link == "log"
    assert fit.converged and fit.dispersion == pytest.approx(0.5, rel=0.05)
    assert fit.theta[0] == pytest.approx(0.5, rel=0.3)
    table = fit.fixef()
    assert np.all(np.abs(table["estimate"] - [1.0, 0.5]) < 3 * table["std_error"])
    assert "gaussian(σ = " in fit.summary()


def test_gamma_recovers_the_truth():
    fit = hb.fit_reml("y ~ x + (1 | g)", simulated(), family="gamma")
    assert fit.converged and fit.link == "log"
    assert fit.dispersion == pytest.approx(2.0, rel=0.1)  # the shape
    assert fit.theta[0] == pytest.approx(0.5, rel=0.3)
    table = fit.fixef()
    assert np.all(np.abs(table["estimate"] - [1.0, 0.5]) < 3 * table["std_error"])
    assert "gamma(α = " in fit.summary()
    ve = fit.variance_explained()
    assert ve.residual == pytest.approx(np.log1p(1.0 / fit.dispersion))  # lognormal: log(1+1/α)


def test_gamma_at_theta_zero_is_the_gamma_glm():
    """At θ = 0 the Laplace deviance is the Gamma GLM's −2 log-likelihood (scipy's density) at
    every (β, α); minimised over them it is the GLM's ML fit, found here independently."""
    data = simulated(seed=7, sd=0.0)
    fit = hb.fit_reml("y ~ x + (1 | g)", data, family="gamma")
    y, X = data["y"].to_numpy(), np.column_stack([np.ones(len(data)), data["x"]])

    def minus2loglik(par):
        mu, shape = np.exp(X @ par[:2]), np.exp(par[2])
        return -2.0 * stats.gamma.logpdf(y, shape, scale=mu / shape).sum()

    from hierbayes.reml.negbin import WithDispersion
    laplace = WithDispersion(fit.deviance)
    for par in ([0.9, 0.4, 0.5], [1.2, 0.6, 1.1]):
        assert laplace([0.0, *par]) == pytest.approx(minus2loglik(np.array(par)), rel=1e-12)
    best = optimize.minimize(minus2loglik, np.zeros(3), method="BFGS", options={"gtol": 1e-8})
    glm = optimize.minimize(lambda p: laplace([0.0, *p]), best.x * 0.9, method="BFGS",
                            options={"gtol": 1e-8})
    assert glm.fun == pytest.approx(best.fun, abs=1e-6)
    assert fit.criterion <= best.fun + 1e-8  # the random effect can only help
    fit.deviance.set_dispersion(fit.dispersion)


def test_gamma_family_table_and_bayesian_likelihood():
    from hierbayes.families import get_family
    family = get_family("gamma")
    assert family.links == ("log",) and family.response == "positive"
    mu = np.array([0.5, 2.0, 7.0])
    assert family.variance(mu) == pytest.approx(mu ** 2)
    draws = family.draw(np.full(200_000, 3.0), np.random.default_rng(0), alpha=4.0)
    assert draws.mean() == pytest.approx(3.0, rel=0.01)
    assert draws.var() == pytest.approx(9.0 / 4.0, rel=0.03)
    data = simulated().iloc[:200]
    spec = hb.build_model("y ~ x + (1 | g)", data, family="gamma")
    point = spec.model.initial_point()
    logp = spec.model.compile_logp(vars=spec.model.observed_RVs)(point)
    beta = np.asarray(point["beta"])
    shape = float(np.exp(point["alpha_log__"]))
    eta = spec.design.X @ beta  # the group effects start at 0
    expected = stats.gamma.logpdf(data["y"], shape, scale=np.exp(eta) / shape).sum()
    assert logp == pytest.approx(expected, rel=1e-8)


def test_continuous_families_refuse_what_does_not_apply():
    data = simulated()
    with pytest.raises(DesignError, match="positive response"):
        hb.fit_reml("yg ~ x + (1 | g)", data.assign(yg=data["yg"] - 100), family="gamma")
    with pytest.raises(HierbayesError, match="exact Laplace value only"):
        hb.fit_reml("y ~ x + (1 | g)", data, family="gamma", laplace="lme4")
    with pytest.raises(hb.FamilyError, match="no link"):
        hb.fit_reml("y ~ x + (1 | g)", data, family="gamma", link="logit")
