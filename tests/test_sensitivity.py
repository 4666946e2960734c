"""`cmp.prior_sensitivity()`: power-scaling the hyperpriors. The log prior against scipy, the
weighted medians against plain ones, and (slow) the note's claim: with few groups the group SD
leans on its prior, with many it does not."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.compare.sensitivity import hyperprior_logp, prior_sensitivity, weighted_median
from hierbayes.testing.fakes import fake_fit


def test_weighted_median():
    x = np.random.default_rng(0).permutation(np.linspace(-1, 1, 2001))
    assert weighted_median(x, np.ones_like(x)) == pytest.approx(0.0, abs=1e-12)
    # Twice the weight above 0: a third of the mass lies below 0, so the median is the point a
    # quarter of the way into the upper half.
    assert weighted_median(x, np.where(x > 0, 2.0, 1.0)) == pytest.approx(0.25, abs=1e-3)


def test_hyperprior_log_density_is_the_sd_priors_plus_lkj():
    data = hb.datasets.load("sleepstudy")
    spec = hb.build_model("Reaction ~ Days + (Days | Subject)", data)
    fit = fake_fit(spec, draws=30)
    logp = hyperprior_logp(fit).to_numpy()  # (chain, draw)
    post = fit.posterior
    sd = post["sd_Subject"].transpose("chain", "draw", ...).to_numpy()
    scale = np.asarray(fit.priors["sd_Subject"].params["sigma"])
    expected = stats.halfnorm.logpdf(sd, scale=scale).sum(axis=-1)
    corr = post["corr_Subject"].transpose("chain", "draw", ...).to_numpy()
    eta = fit.priors["corr_Subject"].params["eta"]
    expected += (eta - 1) * np.log(corr[..., 0, 0] * corr[..., 1, 1] - corr[..., 0, 1] ** 2)
    np.testing.assert_allclose(logp, expected, rtol=1e-10)


def test_alphas_are_checked():
    data = hb.datasets.load("sleepstudy")
    fit = fake_fit(hb.build_model("Reaction ~ Days + (1 | Subject)", data), draws=30)
    with pytest.raises(hb.HierbayesError, match=r"alphas must be two powers.*\(0\.5, 2\)"):
        prior_sensitivity(fit, alphas=(2, 0.5))


def groups(J, n=10, seed=1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    y = 5 + rng.normal(0, 1, J)[g] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"g": [f"g{i:02d}" for i in g], "y": y})


@pytest.mark.slow
def test_the_group_sd_leans_on_its_prior_with_3_groups_not_with_80():
    tables = {}
    for J in (3, 80):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hb.SamplingWarning)
            cmp = hb.compare_formula("y ~ 1 + (1 | g)", groups(J), draws=500, tune=500,
                                     chains=2, random_seed=1, progressbar=False)
        tables[J] = cmp.prior_sensitivity().set_index("group")
    few, many = tables[3].loc["g"], tables[80].loc["g"]
    assert few["sensitive"] and few["prior_sensitivity"] > 0.05
    assert not many["sensitive"] and many["prior_sensitivity"] < 0.05
    assert many["diagnosis"] == "not sensitive" and few["diagnosis"] != "not sensitive"
    assert abs(few["shift"]) > 2 * abs(many["shift"])
    # Halving the prior's weight lets the SD grow (a HalfNormal prior pulls it towards 0).
    assert few["median_weaker"] > few["bayes_median"] > few["median_stronger"]
    # The residual SD is pinned by the 30 or 800 rows either way.
    assert not tables[3].loc["Residual", "sensitive"]
    assert few["reml_estimate"] == pytest.approx(hb.fit_reml("y ~ 1 + (1 | g)", groups(3))
                                                 .varcorr()["estimate"].iloc[0])
