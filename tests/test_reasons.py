"""Each reason the fits may differ, and each verdict clause, on small hand-made tables: it is
listed where its measured quantity passes its threshold and absent where it does not. The
real-data cases (Grunfeld, ZIP codes, a singular fit, bernoulli and Poisson GLMMs) are in
test_compare.py."""

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.compare.reasons import reasons
from hierbayes.compare.tables import near_zero_thresholds
from hierbayes.compare.verdict import verdicts


def sd_row(**changes) -> dict:
    row = {"group": "g", "term1": "Intercept", "term2": None, "reml_estimate": 1.0,
           "bayes_estimate": 1.05, "bayes_std_error": 0.1, "bayes_median": 1.0,
           "bayes_lower": 0.8, "bayes_upper": 1.25, "reml_quantile": 0.5, "singular": False,
           "near_zero": 0.05, "posterior_near_zero": 0.0, "prior_sd": 1.0, "contraction": 0.99,
           "agree": True}
    return {**row, **changes}


def group_rows(count=20, **columns) -> pd.DataFrame:
    base = {"group": "g", "level": [f"l{i}" for i in range(count)], "term": "Intercept",
            "n": 10, "se_ratio": 1.0, "total_sd_ratio": 1.0, "beta_corr": -0.1,
            "lambda_reml": 0.8, "lambda_bayes": 0.8, "bayes_skewness": 0.05,
            "reml_estimate": np.linspace(-1, 1, count),
            "bayes_estimate": np.linspace(-1, 1, count),
            "std_diff": 0.0, "agree": True}
    return pd.DataFrame({**base, **columns})


def found(variance_rows=(), groups=None, method="REML") -> dict:
    frame = pd.DataFrame(list(variance_rows) or [sd_row()])
    table = reasons(frame, group_rows() if groups is None else groups, method)
    return dict(zip(table["reason"], table["detail"], strict=True))


def test_nothing_to_explain_when_nothing_differs():
    assert found() == {}


@pytest.mark.parametrize(("reason", "applies", "absent"), [
    ("boundary estimate", sd_row(singular=True, reml_estimate=0.0), sd_row()),
    ("SD poorly determined", sd_row(bayes_lower=0.2, bayes_upper=1.6),
     sd_row(bayes_lower=0.5, bayes_upper=1.9)),
    ("prior still informative", sd_row(contraction=0.3), sd_row(contraction=0.61)),
])
def test_variance_reasons(reason, applies, absent):
    assert reason in found([applies])
    assert reason not in found([absent])


def test_poorly_determined_from_zero():
    assert "spans from 0" in found([sd_row(bayes_lower=0.0, bayes_upper=0.5)])[
        "SD poorly determined"]


def test_contraction_is_said_with_its_numbers():
    detail = found([sd_row(contraction=0.3, bayes_std_error=0.4, prior_sd=0.48)])[
        "prior still informative"]
    assert "removed 30% of the prior's variance" in detail and "prior SD 0.48" in detail


def test_fixed_effect_uncertainty_needs_the_total_coefficient_to_agree():
    # Grunfeld: b_j's SDs 2.9× REML's conditional SDs, but β0 + b_j agrees (1.01×).
    grunfeld = group_rows(se_ratio=2.9, total_sd_ratio=1.01, beta_corr=-0.94)
    detail = found(groups=grunfeld)["fixed-effect uncertainty"]
    assert "2.90×" in detail and "1.01×" in detail and "-0.94" in detail
    assert "variance-parameter uncertainty" not in found(groups=grunfeld)
    # Many groups: β is pinned down and the SDs agree either way.
    assert found(groups=group_rows(se_ratio=1.02, total_sd_ratio=1.0)) == {}
    # The gap is all on the total coefficient: it is θ's uncertainty, not β's.
    theta = found(groups=group_rows(se_ratio=1.6, total_sd_ratio=1.57))
    assert "fixed-effect uncertainty" not in theta
    assert "1.57×" in theta["variance-parameter uncertainty"]


def test_ratios_ignore_groups_with_a_zero_frequentist_sd():
    singular = group_rows(se_ratio=np.inf, total_sd_ratio=1.5)
    assert set(found(groups=singular)) == {"variance-parameter uncertainty"}


def test_pooling_differs():
    lam = np.r_[np.full(5, 0.2), np.full(15, 0.9)]
    groups = group_rows(lambda_reml=lam, lambda_bayes=lam + np.r_[np.full(5, 0.15),
                                                                  np.zeros(15)],
                        n=np.r_[np.full(5, 2), np.full(15, 50)])
    detail = found(groups=groups)["pooling differs"]
    assert "up to 0.15 (level l0, n = 2" in detail and "in 5 of 20 groups (n ≤ 2)" in detail
    groups["lambda_bayes"] = lam + 0.05
    assert "pooling differs" not in found(groups=groups)


def test_laplace_reason_only_for_laplace_fits_with_skewed_posteriors():
    skewed = group_rows(bayes_skewness=np.r_[np.full(12, 0.6), np.full(8, -0.1)])
    assert "0.60" in found(groups=skewed, method="Laplace")["Laplace approximation"]
    assert "Laplace approximation" not in found(groups=group_rows(), method="Laplace")
    assert "Laplace approximation" not in found(groups=skewed, method="REML")


# --- near zero, on each term's own scale ----------------------------------------------------------


def dietox_like(seed=1) -> pd.DataFrame:
    """Pig weights over 12 weeks: slope SD 0.68 kg/week, response SD ~ 20 kg."""
    rng = np.random.default_rng(seed)
    pig = np.repeat(np.arange(40), 12)
    time = np.tile(np.arange(1, 13), 40).astype(float)
    weight = (15 + rng.normal(0, 3, 40)[pig] + (6.9 + rng.normal(0, 0.68, 40)[pig]) * time
              + rng.normal(0, 2, pig.size))
    return pd.DataFrame({"Weight": weight, "Time": time, "Pig": [f"p{i}" for i in pig]})


def test_near_zero_is_measured_on_each_terms_scale():
    data = dietox_like()
    design = hb.make_design("Weight ~ Time + (Time | Pig)", data)
    near = near_zero_thresholds(design)
    y_sd = data["Weight"].std(ddof=0)
    rms_time = np.sqrt(np.mean(data["Time"] ** 2))
    assert near[("Pig", "Intercept", None)] == pytest.approx(0.05 * y_sd)
    assert near[("Pig", "Time", None)] == pytest.approx(0.05 * y_sd / rms_time)
    assert near[("Residual", None, None)] == pytest.approx(0.05 * y_sd)
    # The slope SD with interval [0.56, 0.80] is clearly above its own threshold (~0.15), though
    # below 5% of the response's SD (~1.0), which the old rule called "near zero".
    assert near[("Pig", "Time", None)] < 0.2 < 0.56 < 0.05 * y_sd


def test_near_zero_on_the_link_scale():
    data = dietox_like()
    data["y"] = (data["Weight"] > data["Weight"].median()).astype(int)
    design = hb.make_design("y ~ Time + (Time | Pig)", data, family="bernoulli")
    near = near_zero_thresholds(design)
    assert near[("Pig", "Intercept", None)] == pytest.approx(0.05)
    assert ("Residual", None, None) not in near


def variance_line(**row) -> str:
    fixed = pd.DataFrame({"term": ["Intercept"], "std_diff": [0.1], "agree": [True]})
    lines = verdicts(fixed, pd.DataFrame([sd_row(**row)]), group_rows(), "REML")
    return lines[1]


def test_the_verdict_says_near_zero_only_of_a_tiny_sd():
    slope = variance_line(term1="Time", reml_estimate=0.67, bayes_median=0.67,
                          bayes_lower=0.56, bayes_upper=0.80, near_zero=0.15,
                          posterior_near_zero=0.0)
    assert "near zero" not in slope and slope.endswith("agree (REML at posterior quantile 0.50).")
    tiny = variance_line(reml_estimate=0.01, bayes_median=0.02, bayes_lower=0.001,
                         bayes_upper=0.09, near_zero=0.05, posterior_near_zero=0.8)
    assert "near zero: 80% of the posterior lies below 0.05" in tiny


def test_a_singular_sd_is_kept_off_zero_unless_the_posterior_agrees():
    off = variance_line(singular=True, reml_estimate=0.0, bayes_median=0.35, bayes_lower=0.02,
                        bayes_upper=1.1, near_zero=0.09, posterior_near_zero=0.14)
    assert "keep the posterior off zero" in off and "agrees" not in off
    agrees = variance_line(singular=True, reml_estimate=0.0, bayes_median=0.01,
                           bayes_lower=0.0005, bayes_upper=0.06, near_zero=0.05,
                           posterior_near_zero=0.9)
    assert "the posterior agrees; near zero: 90%" in agrees and "off zero" not in agrees


def test_small_groups_differ_most_only_when_they_stand_out():
    n = np.r_[np.full(10, 2), np.full(10, 40)]
    fixed = pd.DataFrame({"term": ["Intercept"], "std_diff": [0.1], "agree": [True]})
    variance = pd.DataFrame([sd_row()])
    apart = group_rows(n=n, std_diff=np.r_[np.full(10, 0.6), np.full(10, 0.1)])
    close = group_rows(n=n, std_diff=np.r_[np.full(10, 0.03), np.full(10, 0.03)])
    assert "groups with n < 5 differ most" in verdicts(fixed, variance, apart, "REML")[-1]
    assert "differ most" not in verdicts(fixed, variance, close, "REML")[-1]


def within_rows(**changes) -> pd.DataFrame:
    row = {"term": "x", "group": "g", "within": 1.0, "between": 1.7, "difference": 0.7,
           "std_error": 0.1, "statistic": 7.0, "p_value": 2e-12, "flagged": True,
           "estimate": 1.1, "within_std_error": 0.04}
    return pd.DataFrame([{**row, **changes}])


def test_within_between_reason_follows_the_flag():
    frame = pd.DataFrame([sd_row()])
    table = reasons(frame, group_rows(), "REML", within_rows())
    (detail,) = table.loc[table["reason"] == "within/between slopes differ", "detail"]
    assert table.loc[0, "where"] == "x over g"
    assert "within the levels of g is 1, between them 1.7" in detail
    assert "p = 2e-12" in detail and "REML: 1.1" in detail
    assert "within(x, g) + between(x, g)" in detail
    quiet = reasons(frame, group_rows(), "REML", within_rows(p_value=0.3, flagged=False))
    assert quiet.empty
    assert reasons(frame, group_rows(), "REML", within_rows().iloc[:0]).empty
