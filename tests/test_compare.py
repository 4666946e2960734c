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
from hierbayes.compare.uncertainty import reml_total_sd
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
    found = set(cmp.reasons["reason"])
    assert {"boundary estimate", "SD poorly determined", "variance-parameter uncertainty",
            "pooling differs"} <= found
    assert "fixed-effect uncertainty" not in found  # the total coefficient's SD differs too
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
    points = {c.get_label(): c.get_offsets()[:, 1] for c in fig.axes[0].collections}
    for label, column in [("no pooling", "no_pool"), ("REML", "reml_estimate"),
                          ("posterior mean", "bayes_estimate")]:
        np.testing.assert_allclose(np.sort(points[label]), np.sort(population + days[column]))
    plt.close(fig)
    fig = sleep_cmp.plot_forest()  # one shared-axis panel per class: fixed, SDs, correlations
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "fixed effects", "standard deviations", "correlations"]
    crosses = np.concatenate([next(c.get_offsets()[:, 0] for c in ax.collections
                               if c.get_label() == "REML") for ax in fig.axes])
    expected = np.r_[sleep_cmp.fixed["reml_estimate"], sleep_cmp.variance["reml_estimate"]]
    np.testing.assert_allclose(np.sort(crosses), np.sort(expected))
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


# --- why they differ, measured on real fits ----------------------------------------------------


@pytest.fixture(scope="module")
def grunfeld_cmp():
    import statsmodels.api as sm

    data = sm.datasets.grunfeld.load_pandas().data.assign(firm=lambda d: d["firm"].astype(str))
    return hb.compare_formula("invest ~ value + capital + (1 | firm)", data, **SAMPLING)


def test_grunfeld_gap_is_the_intercepts_uncertainty(grunfeld_cmp):
    # 11 firms with a large between-firm SD: β0 is uncertain, and every b_j moves against it.
    groups = grunfeld_cmp.groups
    assert groups["se_ratio"].median() > 2.5  # b_j alone: the posterior SD is ~2.9× condSD
    assert groups["total_sd_ratio"].median() == pytest.approx(1.0, abs=0.08)  # β0 + b_j agree
    assert groups["beta_corr"].median() < -0.85
    found = dict(zip(grunfeld_cmp.reasons["reason"], grunfeld_cmp.reasons["detail"],
                     strict=True))
    assert "fixed-effect uncertainty" in found and "not a disagreement" in found[
        "fixed-effect uncertainty"]
    for absent in ("variance-parameter uncertainty", "boundary estimate", "pooling differs",
                   "SD poorly determined", "prior still informative"):
        assert absent not in found, absent


def test_many_groups_leave_nothing_to_explain(zip_cmp):
    groups = zip_cmp.groups
    assert groups["se_ratio"].median() < 1.1 and groups["total_sd_ratio"].median() < 1.1
    assert zip_cmp.reasons.empty, zip_cmp.reasons


def test_reml_total_sd_is_the_mixed_model_equations_inverse():
    """Against a dense inverse of Henderson's coefficient matrix, crossed factors included."""
    for name, formula in (("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
                          ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")):
        data, _ = load_reference(name)
        reml = hb.fit_reml(formula, data)
        design = reml.design
        sigma2 = reml.sigma**2
        Z = np.hstack([_dense_z(block) for block in design.blocks])
        G = np.zeros((Z.shape[1], Z.shape[1]))
        start = 0
        for block in design.blocks:
            size = block.n_levels * block.n_terms
            G[start:start + size, start:start + size] = np.kron(
                np.eye(block.n_levels), reml.covariance[block.name])
            start += size
        X = design.X
        C = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + sigma2 * np.linalg.inv(G)]])
        V = sigma2 * np.linalg.inv(C)  # error covariance of (β̂, b̂)
        assert np.allclose(V[:X.shape[1], :X.shape[1]], reml.vcov, rtol=1e-6)
        got = reml_total_sd(reml, design)
        start = X.shape[1]
        for block, sd in zip(design.blocks, got, strict=True):
            for j in range(block.n_levels):
                for t, term in enumerate(block.terms):
                    c = np.zeros(len(V))
                    c[start + j * block.n_terms + t] = 1
                    c[list(design.fixed_names).index(term)] = 1
                    assert sd[j, t] == pytest.approx(np.sqrt(c @ V @ c), rel=1e-6)
            start += block.n_levels * block.n_terms


def _dense_z(block) -> np.ndarray:
    Z = np.zeros((len(block.index), block.n_levels * block.n_terms))
    for t in range(block.n_terms):
        Z[np.arange(len(block.index)), block.index * block.n_terms + t] = block.Z[:, t]
    return Z


def test_posterior_total_sd_and_correlation_from_the_draws(zip_cmp):
    draws = zip_cmp.draws
    total = draws.beta[:, 0][:, None] + draws.effects[0][:, :, 0]
    assert np.allclose(zip_cmp.groups["bayes_total_sd"], total.std(axis=0, ddof=1))
    corr = [np.corrcoef(draws.beta[:, 0], draws.effects[0][:, j, 0])[0, 1] for j in range(3)]
    assert np.allclose(zip_cmp.groups["beta_corr"].iloc[:3], corr)


def test_contraction_is_one_minus_the_variance_ratio(sleep_cmp):
    var = sleep_cmp.variance
    expected = 1 - var["bayes_std_error"] ** 2 / var["prior_sd"] ** 2
    assert np.allclose(var["contraction"], expected)
    # The correlation is learnt from 18 subjects: well over half the prior's variance is gone,
    # so "the prior still matters" is not said of it (the old SD-ratio rule said it was).
    corr = var[var["term2"].notna()].iloc[0]
    assert corr["contraction"] > 0.5
    assert "prior still informative" not in set(sleep_cmp.reasons["reason"])


def test_plotted_density_of_a_narrow_posterior_holds_its_interval(sleep_cmp):
    import matplotlib.pyplot as plt

    fig = sleep_cmp.plot_variance()
    rows = sleep_cmp.variance[sleep_cmp.variance["term2"].isna()].to_dict("records")
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == "posterior"]
    for line, row in zip(lines, rows, strict=True):
        x, y = line.get_xdata(), line.get_ydata()
        fine = np.linspace(row["bayes_lower"], row["bayes_upper"], 2001)
        inside = np.trapezoid(np.interp(fine, x, y, left=0, right=0), fine)
        assert inside == pytest.approx(0.95, abs=0.02), row
    plt.close(fig)


def _glmm(family: str, groups: int, per_group: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    b = rng.normal(0, 1.0, groups)
    if family == "bernoulli":  # a survey: a handful of yes/no answers per area, yes rare
        # (intercept −1.5: median |skewness| 0.6-1.0 over seeds; at −1 seed 3 gave 0.27)
        y = rng.binomial(1, 1 / (1 + np.exp(-(-1.5 + 0.5 * x + b[g]))))
    else:  # large counts: each area's likelihood is close to normal
        y = rng.poisson(np.exp(3 + 0.2 * x + 0.3 * b[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"a{k:02d}" for k in g]})


@pytest.mark.slow
@pytest.mark.parametrize(("family", "groups", "per_group", "applies"),
                         [("bernoulli", 40, 4, True), ("poisson", 20, 15, False)])
def test_laplace_reason_follows_the_skewness_of_the_group_effects(family, groups, per_group,
                                                                  applies):
    data = _glmm(family, groups, per_group, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SamplingWarning)  # short chains; the skew is what counts
        cmp = hb.compare_formula("y ~ x + (1 | g)", data, family=family, **SAMPLING)
    skew = cmp.groups["bayes_skewness"].abs().median()
    assert (skew > 0.3) == applies, skew
    assert ("Laplace approximation" in set(cmp.reasons["reason"])) == applies


def test_posterior_tau2_is_not_the_biased_variance_of_the_zip_means(zip_cmp, zip_data):
    """The naive between-ZIP variance (of the ZIP means) is about twice the truth here; the
    posterior of τ² is centred near the truth, well below it."""
    data = zip_data.data
    naive = data.groupby("zip")["income"].mean().var()
    tau2 = zip_cmp.component_draws()[("zip", "Intercept", None)] ** 2
    truth = zip_data.truth["sd_zip"] ** 2
    assert np.median(tau2) == pytest.approx(truth, rel=0.2)
    assert np.quantile(tau2, 0.975) < naive
