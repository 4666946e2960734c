"""REML fits against lme4's reference fits (tests/reference/*.json), with the issue's tolerances.

Names differ between lme4 and hierbayes only in spelling: lme4 writes "(Intercept)" and names the
nested factor of (1 | batch/cask) "cask:batch" with levels "a:A"; hierbayes writes "Intercept",
"batch:cask" and "A:a".
"""

import warnings

import numpy as np
import pytest
from conftest import GAUSSIAN_REFERENCES, lme4_name, load_reference

import hierbayes as hb
from hierbayes.reml import make_deviance

FITS: dict = {}


def fitted(name):
    """One fit per reference for the whole module (fits are cheap, but tests are many)."""
    if name not in FITS:
        data, ref = load_reference(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # none of the references is singular or unconverged
            FITS[name] = (hb.fit_reml(ref["formula"], data), ref)
    return FITS[name]


def lme4_group(group: str) -> str:
    return "cask:batch" if group == "batch:cask" else group


def lme4_level(group: str, level: str) -> str:
    return ":".join(reversed(level.split(":"))) if group == "batch:cask" else level


def reference_theta(fit, ref) -> np.ndarray:
    """lme4's θ in hierbayes' order (design blocks; lme4 sorts its terms by number of levels)."""
    out = []
    for name in fit.theta_names:
        block = next(b for b in fit.design.blocks if name.startswith(b.name + "."))
        terms = name[len(block.name) + 1:].split(".")
        out.append(ref["theta"][".".join([lme4_group(block.group), *map(lme4_name, terms)])])
    return np.array(out)


@pytest.fixture(params=GAUSSIAN_REFERENCES)
def case(request):
    return fitted(request.param)


def test_criterion_at_or_below_lme4(case):
    fit, ref = case
    assert fit.method == "REML" and fit.converged
    assert fit.criterion <= ref["fit_criteria"]["REML_criterion"] + 1e-6
    assert fit.criterion == pytest.approx(ref["fit_criteria"]["REML_criterion"], abs=1e-4)


def test_deviance_at_lme4_theta(case):
    fit, ref = case
    dev = make_deviance(fit.design, "REML")
    assert dev(reference_theta(fit, ref)) == pytest.approx(
        ref["fit_criteria"]["REML_criterion"], abs=1e-6)


def test_ml_deviance_at_reml_theta(case):
    """lme4's `ML_deviance` (deviance(fit, REML = FALSE) of a REML fit) is, despite the JSON's note,
    the ML deviance *profiled* at the REML θ: β and σ (σ² = r²/n) re-optimised. So it equals our
    ML deviance function at the reference θ; plugging in the REML σ² = r²/(n−p) instead gives more.
    """
    fit, ref = case
    ml = make_deviance(fit.design, "ML")
    theta = reference_theta(fit, ref)
    assert ml(theta) == pytest.approx(ref["fit_criteria"]["ML_deviance"], abs=1e-6)
    state = ml.state(theta)
    n, p = fit.design.X.shape
    s2 = state.r2 / (n - p)
    assert state.logdet_M + n * np.log(2 * np.pi * s2) + state.r2 / s2 > ml(theta)


def test_fixed_effects(case):
    fit, ref = case
    table = fit.fixef()
    fe = ref["fixed_effects"]
    names = [lme4_name(t) for t in table.index]
    assert names == fe["terms"]
    se_ref = np.array([fe["std_error"][t] for t in names])
    est_ref = np.array([fe["estimate"][t] for t in names])
    assert np.all(np.abs(table["estimate"].to_numpy() - est_ref) <= 1e-4 * se_ref)
    np.testing.assert_allclose(table["std_error"], se_ref, rtol=1e-4)
    np.testing.assert_allclose(fit.vcov, np.array(fe["vcov"]), rtol=2e-4,
                               atol=1e-4 * se_ref.min() ** 2)
    z = 1.959963984540054
    np.testing.assert_allclose(table["upper"] - table["estimate"], z * table["std_error"])
    assert "Wald" in table.attrs["interval"] and "1.959964" in table.attrs["interval"]


def test_variance_components(case):
    fit, ref = case
    vc = fit.varcorr()
    for block in fit.design.blocks:
        comp = ref["variance_components"][lme4_group(block.group)]
        rows = vc[vc["block"] == block.name]
        sds = rows[rows["term2"].isna()]
        for term, sd in zip(sds["term1"], sds["estimate"], strict=True):
            assert sd == pytest.approx(comp["sd"][lme4_name(term)], rel=1e-4)
        corrs = rows[rows["term2"].notna()]
        for _, row in corrs.iterrows():
            i = comp["terms"].index(lme4_name(row["term1"]))
            j = comp["terms"].index(lme4_name(row["term2"]))
            assert row["estimate"] == pytest.approx(comp["corr_matrix"][i][j], abs=1e-4)
    resid = vc[vc["group"] == "Residual"]
    assert resid["estimate"].item() == pytest.approx(ref["residual_sd"], rel=1e-4)
    assert fit.sigma == pytest.approx(ref["residual_sd"], rel=1e-4)
    assert list(vc.columns[:7]) == ["group", "term1", "term2", "estimate", "std_error", "lower",
                                    "upper"]


def test_variances_and_covariances_as_lme4_lists_them(case):
    """as.data.frame(VarCorr(fit)): `vcov` is a variance on SD rows and a covariance on
    correlation rows; hierbayes keeps the two in their own columns, NaN on the other rows."""
    fit, ref = case
    vc, table = fit.varcorr(), ref["varcorr_table"]

    def lme4_key(row):
        terms = [None if t != t else lme4_name(t) for t in (row["term1"], row["term2"])]
        return (lme4_group(row["group"]), *terms)

    ours = {lme4_key(row): row for row in vc.to_dict("records")}
    assert len(ours) == len(vc) == len(table["grp"])
    for grp, var1, var2, vcov in zip(table["grp"], table["var1"], table["var2"], table["vcov"],
                                     strict=True):
        row = ours[(grp, var1, var2)]
        value, empty = ("variance", "covariance") if var2 is None else ("covariance", "variance")
        assert row[value] == pytest.approx(vcov, rel=2e-4, abs=1e-6)
        assert np.isnan(row[empty])


def test_conditional_modes_and_sds(case):
    fit, ref = case
    rf = ref["ranef"]
    table = fit.ranef()
    key = {(lme4_group(g), lme4_level(g, lv), lme4_name(t)): (e, s) for g, lv, t, e, s in zip(
        table["group"], table["level"], table["term"], table["estimate"], table["std_error"],
        strict=True)}
    assert len(key) == len(rf["condval"])
    for g, t, lv, mode, sd in zip(rf["grpvar"], rf["term"], rf["grp"], rf["condval"],
                                  rf["condsd"], strict=True):
        est, se = key[(g, lv, t)]
        assert abs(est - mode) <= 1e-3 * sd
        assert se == pytest.approx(sd, rel=1e-3)


def test_conditional_covariance_per_level(case):
    fit, ref = case
    for group, cc in (ref.get("ranef_condcov") or {}).items():
        block = next(b for b in fit.design.blocks if lme4_group(b.group) == group)
        assert [lme4_name(t) for t in block.terms] == cc["terms"]
        assert list(block.levels) == cc["levels"]
        np.testing.assert_allclose(fit.condcov[block.name], np.array(cc["cov"]), rtol=2e-3,
                                   atol=1e-3 * np.abs(cc["cov"]).max())


def test_singular_and_theta(case):
    fit, ref = case
    assert fit.singular is ref["isSingular"]
    np.testing.assert_allclose(fit.theta, reference_theta(fit, ref), rtol=2e-4, atol=2e-4)


def test_close_to_tight_lme4_refit(case):
    """lme4's tight-tolerance refit is nearer the true optimum than its default fit."""
    fit, ref = case
    tight = ref["crosschecks"]["tight_tolerance_refit"]
    assert fit.criterion <= tight["REML_criterion"] + 1e-8
    assert fit.sigma == pytest.approx(tight["residual_sd"], rel=2e-5)


def test_summary_reads_like_lme4(case):
    fit, _ = case
    text = repr(fit)
    assert "REML criterion at convergence" in text
    assert "Random effects:" in text and "Fixed effects:" in text and "Residual" in text
    assert text == fit.summary()
