"""Known per-observation residual SDs on the Bayesian side: Rubin's eight schools."""

import warnings

import numpy as np
import pytest

import hierbayes as hb

FORMULA = "effect ~ 1 + (1 | school)"
PRIORS = {"sd_school": hb.Prior("HalfCauchy", beta=5.0)}


@pytest.fixture(scope="module")
def schools_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SamplingWarning)
        return hb.fit_bayes(
            FORMULA,
            hb.simulate.eight_schools(),
            known_sigma="se",
            priors=PRIORS,
            draws=1000,
            tune=1000,
            chains=2,
            random_seed=3,
            target_accept=0.95,
            progressbar=False,
        )


def test_no_residual_sd_and_the_known_answer(schools_fit):
    assert "sigma" not in schools_fit.priors and "sigma" not in schools_fit.idata["posterior"]
    assert schools_fit.settings["marginalize"] is False  # one σ per observation: standard path
    mu = schools_fit.fixef().loc["Intercept"]
    # With tau integrated over, mu's posterior lies between the pooled estimate (7.7, SE 4.1)
    # and the unpooled mean; BDA3 §5.5 reports a posterior mean near 8 with SD near 5.
    assert 6.0 < mu["estimate"] < 10.0 and 3.5 < mu["std_error"] < 6.0
    tau = schools_fit.varcorr().set_index("group").loc["school"]
    assert 1.0 < tau["median"] < 5.0 and tau["upper"] > 8.0
    assert set(schools_fit.varcorr()["group"]) == {"school"}  # no Residual row


def test_likelihood_uses_the_known_sds(schools_fit):
    data = hb.simulate.eight_schools()
    ll = schools_fit.log_likelihood().stack(s=("chain", "draw")).transpose("s", "obs").to_numpy()
    post = schools_fit.idata["posterior"]
    mean = (
        (post["beta"].sel(fixed="Intercept") + post["r_school"].sel(school__term="Intercept"))
        .stack(s=("chain", "draw"))
        .transpose("s", "school")
        .to_numpy()
    )
    se = data["se"].to_numpy()
    expected = (
        -0.5 * np.log(2 * np.pi * se**2) - 0.5 * ((data["effect"].to_numpy() - mean) / se) ** 2
    )
    assert np.allclose(ll, expected, atol=1e-8)


def test_compare_save_load_and_predict(schools_fit, tmp_path):
    data = hb.simulate.eight_schools()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)
        reml = hb.fit_reml(FORMULA, data, known_sigma="se")
    cmp = hb.compare(schools_fit, reml)
    assert cmp.variance["singular"].all()  # REML tau is exactly 0 on these data
    assert (cmp.groups["lambda_bayes"] > 0).all() and np.allclose(cmp.groups["lambda_reml"], 0)
    schools_fit.save(tmp_path / "fit.nc")
    again = hb.load(tmp_path / "fit.nc")
    assert np.array_equal(again.design.known_sigma, data["se"].to_numpy(float))
    draws = schools_fit.predict(data, kind="response", random_seed=1)
    assert draws.shape[-1] == 8
    with pytest.raises(hb.HierbayesError, match="need that column too"):
        schools_fit.predict(data.drop(columns="se"), kind="response")
