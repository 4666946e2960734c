"""BayesFit plumbing with mocked sampling: prior draws stand in for the posterior (no NUTS)."""

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from bayes_support import simulate_counts, simulate_gaussian
from conftest import SLEEP

import hierbayes as hb
from hierbayes.bayes import sampling
from hierbayes.datasets import load
from hierbayes.testing.fakes import fake_fit


@pytest.fixture(scope="module")
def sleep_fit():
    return fake_fit(hb.build_model(SLEEP, load("sleepstudy")), chains=2, draws=100)


@pytest.fixture(scope="module")
def cbpp_fit():
    spec = hb.build_model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"), "binomial"
    )
    return fake_fit(spec, chains=2, draws=60)


# --- tidy tables ----------------------------------------------------------------------------


def test_fixef_is_the_posterior_mean_sd_and_95_interval(sleep_fit):
    table = sleep_fit.fixef()
    beta = sleep_fit.posterior["beta"].stack(s=("chain", "draw"))
    assert list(table.index) == ["Intercept", "Days"]
    assert {"estimate", "std_error", "lower", "upper", "median"} <= set(table.columns)
    np.testing.assert_allclose(table["estimate"], beta.mean("s"))
    np.testing.assert_allclose(table["std_error"], beta.std("s", ddof=1))
    np.testing.assert_allclose(table["lower"], beta.quantile(0.025, "s"))
    assert table.attrs["interval"] == "95% equal-tailed credible interval"
    narrow = sleep_fit.fixef(ci_prob=0.5)
    assert narrow.attrs["interval"] == "50% equal-tailed credible interval"
    assert (narrow["upper"] - narrow["lower"] < table["upper"] - table["lower"]).all()
    with pytest.raises(hb.HierbayesError, match="ci_prob"):
        sleep_fit.fixef(ci_prob=95)


def test_varcorr_rows_follow_the_shared_layout(sleep_fit):
    table = sleep_fit.varcorr()
    keys = [
        tuple(None if pd.isna(v) else v for v in (r.group, r.term1, r.term2))
        for r in table.itertuples()
    ]
    assert keys == [
        ("Subject", "Intercept", None),
        ("Subject", "Days", None),
        ("Subject", "Intercept", "Days"),
        ("Residual", None, None),
    ]
    post = sleep_fit.posterior
    sd = post["sd_Subject"].sel(Subject__term="Days").values.mean()
    corr = post["corr_Subject"].sel(Subject__term="Intercept", Subject__term2="Days").values
    assert table["estimate"][1] == pytest.approx(sd)
    assert table["estimate"][2] == pytest.approx(corr.mean())
    assert table["estimate"][3] == pytest.approx(post["sigma"].values.mean())
    assert {"std_error", "median", "lower", "upper"} <= set(table.columns)
    assert list(table["block"]) == ["Subject"] * 3 + ["Residual"]


def test_ranef_is_per_level_and_term_from_r(sleep_fit):
    table = sleep_fit.ranef()
    assert len(table) == 36 and list(table["term"][:4]) == ["Intercept", "Days"] * 2
    assert list(table["level"][:4]) == ["308", "308", "309", "309"]  # level-major, as REML
    row = table[(table["level"] == "333") & (table["term"] == "Days")].iloc[0]
    r = sleep_fit.posterior["r_Subject"].sel(Subject="333", Subject__term="Days").values
    assert row["group"] == "Subject"
    assert row["estimate"] == pytest.approx(r.mean())
    assert row["std_error"] == pytest.approx(r.std(ddof=1))


@pytest.mark.parametrize("what", ["fixef", "varcorr", "ranef"])
def test_draws_line_up_with_the_tables(sleep_fit, what):
    draws = sleep_fit.draws(what)
    table = getattr(sleep_fit, what)()
    assert draws.dims[:2] == ("chain", "draw")
    np.testing.assert_allclose(draws.mean(("chain", "draw")).values, table["estimate"])
    if what == "ranef":
        assert list(draws["level"].values) == list(table["level"])
    if what == "varcorr":
        assert list(draws["group"].values) == list(table["group"])


def test_draws_rejects_unknown_kinds(sleep_fit):
    with pytest.raises(hb.HierbayesError, match="fixef, varcorr, ranef"):
        sleep_fit.draws("sd")


def test_summary_has_one_row_per_reported_parameter(sleep_fit):
    summary = sleep_fit.arviz_summary()
    assert list(summary.index) == [
        "beta[Intercept]",
        "beta[Days]",
        "sd_Subject[Intercept]",
        "sd_Subject[Days]",
        "corr_Subject[Intercept, Days]",
        "sigma",
    ]
    assert {"mean", "r_hat", "ess_bulk", "eti95_lb"} <= set(summary.columns)


# --- prediction -----------------------------------------------------------------------------


def _manual_link(fit, frame, with_groups=True):
    beta = fit.posterior["beta"].values  # (C, D, 2)
    r = fit.posterior["r_Subject"]
    eta = beta[..., 0, None] + beta[..., 1, None] * frame["Days"].to_numpy()
    if with_groups:
        rs = r.sel(Subject=frame["Subject"].to_list()).values  # (C, D, n, 2)
        eta = eta + rs[..., 0] + rs[..., 1] * frame["Days"].to_numpy()
    return eta


def test_predict_seen_levels_and_population(sleep_fit):
    data = load("sleepstudy")
    np.testing.assert_allclose(sleep_fit.predict(kind="link").values, _manual_link(sleep_fit, data))
    population = sleep_fit.predict(kind="link", group_effects="population")
    np.testing.assert_allclose(population.values, _manual_link(sleep_fit, data, False))
    assert sleep_fit.predict().dims == ("chain", "draw", "obs")


def test_unseen_levels_draw_one_effect_per_level(sleep_fit):
    new = pd.DataFrame({"Days": [0, 0, 0, 5], "Subject": ["new", "new", "other", "308"]})
    draws = sleep_fit.predict(new, kind="link", random_seed=1).values
    np.testing.assert_array_equal(draws[..., 0], draws[..., 1])  # same new level, same effect
    assert not np.allclose(draws[..., 0], draws[..., 2])
    np.testing.assert_allclose(draws[..., 3], _manual_link(sleep_fit, new.iloc[3:])[..., 0])
    zero = sleep_fit.predict(new, kind="link", group_effects="zero_new").values
    population = sleep_fit.predict(new, kind="link", group_effects="population").values
    np.testing.assert_allclose(zero[..., :3], population[..., :3])
    assert draws[..., 0].std() > zero[..., 0].std()
    again = sleep_fit.predict(new, kind="link", random_seed=1).values
    np.testing.assert_array_equal(draws, again)


def test_new_level_effects_follow_the_fitted_covariance(sleep_fit):
    """Many unseen levels: their effects' spread per draw matches sd_Subject of that draw."""
    new = pd.DataFrame({"Days": np.zeros(400), "Subject": [f"n{i}" for i in range(400)]})
    link = sleep_fit.predict(new, kind="link", random_seed=3).values
    base = sleep_fit.predict(new, kind="link", group_effects="population").values
    spread = (link - base).std(axis=-1)
    sd = sleep_fit.posterior["sd_Subject"].sel(Subject__term="Intercept").values
    np.testing.assert_allclose(spread / sd, 1.0, atol=0.2)


def test_predict_summary_and_choices(sleep_fit):
    new = load("sleepstudy").iloc[[3, 7]]
    frame = sleep_fit.predict(new, summary=True, ci_prob=0.9)
    assert list(frame.index) == [3, 7]
    assert list(frame.columns) == ["estimate", "std_error", "median", "lower", "upper"]
    assert frame.attrs["interval"].startswith("90%")
    with pytest.raises(hb.HierbayesError, match="kind"):
        sleep_fit.predict(new, kind="probability")
    with pytest.raises(hb.HierbayesError, match="group_effects"):
        sleep_fit.predict(new, group_effects="new")


def test_binomial_predictions(cbpp_fit):
    data = load("cbpp")
    link = cbpp_fit.predict(kind="link").values
    mean = cbpp_fit.predict(kind="mean").values
    np.testing.assert_allclose(mean, 1 / (1 + np.exp(-link)))
    response = cbpp_fit.predict(data, kind="response", random_seed=2).values
    assert np.all(response <= data["size"].to_numpy()) and np.all(response == np.round(response))
    with pytest.raises(hb.DesignError, match="trials"):
        cbpp_fit.predict(data.drop(columns="incidence"), kind="response")


@pytest.mark.parametrize(
    ("family", "formula", "support"),
    [
        ("student_t", "Reaction ~ Days + (1 | Subject)", "real"),
        ("bernoulli", "y ~ x + (1 | g)", "binary"),
        ("poisson", "y ~ x + (1 | g)", "count"),
        ("negative_binomial", "y ~ x + (1 | g)", "count"),
    ],
)
def test_response_draws_have_the_family_support(family, formula, support):
    data = load("sleepstudy") if family == "student_t" else simulate_counts("poisson")
    if family == "bernoulli":
        data = data.assign(y=(data["y"] > 1).astype(int))
    fit = fake_fit(hb.build_model(formula, data, family=family), chains=2, draws=20)
    draws = fit.predict(data.iloc[:7], kind="response", random_seed=1).values
    assert draws.shape == (2, 20, 7) and np.isfinite(draws).all()
    if support == "binary":
        assert set(np.unique(draws)) <= {0.0, 1.0}
    if support == "count":
        assert (draws >= 0).all() and (draws == np.round(draws)).all()


def test_posterior_and_prior_predictive_extend_idata(sleep_fit):
    out = sleep_fit.sample_posterior_predictive(random_seed=1)
    assert out["posterior_predictive"]["y"].shape == (2, 100, 180)
    assert "posterior_predictive" in sleep_fit.idata.children
    sleep_fit.sample_prior_predictive(draws=10, random_seed=1)
    assert {"prior", "prior_predictive"} <= set(sleep_fit.idata.children)


# --- diagnostics ----------------------------------------------------------------------------


def _with_stats(fit, **changes):
    idata = fit.idata.copy()
    stats = idata["sample_stats"].to_dataset()
    for name, values in changes.items():
        stats[name] = (("chain", "draw"), values)
    idata["sample_stats"] = xr.DataTree(stats)
    return hb.BayesFit(fit.spec, idata, fit.settings)


def test_divergences_name_target_accept_and_the_funnel_sd():
    spec = hb.build_model("diameter ~ 1 + (1 | plate) + (1 | sample)", load("Penicillin"))
    fit = fake_fit(spec, chains=2, draws=100)
    sd = fit.posterior["sd_sample"].values[..., 0]
    diverging = sd < np.quantile(sd, 0.1)  # where sd_sample is small: a funnel's neck
    fit = _with_stats(fit, diverging=diverging)
    table = fit.diagnostics()
    row = table.set_index("check").loc["divergences"]
    assert row["value"] == diverging.sum() and not row["ok"]
    assert row["where"] == "sd_sample"
    assert "target_accept" in row["message"] and "'sd_sample'" in row["message"]
    with pytest.warns(hb.SamplingWarning, match="divergent"):
        fit.diagnostics(warn=True)


def test_failed_checks_give_remedies(sleep_fit):
    chains, draws = 2, 100
    rng = np.random.default_rng(0)
    hits = np.zeros((chains, draws), bool)
    hits[0, :3] = True
    energy = np.cumsum(rng.normal(size=(chains, draws)), axis=1)  # a random walk: low BFMI
    fit = _with_stats(sleep_fit, maxdepth_reached=hits, energy=energy)
    table = fit.diagnostics().set_index("check")
    assert list(table.index) == [
        "divergences",
        "max R-hat",
        "min bulk ESS",
        "min tail ESS",
        "min BFMI",
        "tree depth hits",
    ]
    assert table.loc["tree depth hits", "value"] == 3
    assert "max_treedepth" in table.loc["tree depth hits", "message"]
    assert not table.loc["min BFMI", "ok"] and "tune" in table.loc["min BFMI", "message"]
    assert table.loc["divergences", "ok"] and table.loc["divergences", "message"] == ""
    assert table.loc["min bulk ESS", "threshold"] == 200


def test_rhat_flags_chains_that_disagree(sleep_fit):
    posterior = sleep_fit.posterior.copy()
    posterior["beta"] = posterior["beta"] + xr.DataArray([0.0, 500.0], dims="chain")
    idata = sleep_fit.idata.copy()
    idata["posterior"] = xr.DataTree(posterior)
    fit = hb.BayesFit(sleep_fit.spec, idata, sleep_fit.settings)
    row = fit.diagnostics().set_index("check").loc["max R-hat"]
    assert not row["ok"] and row["where"].startswith("beta[")
    assert "tune=2000" in row["message"]
    assert fit.diagnostics().attrs["messages"]


# --- fit_bayes / sample with mocked pm.sample -------------------------------------------------


def test_fit_bayes_passes_settings_to_pm_sample(mocked_sample):
    with pytest.warns(hb.SamplingWarning):  # prior draws are no converged posterior
        fit = hb.fit_bayes(
            SLEEP,
            load("sleepstudy"),
            draws=30,
            tune=7,
            chains=2,
            random_seed=5,
            progressbar=False,
            cores=1,
            marginalize=False,  # the mocked sampler feeds prior draws of the standard model
        )
    (call,) = mocked_sample
    assert call["nuts_sampler"] == "nutpie" and call["target_accept"] == 0.9
    assert call["random_seed"] == 5 and call["tune"] == 7 and call["cores"] == 1
    assert call["progressbar"] is False
    assert fit.settings == {
        "draws": 30,
        "tune": 7,
        "chains": 2,
        "random_seed": 5,
        "sampler": "nutpie",
        "target_accept": 0.9,
        "marginalize": False,
        "marginal_path": "standard",
    }
    assert fit.log_likelihood().dims == ("chain", "draw", "obs")
    assert np.isfinite(fit.loo().elpd)


def test_staged_path_records_a_seed_and_can_stay_quiet(mocked_sample):
    spec = hb.build_model("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", hb.SamplingWarning)
        fit = hb.sample(spec, draws=20, chains=2, sampler="pymc", warn=False, marginalize=False)
    assert isinstance(fit.settings["random_seed"], int)
    assert mocked_sample[0]["random_seed"] == fit.settings["random_seed"]
    assert mocked_sample[0]["nuts_sampler"] == "pymc"
    assert fit.priors is spec.priors
    # A fresh build of the same model was sampled (exact reproducibility, see hb.sampling).
    assert fit.model is mocked_sample[0]["model"] and fit.model is not spec.model
    assert list(fit.model.named_vars) == list(spec.model.named_vars)


def test_a_model_extended_by_the_user_is_sampled_as_it_is(mocked_sample):
    spec = hb.build_model("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))
    with spec.model:
        pm.Deterministic("sd_ratio", spec.model["sd_Subject"][0] / spec.model["sigma"])
    fit = hb.sample(spec, draws=20, chains=2, warn=False)
    assert mocked_sample[0]["model"] is spec.model and fit.model is spec.model


def test_sampler_choice_and_bad_arguments():
    assert sampling.resolve_sampler(None) == "nutpie"
    assert sampling.resolve_sampler("pymc") == "pymc"
    with pytest.raises(hb.HierbayesError, match="valid samplers: nutpie, pymc, numpyro"):
        sampling.resolve_sampler("stan")
    spec = hb.build_model("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))
    with pytest.raises(hb.HierbayesError, match="random_seed"):
        hb.sample(spec, random_seed=1.5)
    with pytest.raises(hb.HierbayesError, match="BayesModel"):
        hb.sample(spec.model)


def test_numpyro_without_jax_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sampling, "_installed", lambda module: module != "jax")
    with pytest.raises(ImportError, match=r"sampler='numpyro' needs jax, which is not installed"
                       r".*pip install 'hierbayes\[jax\]'"):
        sampling.resolve_sampler("numpyro")
    monkeypatch.setattr(sampling, "_installed", lambda module: True)
    assert sampling.resolve_sampler("numpyro") == "numpyro"
    monkeypatch.setattr(sampling, "_installed", lambda module: module != "nutpie")
    assert sampling.resolve_sampler(None) == "pymc"  # the fallback without nutpie


# --- save / load ------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    data = load("sleepstudy")
    data["Subject"] = pd.Categorical(data["Subject"], categories=sorted(set(data["Subject"]))[::-1])
    priors = {"sd_Subject": hb.Prior("HalfNormal", sigma=[40.0, 10.0])}
    fit = fake_fit(hb.build_model(SLEEP, data, priors=priors), chains=2, draws=40)
    stats = fit.idata["sample_stats"].to_dataset()
    stats["divergence_message"] = (("chain", "draw"), np.full((2, 40), None, dtype=object))
    fit.idata["sample_stats"] = xr.DataTree(stats)
    fit.save(tmp_path / "fit.nc")
    assert fit.idata["sample_stats"]["divergence_message"].values[0, 0] is None  # untouched
    loaded = hb.load(tmp_path / "fit.nc")
    assert loaded.spec.design.blocks[0].levels == fit.design.blocks[0].levels  # category order
    assert loaded.priors.entry("sd_Subject").source == "user"
    assert dict(loaded.priors) == dict(fit.priors)
    assert loaded.settings == fit.settings and loaded.formula == SLEEP
    pd.testing.assert_frame_equal(loaded.fixef(), fit.fixef())
    pd.testing.assert_frame_equal(loaded.varcorr(), fit.varcorr())
    pd.testing.assert_frame_equal(loaded.ranef(), fit.ranef())
    new = data.iloc[:4].assign(Subject=["x", "x", "308", "y"])
    np.testing.assert_array_equal(
        loaded.predict(new, random_seed=9).values, fit.predict(new, random_seed=9).values
    )


def test_load_rejects_foreign_files(tmp_path):
    xr.DataTree(xr.Dataset({"a": ("x", [1.0])})).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(hb.HierbayesError, match=r"not written by BayesFit\.save"):
        hb.load(tmp_path / "other.nc")
    with pytest.raises(hb.HierbayesError, match=r"datasets\.load"):
        hb.load("radon")


@pytest.mark.parametrize(
    ("formula", "shapes"), [("y ~ x", (2, 1, 0)), ("y ~ 0 + (1 | g)", (0, 2, 6))]
)
def test_models_without_group_or_fixed_effects(formula, shapes):
    fit = fake_fit(hb.build_model(formula, simulate_gaussian()), chains=2, draws=30)
    assert (len(fit.fixef()), len(fit.varcorr()), len(fit.ranef())) == shapes
    assert fit.varcorr()["group"].iloc[-1] == "Residual"
    new = simulate_gaussian().iloc[:3].assign(g="new")
    assert fit.predict(new, summary=True)["estimate"].notna().all()
    assert len(fit.diagnostics()) == 6


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"draws": -5}, "draws must be a whole number >= 1, got -5"),
        ({"chains": 0}, "chains must be a whole number >= 1, got 0"),
        ({"tune": 2.5}, "tune must be a whole number >= 0, got 2.5"),
        ({"target_accept": 1.5}, "target_accept must lie strictly between 0 and 1"),
    ],
)
def test_bad_sampler_settings_are_named(setting, message):
    with pytest.raises(hb.HierbayesError, match=message):
        hb.fit_bayes(SLEEP, load("sleepstudy"), progressbar=False, **setting)
