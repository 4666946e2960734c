"""Centred or non-centred group effects per block (`hierbayes.bayes.centring`).

- the data share κ of a block's levels, from the REML/Laplace fit, against its closed form for a
  logistic model (n_j p(1 − p) s² / (1 + n_j p(1 − p) s²), s the SD at the low end of its
  plausible range), for large groups (centred), small ones and few groups (non-centred);
- the centred model has the variables of the non-centred one (``z = L⁻¹ r``), and the choice can
  be forced or named;
- (slow) on a model with large groups the chosen (centred) form mixes better than the non-centred
  one: min bulk ESS of the group effects, their SD and the intercept.
"""

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
from bayes_support import NUTS

import hierbayes as hb
from hierbayes.bayes import centring
from hierbayes.testing.fakes import fake_posterior

FORMULA = "y ~ x + (1 | g)"


def simulate_logistic(groups: int, per_group: int, sd: float, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    eta = 0.2 + 0.5 * x + rng.normal(0.0, sd, groups)[g]
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:03d}" for k in g]})


CASES = {  # name -> (groups, rows per group, true SD)
    "large groups": (12, 400, 1.0),
    "small groups": (150, 4, 0.4),
    "few groups of middling size": (10, 20, 0.6),  # informative at the estimate, not below it
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_data_share_decides_the_parametrization(name):
    groups, per_group, sd = CASES[name]
    spec = hb.build_model(FORMULA, simulate_logistic(groups, per_group, sd), family="bernoulli")
    share = centring.data_share(spec.design, "logit")["g"]
    reml = hb.fit_reml(spec.design)
    sd_hat = float(np.sqrt(reml.covariance["g"][0, 0]))
    p = 1.0 / (1.0 + np.exp(-(spec.design.X @ reml.beta)))
    info = per_group * float(np.mean(p * (1.0 - p)))  # Fisher information of one level
    low = sd_hat * np.exp(-2.0 / np.sqrt(2.0 * (groups - 1)))
    closed_form = info * low**2 / (1.0 + info * low**2)
    assert share == pytest.approx(closed_form, abs=0.05)
    at_estimate = info * sd_hat**2 / (1.0 + info * sd_hat**2)
    if name == "large groups":
        assert share > 0.9 and spec.centred == ("g",)
        assert [v.name for v in spec.model.free_RVs] == ["beta", "sd_g", "c_g"]
    else:
        assert share < centring.THRESHOLD and spec.centred == ()
        assert [v.name for v in spec.model.free_RVs] == ["beta", "z_g", "sd_g"]
    if name == "few groups of middling size":  # the low end, not the estimate, decides
        assert at_estimate > centring.THRESHOLD


def test_a_centred_block_records_z_and_r_as_the_non_centred_one():
    data = hb.datasets.load("sleepstudy")
    spec = hb.build_model("Reaction ~ Days + (Days | Subject)", data, centred=True)
    assert spec.centred == ("Subject",)
    posterior = fake_posterior(spec, chains=1, draws=20)["posterior"].to_dataset()
    for d in range(20):
        sd = posterior["sd_Subject"].values[0, d]
        L = np.diag(sd) @ np.linalg.cholesky(posterior["corr_Subject"].values[0, d])
        r, z = posterior["r_Subject"].values[0, d], posterior["z_Subject"].values[0, d]
        np.testing.assert_allclose(r, z @ L.T, rtol=1e-8, atol=1e-10)  # r_l = L z_l
        # Hierarchical centring: the free coefficients are β + r for the terms also fixed.
        c, beta = posterior["c_Subject"].values[0, d], posterior["beta"].values[0, d]
        np.testing.assert_allclose(c, r + beta, rtol=1e-10, atol=1e-10)
    assert posterior["z_Subject"].dims == posterior["r_Subject"].dims


def test_the_choice_can_be_forced_and_named():
    data = simulate_logistic(20, 10, 0.5)
    data["h"] = np.where(np.arange(len(data)) % 2 == 0, "odd", "even")
    formula = "y ~ x + (1 | g) + (1 | h)"
    assert hb.build_model(formula, data, "bernoulli", centred=False).centred == ()
    assert hb.build_model(formula, data, "bernoulli", centred=True).centred == ("g", "h")
    assert hb.build_model(formula, data, "bernoulli", centred=["h"]).centred == ("h",)
    with pytest.raises(hb.HierbayesError, match=r"block names \(g, h\); got \['zip'\]"):
        hb.build_model(formula, data, "bernoulli", centred=["zip"])
    # Gaussian identity models are sampled marginally by default: nothing to choose.
    gaussian = hb.build_model("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
    assert gaussian.centred == ()
    assert centring.choose(gaussian.design, "identity") == ("Subject",)  # ten days per subject


# 4,800 Bernoulli rows sampled twice: 2 × 500 draws show the gap (the non-centred form's intercept
# and group effects move along their ridge) at a quarter of the cost of 4 × 1000.
CHEAP = {"draws": 500, "tune": 500, "chains": 2}


@pytest.mark.slow
def test_centring_large_groups_mixes_better():
    data = simulate_logistic(*CASES["large groups"])
    fits = {
        c: hb.fit_bayes(FORMULA, data, family="bernoulli", centred=c, warn=False,
                        **{**NUTS, **CHEAP})
        for c in (None, False)
    }
    assert fits[None].spec.centred == ("g",) and fits[False].spec.centred == ()

    def min_ess(fit):  # over the fixed effects, the SD and every group effect
        return min(float(azs.ess(fit.draws(kind), method="bulk").min())
                   for kind in ("fixef", "varcorr", "ranef"))

    chosen, noncentred = min_ess(fits[None]), min_ess(fits[False])
    assert chosen >= noncentred, (chosen, noncentred)
    for fit in fits.values():
        assert int(fit.idata["sample_stats"]["diverging"].sum()) == 0
