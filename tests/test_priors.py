"""Default priors (the documented formulas), the prior table, and overrides by name."""

import numpy as np
import pytest
from conftest import SLEEP

import hierbayes as hb
from hierbayes.bayes.priors import make_priors
from hierbayes.datasets import load
from hierbayes.design import make_design

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


def test_sleepstudy_defaults_follow_the_documented_formulas(sleep):
    priors = hb.default_priors(SLEEP, sleep)
    assert list(priors) == ["Intercept", "Days", "sd_Subject", "corr_Subject", "sigma"]
    sd_y, days = sleep["Reaction"].std(), sleep["Days"].to_numpy(float)
    sd_x, mean_x = days.std(), days.mean()
    assert priors["Intercept"] == hb.Prior(
        "Normal",
        mu=sleep["Reaction"].mean(),
        sigma=2.5 * sd_y * np.sqrt(1 + (mean_x / sd_x) ** 2),
    )
    assert priors["Days"] == hb.Prior("Normal", mu=0.0, sigma=2.5 * sd_y / sd_x)
    assert priors["sd_Subject"].distribution == "HalfNormal"
    np.testing.assert_allclose(priors["sd_Subject"].params["sigma"], [sd_y, sd_y / sd_x])
    assert priors["corr_Subject"] == hb.Prior("LKJ", eta=2.0)
    assert priors["sigma"] == hb.Prior("Exponential", lam=1 / sd_y)


def test_prior_table_reads_as_a_frame(sleep):
    frame = hb.default_priors(SLEEP, sleep).to_frame()
    assert list(frame.columns) == [
        "name",
        "distribution",
        "parameters",
        "applies_to",
        "kind",
        "source",
    ]
    row = frame.set_index("name").loc["sd_Subject"]
    assert row["kind"] == "sd" and row["source"] == "default"
    assert "Subject" in row["applies_to"] and row["parameters"].startswith("sigma=[")
    assert "sd_Subject" in repr(hb.default_priors(SLEEP, sleep))


def test_glm_priors_live_on_the_link_scale():
    priors = hb.default_priors(CBPP, load("cbpp"), family="binomial")
    assert priors["Intercept"].params["mu"] == 0.0
    assert priors["sd_herd"] == hb.Prior("HalfNormal", sigma=1.0)
    assert "sigma" not in priors
    counts = load("cbpp").rename(columns={"incidence": "y"})
    poisson = hb.default_priors("y ~ period + (1 | herd)", counts, family="poisson")
    assert poisson["Intercept"].params["mu"] == pytest.approx(np.log(counts["y"].mean()))
    negbin = hb.default_priors("y ~ period + (1 | herd)", counts, family="negative_binomial")
    assert negbin["alpha"] == hb.Prior("InverseGamma", alpha=0.5, beta=0.5)


def test_student_t_has_nu_and_uncorrelated_blocks_have_no_lkj():
    priors = hb.default_priors(
        "log_radon ~ floor + (1 + floor || county)", load("radon"), family="student_t"
    )
    assert {"sd_county", "sd_county.1", "sigma", "nu"} <= set(priors)
    assert not any(name.startswith("corr_") for name in priors)
    assert priors["nu"] == hb.Prior("Gamma", alpha=2.0, beta=0.1)


def test_nested_factors_get_one_sd_prior_each():
    priors = hb.default_priors("strength ~ 1 + (1 | batch/cask)", load("Pastes"))
    assert {"sd_batch", "sd_batch:cask"} <= set(priors)


def test_defaults_scale_with_the_response(sleep):
    base = hb.default_priors(SLEEP, sleep)
    scaled = hb.default_priors(SLEEP, sleep.assign(Reaction=sleep["Reaction"] * 1000))
    for name in ("Intercept", "Days", "sd_Subject"):
        for key, value in base[name].params.items():
            np.testing.assert_allclose(scaled[name].params[key], np.multiply(value, 1000))
    assert scaled["sigma"].params["lam"] == pytest.approx(base["sigma"].params["lam"] / 1000)
    assert scaled["corr_Subject"] == base["corr_Subject"]


def test_overrides_by_name_replace_defaults(sleep):
    design = make_design(SLEEP, sleep)
    priors = make_priors(
        design,
        {"sd_Subject": hb.Prior("HalfNormal", sigma=10), "Days": hb.Prior("Normal", mu=0, sigma=5)},
    )
    assert priors["sd_Subject"] == hb.Prior("HalfNormal", sigma=10)
    assert priors.entry("Days").source == "user"
    assert priors.entry("Intercept").source == "default"
    assert set(priors.overrides) == {"sd_Subject", "Days"}
    per_term = make_priors(design, {"sd_Subject": hb.Prior("Exponential", lam=[0.1, 0.5])})
    assert per_term["sd_Subject"].params["lam"] == [0.1, 0.5]


def test_unknown_prior_name_is_rejected_with_the_valid_names(sleep):
    with pytest.raises(hb.PriorError, match=r"'sd_subject'.*valid names.*sd_Subject.*sigma"):
        make_priors(make_design(SLEEP, sleep), {"sd_subject": hb.Prior("HalfNormal", sigma=1)})
    with pytest.raises(hb.PriorError, match="valid names"):
        hb.default_priors(SLEEP, sleep)["nope"]


@pytest.mark.parametrize(
    ("name", "prior", "match"),
    [
        ("sd_Subject", hb.Prior("Normal", mu=0, sigma=1), "positive support"),
        ("sigma", hb.Prior("StudentT", nu=3, mu=0, sigma=1), "positive support"),
        ("corr_Subject", hb.Prior("HalfNormal", sigma=1), "LKJ"),
        ("corr_Subject", hb.Prior("LKJ", eta=-1), "eta > 0"),
        ("Days", hb.Prior("Nromal", mu=0, sigma=1), "not a PyMC distribution"),
        ("Days", hb.Prior("Normal", mean=0, sd=1), "Invalid parameters"),
        ("Days", hb.Prior("Normal", mu=[0, 1], sigma=1), "must be a scalar"),
        ("sd_Subject", hb.Prior("HalfNormal", sigma=[1, 2, 3]), "one per term"),
        ("Days", hb.Prior("Poisson", mu=1), "continuous"),
    ],
)
def test_invalid_priors_are_rejected(sleep, name, prior, match):
    with pytest.raises(hb.PriorError, match=match):
        make_priors(make_design(SLEEP, sleep), {name: prior})


def test_overrides_must_be_priors(sleep):
    design = make_design(SLEEP, sleep)
    with pytest.raises(hb.PriorError, match=r"must be an hb\.Prior"):
        make_priors(design, {"Days": ("Normal", 0, 1)})
    with pytest.raises(hb.PriorError, match="dict of name"):
        make_priors(design, [hb.Prior("Normal", mu=0, sigma=1)])


def test_prior_value_semantics():
    prior = hb.Prior("HalfNormal", sigma=np.array([1.0, 2.0]))
    assert prior.params == {"sigma": [1.0, 2.0]}
    assert hb.Prior.from_dict(prior.to_dict()) == prior
    assert repr(prior) == "Prior('HalfNormal', sigma=[1.0, 2.0])"
    assert hash(prior) == hash(hb.Prior("HalfNormal", sigma=[1.0, 2.0]))
    with pytest.raises(hb.PriorError, match="named by a string, got 3"):
        hb.Prior(3)
