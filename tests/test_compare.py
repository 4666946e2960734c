"""The comparison of the posterior with the REML fit: tables, shrinkage, verdicts, guard."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference
from scipy import stats

import hierbayes as hb
from hierbayes.compare.guard import check_same_model
from hierbayes.compare.nopool import no_pooling
from hierbayes.simulate import zip_income

SAMPLING = {"draws": 500, "tune": 500, "chains": 2, "random_seed": 11, "progressbar": False}


@pytest.fixture(scope="module")
def zip_data():
    return zip_income(n_zips=300, seed=3)


@pytest.fixture(scope="module")
def zip_cmp(zip_data):
    return hb.compare_formula("income ~ 1 + (1 | zip)", zip_data.data, **SAMPLING)


def test_reml_lambda_is_the_textbook_formula(zip_cmp, zip_data):
    reml = zip_cmp.reml
    tau = reml.varcorr().query("group == 'zip'")["estimate"].iloc[0]
    n = zip_cmp.groups["n"].to_numpy()
    expected = tau**2 / (tau**2 + reml.sigma**2 / n)
    assert np.allclose(zip_cmp.groups["lambda_reml"], expected, atol=1e-8, rtol=0)
    assert np.array_equal(n, zip_data.truth["n"].loc[zip_cmp.groups["level"]].to_numpy())


def test_reml_modes_are_lambda_times_group_mean_residual(zip_cmp, zip_data):
    groups = zip_cmp.groups
    beta0 = zip_cmp.reml.fixef().loc["Intercept", "estimate"]
    means = zip_data.data.groupby("zip")["income"].mean().loc[groups["level"]].to_numpy()
    assert np.allclose(groups["no_pool"], means - beta0, atol=1e-9)
    assert np.allclose(groups["reml_estimate"], groups["lambda_reml"] * (means - beta0), atol=1e-6)
    # For a Gaussian random intercept, the estimate moves exactly the REML shrinkage fraction.
    assert np.allclose(groups["moved_reml"], groups["shrinkage_reml"], atol=1e-6)


def test_larger_groups_shrink_less(zip_cmp):
    groups = zip_cmp.groups.sort_values("n")
    for side in ("reml", "bayes"):
        lam = groups.groupby("n")[f"lambda_{side}"].mean().to_numpy()
        assert np.all(np.diff(lam) > 0), side


def test_bayes_and_reml_agree_for_large_groups_less_for_tiny(zip_cmp):
    groups = zip_cmp.groups
    large, tiny = groups[groups["n"] >= 100], groups[groups["n"] <= 3]
    assert len(large) > 20 and len(tiny) > 10
    assert large["std_diff"].abs().max() < 0.25
    assert large["agree"].all()
    # Tiny groups lean on τ, which the posterior averages over and REML plugs in: their shrinkage
    # factors and uncertainties part; large groups barely depend on τ.
    lam_gap = (groups["lambda_bayes"] - groups["lambda_reml"]).abs()
    assert lam_gap[large.index].max() < 0.01
    assert lam_gap[tiny.index].mean() > 5 * lam_gap[large.index].mean()


def test_recovers_truth_and_fixed_agree(zip_cmp, zip_data):
    fixed = zip_cmp.fixed.set_index("term")
    assert fixed.loc["Intercept", "agree"]
    assert abs(fixed.loc["Intercept", "std_diff"]) < 0.25
    var = zip_cmp.variance.set_index("group")
    assert var.loc["zip", "bayes_lower"] < zip_data.truth["sd_zip"] < var.loc["zip", "bayes_upper"]
    assert var.loc["Residual", "agree"] and var.loc["zip", "agree"]
    assert 0.05 < var.loc["zip", "reml_quantile"] < 0.95
    assert any("Fixed effects agree" in line for line in zip_cmp.verdict())


def test_tables_follow_the_contract(zip_cmp):
    assert {
        "term",
        "reml_estimate",
        "reml_std_error",
        "bayes_estimate",
        "bayes_std_error",
        "bayes_lower",
        "bayes_upper",
        "std_diff",
        "agree",
    } <= set(zip_cmp.fixed.columns)
    assert {
        "group",
        "term1",
        "term2",
        "reml_estimate",
        "bayes_estimate",
        "bayes_median",
        "bayes_lower",
        "bayes_upper",
        "reml_quantile",
        "singular",
        "agree",
    } <= set(zip_cmp.variance.columns)
    assert {
        "group",
        "level",
        "term",
        "n",
        "no_pool",
        "reml_estimate",
        "reml_std_error",
        "bayes_estimate",
        "bayes_std_error",
        "bayes_lower",
        "bayes_upper",
        "shrinkage_reml",
        "shrinkage_bayes",
        "std_diff",
        "agree",
    } <= set(zip_cmp.groups.columns)
    ds = zip_cmp.to_xarray()
    assert ds.sizes["groups_row"] == 300 and "fixed_std_diff" in ds


@pytest.fixture(scope="module")
def singular_data():
    # 8 groups of 4 with no group variation at all: REML puts the SD at exactly 0.
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {"g": np.repeat([f"g{i}" for i in range(8)], 4), "y": rng.normal(10, 2, size=32)}
    )


def test_singular_fit_is_reported_and_explained(singular_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)
        cmp = hb.compare_formula("y ~ 1 + (1 | g)", singular_data, **SAMPLING)
    row = cmp.variance.set_index("group").loc["g"]
    assert cmp.reml.singular and row["reml_estimate"] == 0 and row["singular"]
    assert row["bayes_median"] > 0 and row["reml_quantile"] == 0
    text = "\n".join(cmp.verdict())
    assert "singular" in text and "keep the posterior off zero" in text
    assert "few groups" in set(cmp.reasons["reason"])
    assert "boundary estimate" in set(cmp.reasons["reason"])
    assert np.allclose(cmp.groups["lambda_reml"], 0) and np.allclose(cmp.groups["reml_estimate"], 0)
    assert (cmp.groups["lambda_bayes"] > 0).all()


@pytest.fixture(scope="module")
def sleep_cmp():
    data, _ = load_reference("sleepstudy")
    return hb.compare_formula("Reaction ~ Days + (Days | Subject)", data, **SAMPLING)


def test_sleepstudy_correlated_block(sleep_cmp):
    _, ref = load_reference("sleepstudy")
    var = sleep_cmp.variance
    corr = var[var["term2"].notna()]
    assert len(corr) == 1 and corr.iloc[0]["term1"] == "Intercept"
    assert corr.iloc[0]["reml_estimate"] == pytest.approx(
        ref["variance_components"]["Subject"]["corr_matrix"][0][1], abs=1e-3
    )
    assert corr.iloc[0]["bayes_lower"] < corr.iloc[0]["reml_estimate"] < corr.iloc[0]["bayes_upper"]
    days = sleep_cmp.groups.query("term == 'Days'")
    assert (
        len(days) == 18 and np.corrcoef(days["reml_estimate"], days["bayes_estimate"])[0, 1] > 0.98
    )
    assert ((days["lambda_reml"] > 0) & (days["lambda_reml"] < 1)).all()
    assert sleep_cmp.fixed["agree"].all()


def test_plots_show_the_tables(sleep_cmp):
    import matplotlib.pyplot as plt

    fig = sleep_cmp.plot_shrinkage(term="Days")
    days = sleep_cmp.groups.query("term == 'Days'")
    population = days["population_bayes"].iloc[0]
    points = [c.get_offsets()[:, 1] for c in fig.axes[0].collections[1:]]  # after the vlines
    for plotted, column in zip(points, ["no_pool", "reml_estimate", "bayes_estimate"], strict=True):
        np.testing.assert_allclose(np.sort(plotted), np.sort(population + days[column]))
    plt.close(fig)
    fig = sleep_cmp.plot_forest()  # one panel per fixed effect and per SD or correlation
    assert len(fig.axes) == len(sleep_cmp.fixed) + len(sleep_cmp.variance) == 6
    plt.close(fig)
    fig = sleep_cmp.plot_variance()  # one panel per SD: Intercept, Days, Residual
    assert len(fig.axes) == int(sleep_cmp.variance["term2"].isna().sum()) == 3
    plt.close(fig)


def test_no_pooling_glm_matches_group_logit():
    data, _ = load_reference("cbpp")
    design = hb.make_design(
        "cbind(incidence, size - incidence) ~ 1 + (1 | herd)", data, family="binomial"
    )
    own = no_pooling(design, np.array([-2.0]), design.blocks[0])[:, 0]
    sums = data.groupby("herd")[["incidence", "size"]].sum().loc[list(design.blocks[0].levels)]
    p = sums["incidence"] / sums["size"]
    expected = np.log(p / (1 - p)) + 2.0
    finite = (sums["incidence"] > 0).to_numpy()
    assert np.allclose(own[finite], expected[finite], atol=1e-8)
    assert np.isnan(own[~finite]).all()  # all-zero herds have no finite own estimate


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ("Reaction ~ Days + (Days || Subject)", "covariance structure differs"),
        ("Reaction ~ 1 + (Days | Subject)", "fixed effects differ"),
        ("Days ~ Reaction + (1 | Subject)", "response differs"),
        ("Reaction ~ Days + (Days | Subject) + (1 | Days)", "grouping factors differ"),
    ],
)
def test_guard_rejects_mismatched_models(other, message):
    data, _ = load_reference("sleepstudy")
    base = hb.make_design("Reaction ~ Days + (Days | Subject)", data)
    with pytest.raises(hb.ModelMismatchError, match=message):
        check_same_model(base, hb.make_design(other, data))
    with pytest.raises(hb.ModelMismatchError, match="data rows differ"):
        check_same_model(
            base, hb.make_design("Reaction ~ Days + (Days | Subject)", data.iloc[:-10])
        )


def test_compare_checks_which_fit_is_which(sleep_cmp):
    with pytest.raises(hb.ModelMismatchError, match=r"takes a BayesFit .* got RemlFit and RemlFit"):
        hb.compare(sleep_cmp.reml, sleep_cmp.reml)
    with pytest.raises(hb.ModelMismatchError, match="got RemlFit and BayesFit"):
        hb.compare(sleep_cmp.reml, sleep_cmp.bayes)


def test_no_pooling_follows_the_link():
    data, _ = load_reference("cbpp")
    design = hb.make_design("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", data,
                            family="binomial")
    own = no_pooling(design, np.array([-1.0]), design.blocks[0], link="probit")[:, 0]
    sums = data.groupby("herd")[["incidence", "size"]].sum().loc[list(design.blocks[0].levels)]
    p = (sums["incidence"] / sums["size"]).to_numpy()
    finite = p > 0
    assert np.allclose(own[finite], stats.norm.ppf(p[finite]) + 1.0, atol=1e-8)
