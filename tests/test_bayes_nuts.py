"""Real NUTS fits (few, small, seeded): agreement with lme4, recovery, scale equivariance, seeds.

They run in CI: each model is sampled once per test run (see `bayes_support.shared_fit`); the cost
is nutpie's compilation, a few seconds per model.

References:
- sleepstudy ``Reaction ~ Days + (Days | Subject)``: lme4's fit in tests/reference/sleepstudy.json;
- radon ``log_radon ~ floor + (1 | county)``: the shipped radon reference is the correlated model
  ``(1 + floor | county)``, so the random-intercept model is refitted by REML here with statsmodels'
  MixedLM (an independent implementation; for this model its REML estimates are lme4's);
- cbpp: no true values exist, so lme4's estimates (tests/reference/cbpp.json) stand in for them;
- Poisson and negative binomial: simulated with known parameters (`bayes_support.TRUE_COUNTS`).
"""

import functools

import numpy as np
import pandas as pd
import pytest
from bayes_support import TRUE_COUNTS, nuts_fit, shared_fit, simulate_counts, simulate_gaussian
from conftest import SLEEP, lme4_name, load_reference

import hierbayes as hb
from hierbayes.datasets import load

pytestmark = pytest.mark.slow

RADON = "log_radon ~ floor + (1 | county)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


COUNTS = "y ~ x + (1 | g)"

# Each model is sampled once per test run (`shared_fit`, by these keys).
FITS = {
    "sleep": lambda: nuts_fit(SLEEP, load("sleepstudy")),
    "radon": lambda: nuts_fit(RADON, load("radon")),
    "cbpp": lambda: nuts_fit(CBPP, load("cbpp"), family="binomial"),
    "poisson": lambda: nuts_fit(COUNTS, simulate_counts("poisson"), family="poisson"),
    "negative_binomial": lambda: nuts_fit(
        COUNTS, simulate_counts("negative_binomial"), family="negative_binomial"
    ),
    "sleep1000": lambda: nuts_fit(
        SLEEP, load("sleepstudy").assign(Reaction=lambda d: d["Reaction"] * 1000)
    ),
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """name -> the NUTS fit of `FITS[name]`."""
    return functools.cache(lambda name: shared_fit(name, FITS[name], tmp_path_factory))


@pytest.fixture(scope="module")
def sleep_fit(fitted):
    return fitted("sleep")


@pytest.fixture(scope="module")
def radon_fit(fitted):
    return fitted("radon")


@pytest.fixture(scope="module")
def radon_reference():
    import statsmodels.formula.api as smf

    data = load("radon")
    result = smf.mixedlm("log_radon ~ floor", data, groups=data["county"]).fit(reml=True)
    modes = {str(level): float(values.iloc[0]) for level, values in result.random_effects.items()}
    return {"Intercept": result.fe_params["Intercept"], "floor": result.fe_params["floor"]}, modes


# --- agreement with lme4 ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FITS))
def test_every_fit_converges(name, fitted):
    """All six checks pass (no divergence, R-hat ≤ 1.01, ESS ≥ 100 per chain, BFMI, tree depth):
    the numbers the other tests compare come from a converged posterior."""
    table = fitted(name).diagnostics().set_index("check")
    assert table.loc["divergences", "value"] == 0
    assert table.loc["max R-hat", "value"] <= 1.01
    assert table["ok"].all(), table.attrs["messages"]


def test_sleepstudy_fixed_effects_match_lme4(sleep_fit):
    _, ref = load_reference("sleepstudy")
    table = sleep_fit.fixef()
    for term, row in table.iterrows():
        lme4 = ref["fixed_effects"]["estimate"][lme4_name(term)]
        assert abs(row["estimate"] - lme4) <= 0.25 * row["std_error"], term


def test_sleepstudy_group_effects_correlate_with_lme4_modes(sleep_fit):
    _, ref = load_reference("sleepstudy")
    modes = pd.DataFrame(ref["ranef"])
    modes["term"] = modes["term"].replace("(Intercept)", "Intercept")
    merged = sleep_fit.ranef().merge(
        modes, left_on=["level", "term"], right_on=["grp", "term"], validate="one_to_one"
    )
    assert len(merged) == 36
    for term, rows in merged.groupby("term"):
        assert np.corrcoef(rows["estimate"], rows["condval"])[0, 1] > 0.98, term


def test_sleepstudy_correlation_is_in_the_posterior_and_varcorr(sleep_fit):
    assert sleep_fit.posterior["corr_Subject"].shape[-2:] == (2, 2)
    row = sleep_fit.varcorr().query("term2 == 'Days'").iloc[0]
    assert row["group"] == "Subject" and row["term1"] == "Intercept"
    assert -1 < row["lower"] < row["estimate"] < row["upper"] < 1


def test_radon_matches_reml(radon_fit, radon_reference):
    fixed, modes = radon_reference
    table = radon_fit.fixef()
    for term, row in table.iterrows():
        assert abs(row["estimate"] - fixed[term]) <= 0.25 * row["std_error"], term
    ranef = radon_fit.ranef()
    reml = ranef["level"].map(modes)
    assert reml.notna().all()
    assert np.corrcoef(ranef["estimate"], reml)[0, 1] > 0.98


# --- recovery -----------------------------------------------------------------------------------


def _inside(lower, value, upper, what):
    assert lower <= value <= upper, f"{what}: {value} outside [{lower:.4g}, {upper:.4g}]"


def test_cbpp_contains_lme4_estimates(fitted):
    fit = fitted("cbpp")
    _, ref = load_reference("cbpp")
    for term, row in fit.fixef(ci_prob=0.9).iterrows():
        _inside(row["lower"], ref["fixed_effects"]["estimate"][lme4_name(term)], row["upper"], term)
    sd = fit.varcorr(ci_prob=0.9).iloc[0]
    _inside(sd["lower"], ref["variance_components"]["herd"]["sd"]["(Intercept)"], sd["upper"], "sd")


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
def test_count_models_recover_true_parameters(family, fitted):
    fit = fitted(family)
    for term, row in fit.fixef(ci_prob=0.9).iterrows():
        _inside(row["lower"], TRUE_COUNTS[term], row["upper"], term)
    sd = fit.varcorr(ci_prob=0.9).iloc[0]
    _inside(sd["lower"], TRUE_COUNTS["sd_g"], sd["upper"], "sd_g")
    if family == "negative_binomial":
        lower, upper = np.quantile(fit.posterior["alpha"].values, [0.05, 0.95])
        _inside(lower, TRUE_COUNTS["alpha"], upper, "alpha")


# --- scale equivariance ---------------------------------------------------------------------


def test_scaling_y_scales_beta_sds_and_sigma(sleep_fit, fitted):
    base, big = sleep_fit.arviz_summary(), fitted("sleep1000").arviz_summary()
    assert list(base.index) == list(big.index)
    for label in base.index:
        factor = 1.0 if label.startswith("corr_") else 1000.0
        diff = big.loc[label, "mean"] / factor - base.loc[label, "mean"]
        mcse = np.hypot(big.loc[label, "mcse_mean"] / factor, base.loc[label, "mcse_mean"])
        assert abs(diff) <= 4 * mcse, (label, diff, mcse)


# --- reproducibility ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampler", "path"), [("nutpie", "standard"), ("pymc", "grouped")]
)  # nutpie on the marginal (grouped) path, the default: test_marginal_nuts.py, not slow
def test_same_seed_same_draws(sampler, path):
    spec = hb.build_model("y ~ x + (1 | g)", simulate_gaussian())
    settings = {
        "draws": 100,
        "tune": 100,
        "chains": 2,
        "sampler": sampler,
        "warn": False,
        "progressbar": False,
        "marginalize": path != "standard",
    }
    first = hb.sample(spec, random_seed=11, **settings)
    other = hb.sample(spec, random_seed=12, **settings)
    second = hb.sample(spec, random_seed=11, **settings)  # after other runs of the same spec
    assert first.idata["posterior"].attrs["inference_library"] == sampler
    assert first.settings["marginal_path"] == path
    for name in ("beta", "sd_g", "r_g", "sigma"):
        np.testing.assert_array_equal(first.posterior[name], second.posterior[name])
    assert not np.array_equal(first.posterior["beta"], other.posterior["beta"])


# --- the rest of the fit's surface on a real posterior ----------------------------------------


def test_loo_and_predictive_checks_work(sleep_fit):
    import arviz_stats as azs

    assert np.isfinite(sleep_fit.loo().elpd)  # computes the pointwise log-likelihood first
    assert np.isfinite(azs.loo(sleep_fit.idata).elpd)  # which the fit now holds
    ppc = sleep_fit.sample_posterior_predictive(random_seed=1)["posterior_predictive"]["y"]
    observed = load("sleepstudy")["Reaction"]
    assert abs(float(ppc.mean()) - observed.mean()) < 0.05 * observed.std()


def test_new_subjects_are_more_uncertain_than_known_ones(sleep_fit):
    new = pd.DataFrame({"Days": [5, 5], "Subject": ["308", "unknown"]})
    frame = sleep_fit.predict(new, summary=True, random_seed=1)
    assert frame["std_error"].iloc[1] > 1.5 * frame["std_error"].iloc[0]
    population = sleep_fit.predict(new, group_effects="population", summary=True)
    assert frame["estimate"].iloc[1] == pytest.approx(population["estimate"].iloc[1], rel=0.02)


def test_real_fit_round_trips_through_a_file(sleep_fit, tmp_path):
    sleep_fit.save(tmp_path / "sleep.nc")
    loaded = hb.load(tmp_path / "sleep.nc")
    pd.testing.assert_frame_equal(loaded.arviz_summary(), sleep_fit.arviz_summary())
    pd.testing.assert_frame_equal(loaded.varcorr(), sleep_fit.varcorr())
    new = load("sleepstudy").iloc[:5].assign(Subject="someone new")
    np.testing.assert_array_equal(
        loaded.predict(new, kind="response", random_seed=4).values,
        sleep_fit.predict(new, kind="response", random_seed=4).values,
    )
