"""The random-effects assumption: `within()`/`between()` in formulas, `hb.within_between`, the
warning of fit_reml/fit_bayes and the comparison's reason. Checked on simulations where the
assumption holds and where it fails (`hb.simulate.contextual`), against statsmodels'
fixed-effects (group-dummy) and between (group-mean) regressions."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import hierbayes as hb
from hierbayes import mundlak

MODEL = "y ~ x + (1 | g)"
SPLIT = "y ~ within(x, g) + between(x, g) + (1 | g)"


@pytest.fixture(scope="module")
def holds():
    return hb.simulate.contextual(n_groups=200, per_group=4, correlation=0.0, seed=11)


@pytest.fixture(scope="module")
def fails():
    return hb.simulate.contextual(n_groups=200, per_group=4, correlation=0.7, seed=11)


def _quiet_reml(formula, data, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.WithinBetweenWarning)
        return hb.fit_reml(formula, data, **options)


# --- the formula helpers ----------------------------------------------------------------------


def test_within_and_between_split_x_into_deviation_and_group_mean():
    data = pd.DataFrame({"y": np.arange(8.0), "x": [1.0, 3, 2, 6, 10, 12, 0, 0],
                         "g": list("aabbccdd")})
    design = hb.make_design(SPLIT, data)
    assert design.fixed_names == ("Intercept", "within(x, g)", "between(x, g)")
    np.testing.assert_array_equal(design.X[:, 1], [-1, 1, -2, 2, -1, 1, 0, 0])
    np.testing.assert_array_equal(design.X[:, 2], [2, 2, 4, 4, 11, 11, 0, 0])


def test_new_data_are_centred_on_the_training_means():
    data = pd.DataFrame({"y": np.arange(6.0), "x": [1.0, 3, 2, 6, 10, 12], "g": list("aabbcc")})
    design = hb.make_design(SPLIT, data)
    new = pd.DataFrame({"x": [5.0, 5.0, 7.0, 9.0], "g": ["a", "c", "z", "z"]})
    X = design.evaluate(new).X
    # Seen groups use the training means (2 and 11), not the new rows' own means.
    np.testing.assert_array_equal(X[:2, 1], [3, -6])
    np.testing.assert_array_equal(X[:2, 2], [2, 11])
    # An unseen group has no training mean: its own mean in the new data (8).
    np.testing.assert_array_equal(X[2:, 1], [-1, 1])
    np.testing.assert_array_equal(X[2:, 2], [8, 8])


def test_several_grouping_columns_group_by_their_combination():
    data = pd.DataFrame({"y": np.arange(4.0), "x": [1.0, 3, 5, 9], "a": list("aabb"),
                         "b": list("xyxx")})
    design = hb.make_design("y ~ between(x, a, b) + (1 | a)", data)
    np.testing.assert_array_equal(design.X[:, 1], [1, 3, 7, 7])


def test_within_without_a_group_is_an_error_naming_the_fix():
    data = pd.DataFrame({"y": np.arange(4.0), "x": [1.0, 3, 5, 9], "g": list("aabb")})
    with pytest.raises(hb.FormulaError, match=r"within\(x\).*within\(x, g\)"):
        hb.make_design("y ~ within(x) + (1 | g)", data)


def test_the_helpers_take_no_keywords():
    data = pd.DataFrame({"y": np.arange(4.0), "x": [1.0, 3, 5, 9], "g": list("aabb")})
    with pytest.raises(hb.FormulaError, match="a keyword within"):
        hb.make_design("y ~ within(x, g, ddof=1) + (1 | g)", data)


# --- the test ---------------------------------------------------------------------------------


def test_flagged_only_where_the_assumption_fails(holds, fails):
    ok = hb.within_between(MODEL, holds.data)
    bad = hb.within_between(MODEL, fails.data)
    assert list(ok.columns[:8]) == ["term", "group", "within", "between", "difference",
                                    "std_error", "statistic", "p_value"]
    assert ok[["term", "group"]].values.tolist() == [["x", "g"]]
    assert not ok["flagged"].iloc[0] and ok["p_value"].iloc[0] > 0.05
    assert bad["flagged"].iloc[0] and bad["p_value"].iloc[0] < 1e-4
    truth = fails.truth
    # The between slope is the simulation's (1.7), and both the model's single slope and the
    # between slope are far from the within slope.
    row = bad.iloc[0]
    assert abs(row["between"] - truth["between"]) < 2.5 * row["std_error"]
    assert row["estimate"] > truth["within"] + 2.5 * row["within_std_error"]


def test_within_slope_is_the_fixed_effects_estimate_and_recovers_the_truth(fails):
    table = hb.within_between(MODEL, fails.data)
    split = _quiet_reml(SPLIT, fails.data).fixef()
    dummies = smf.ols("y ~ x + C(g)", fails.data).fit()
    assert table["within"].iloc[0] == pytest.approx(dummies.params["x"], abs=1e-8)
    assert split.loc["within(x, g)", "estimate"] == pytest.approx(dummies.params["x"], abs=1e-8)
    se = split.loc["within(x, g)", "std_error"]
    assert abs(split.loc["within(x, g)", "estimate"] - fails.truth["within"]) < 2 * se
    # The model that ignores the split misses it by many of those SEs.
    naive = _quiet_reml(MODEL, fails.data).fixef().loc["x"]
    assert naive["estimate"] - fails.truth["within"] > 2.5 * naive["std_error"]


def test_balanced_between_slope_is_the_regression_of_group_means(fails):
    table = hb.within_between(MODEL, fails.data)
    means = fails.data.groupby("g")[["y", "x"]].mean()
    between = smf.ols("y ~ x", means).fit().params["x"]
    assert table["between"].iloc[0] == pytest.approx(between, abs=1e-8)
    split = _quiet_reml(SPLIT, fails.data).fixef()
    assert split.loc["between(x, g)", "estimate"] == pytest.approx(between, abs=1e-8)


def test_candidates_vary_at_both_levels():
    sim = hb.simulate.contextual(n_groups=20, seed=2).data
    sim["z"] = sim.groupby("g")["x"].transform("mean")  # group-level: constant within
    sim["w"] = sim["x"] - sim["z"]  # centred: no between variation
    # x plus noise, so that it is not exactly z + w (the design would drop it as collinear)
    noise = np.random.default_rng(3).normal(0.0, 0.1, len(sim))
    design = hb.make_design("y ~ x + z + w + (1 | g)", sim.assign(x=sim["x"] + noise))
    assert mundlak.candidate_terms(design) == {"g": [1]}  # x only
    split = hb.make_design(SPLIT, sim)
    assert mundlak.candidate_terms(split) == {}
    assert hb.within_between(SPLIT, sim).empty
    slopes_only = hb.make_design("y ~ x + (0 + x | g)", sim)
    assert mundlak.candidate_terms(slopes_only) == {}


def test_alpha_is_checked(holds):
    with pytest.raises(hb.HierbayesError, match="alpha must be a probability"):
        hb.within_between(MODEL, holds.data, alpha=5)


# --- the warning ------------------------------------------------------------------------------


def test_fit_reml_warns_only_where_the_assumption_fails(holds, fails):
    with warnings.catch_warnings():
        warnings.simplefilter("error", hb.WithinBetweenWarning)
        hb.fit_reml(MODEL, holds.data)
    expected = (r"'x' over 'g': within [01]\.\d+, between 1\.\d+.*within\(x, g\) \+ "
                r"between\(x, g\).*check_within=False")
    with pytest.warns(hb.WithinBetweenWarning, match=expected) as record:
        hb.fit_reml(MODEL, fails.data)
    assert record[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error", hb.WithinBetweenWarning)
        hb.fit_reml(MODEL, fails.data, check_within=False)
        hb.fit_reml(SPLIT, fails.data)  # the split model is the remedy


def test_fit_bayes_warns_before_sampling(fails, holds, mocked_sample):
    with pytest.warns(hb.WithinBetweenWarning, match="'x' over 'g'") as record:
        hb.fit_bayes(MODEL, fails.data, draws=20, chains=1, warn=False)
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", hb.WithinBetweenWarning)
        hb.fit_bayes(MODEL, fails.data, draws=20, chains=1, warn=False, check_within=False)
        hb.fit_bayes(MODEL, holds.data, draws=20, chains=1, warn=False)


def test_a_laplace_fit_is_tested_by_laplace_refits():
    rng = np.random.default_rng(8)
    m = rng.normal(size=40)
    u = 0.6 * m + rng.normal(0, 0.3, 40)  # the group effects follow the group means of x
    g = np.repeat(np.arange(40), 6)
    x = m[g] + rng.normal(size=g.size)
    data = pd.DataFrame({"y": rng.poisson(np.exp(0.2 + 0.3 * x + u[g])), "x": x,
                         "g": [f"g{k:02d}" for k in g]})
    table = hb.within_between(MODEL, data, family="poisson")
    assert table.attrs["method"] == "Laplace" and table["flagged"].iloc[0]
    dummies = smf.glm("y ~ x + C(g)", data, family=sm.families.Poisson()).fit().params["x"]
    # With a Laplace fit the within slope is close to, not equal to, the dummy-variable GLM's.
    assert table["within"].iloc[0] == pytest.approx(dummies, abs=0.02)
    assert table["between"].iloc[0] > 0.7


def test_the_refit_starts_at_the_fits_theta_and_reaches_the_cold_optimum(fails, monkeypatch):
    """refit_like starts the augmented fit at the original θ (a few evaluations, not a whole
    optimisation); it must land where a fit from lme4's start lands."""
    from hierbayes.reml import api

    fit = _quiet_reml(MODEL, fails.data)
    augmented, _ = mundlak.augment(fit.design, "g", mundlak.candidate_terms(fit.design)["g"])
    starts = []
    real = api.fit_reml
    monkeypatch.setattr(api, "fit_reml", lambda *a, **kw: starts.append(kw["start"]) or
                        real(*a, **kw))
    warm = api.refit_like(fit, augmented)
    monkeypatch.undo()
    cold = hb.fit_reml(augmented, check_within=False)
    np.testing.assert_array_equal(starts[0], fit.theta)
    np.testing.assert_allclose(warm.theta, cold.theta, rtol=1e-5)
    np.testing.assert_allclose(warm.beta, cold.beta, rtol=1e-6)


# --- the Bayesian version ---------------------------------------------------------------------


@pytest.mark.slow
def test_posterior_of_the_difference_matches_the_wald_test():
    data = hb.simulate.contextual(n_groups=60, per_group=4, correlation=0.8, seed=3).data
    bayes = hb.fit_bayes(MODEL, data, draws=400, tune=400, chains=2, random_seed=4,
                         progressbar=False, check_within=False, warn=False)
    posterior = hb.within_between(bayes)
    wald = hb.within_between(MODEL, data)
    assert posterior.attrs["method"] == "NUTS"
    row, ref = posterior.iloc[0], wald.iloc[0]
    assert ref["flagged"] and row["flagged"] and row["p_value"] < 0.01
    assert row["difference"] == pytest.approx(ref["difference"], abs=0.5 * ref["std_error"])
    assert row["std_error"] == pytest.approx(ref["std_error"], rel=0.25)
    assert row["within"] == pytest.approx(ref["within"], abs=0.5 * ref["within_std_error"])


def test_the_comparison_lists_the_reason_only_where_the_assumption_fails(holds, fails):
    from hierbayes.testing.fakes import fake_fit

    found = {}
    for name, sim in (("holds", holds), ("fails", fails)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reml = hb.fit_reml(MODEL, sim.data)
            cmp = hb.compare(fake_fit(hb.build_model(MODEL, sim.data), draws=30), reml)
        found[name] = cmp.reasons.set_index("reason")["detail"].to_dict()
    assert "within/between slopes differ" not in found["holds"]
    detail = found["fails"]["within/between slopes differ"]
    assert "the slope of x within the levels of g is 1.02, between them 1.56" in detail
