"""Inference around a fit: `hb.anova` (likelihood-ratio tests, REML refitted by ML), Nakagawa's R²
and the ICC, and the parametric bootstrap.

References: lme4's ?anova.merMod example (sleepstudy fm1 vs fm2: Chisq 0.0639 on 1 df,
p 0.8004, AIC 1762.0 / 1763.9), reproduced by mixedlm's anova; mixedlm's r2_nakagawa and icc
(the R package performance's definitions) for LMMs and GLMMs; bootstrap SEs against the Wald SEs
of the same fit, and reproducibility by seed."""

import warnings

import mixedlm  # the test extra installs it: a missing one fails loudly
import numpy as np
import pytest
from conftest import SLEEP, load_reference
from mixedlm.families import Binomial, Poisson

import hierbayes as hb
from hierbayes.errors import HierbayesError

FM2 = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"
FITS: dict = {}


def sleep_fits():
    if "sleep" not in FITS:
        data, _ = load_reference("sleepstudy")
        FITS["sleep"] = (hb.fit_reml(SLEEP, data), hb.fit_reml(FM2, data), data)
    return FITS["sleep"]


# --- anova --------------------------------------------------------------------------------------


def test_anova_refits_reml_by_ml_and_matches_lme4():
    fm1, fm2, data = sleep_fits()
    table = hb.anova(fm1, fm2, names=["fm1", "fm2"])
    assert list(table.index) == ["fm2", "fm1"]  # ordered by npar, as lme4 orders them
    assert list(table.columns[:8]) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq",
                                       "Df", "Pr(>Chisq)"]
    assert table.attrs["refit"] and (table["method"] == "ML").all()
    assert list(table["npar"]) == [5, 6]
    assert table.loc["fm1", "Chisq"] == pytest.approx(0.0639, abs=5e-5)
    assert table.loc["fm1", "Pr(>Chisq)"] == pytest.approx(0.8004, abs=5e-5)
    assert table["AIC"].round(1).tolist() == [1762.0, 1763.9]
    assert table["BIC"].round(1).tolist() == [1778.0, 1783.1]
    assert np.isnan(table.loc["fm2", "Chisq"]) and table.loc["fm1", "Df"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.anova(mixedlm.lmer(FM2, data), mixedlm.lmer(SLEEP, data))
    assert table["deviance"].to_numpy() == pytest.approx(np.asarray(theirs.deviance), abs=1e-6)
    assert table.loc["fm1", "Chisq"] == pytest.approx(float(theirs.chi_sq[1]), abs=1e-6)


def test_anova_without_refit_needs_the_same_fixed_effects():
    fm1, fm2, data = sleep_fits()
    table = hb.anova(fm2, fm1, refit=False)  # same X: the REML criteria compare
    assert not table.attrs["refit"] and (table["method"] == "REML").all()
    assert table["deviance"].tolist() == [fm2.criterion, fm1.criterion]
    other = hb.fit_reml("Reaction ~ 1 + (Days | Subject)", data)
    with pytest.raises(HierbayesError, match="different fixed effects are not comparable"):
        hb.anova(other, fm1, refit=False)
    assert hb.anova(other, fm1).attrs["refit"]  # refitting by ML makes them comparable


def test_anova_refuses_different_data_and_single_fits():
    fm1, _, data = sleep_fits()
    fewer = hb.fit_reml(SLEEP, data.iloc[:-10])
    with pytest.raises(HierbayesError, match="same response on the same rows"):
        hb.anova(fm1, fewer)
    with pytest.raises(HierbayesError, match="two or more fit_reml fits"):
        hb.anova(fm1)
    with pytest.raises(HierbayesError, match="distinct labels"):
        hb.anova(fm1, fm1, names=["a", "a"])


def test_anova_of_glmms_matches_mixedlm():
    data, ref = load_reference("cbpp")
    big = hb.fit_reml(ref["formula"], data, family="binomial")
    small = hb.fit_reml("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", data,
                        family="binomial")
    table = hb.anova(big, small)
    assert not table.attrs["refit"] and list(table.index) == ["model2", "model1"]
    data = data.assign(p=data["incidence"] / data["size"])
    w = data["size"].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.anova(
            mixedlm.glmer("p ~ 1 + (1 | herd)", data, family=Binomial(), weights=w),
            mixedlm.glmer("p ~ period + (1 | herd)", data, family=Binomial(), weights=w))
    assert table["Chisq"].iloc[1] == pytest.approx(float(theirs.chi_sq[1]), abs=1e-5)
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(float(theirs.p_value[1]), rel=1e-4)
    assert table["Pr(>Chisq)"].iloc[1] < 1e-3  # period matters: the opposite verdict to fm1/fm2


# --- R² and ICC ---------------------------------------------------------------------------------


def _mixedlm_pair(name):
    data, ref = load_reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hb.fit_reml(ref["formula"], data), mixedlm.lmer(ref["formula"], data)


@pytest.mark.parametrize("name", ["sleepstudy", "Penicillin", "Pastes", "radon"])
def test_r2_and_icc_of_lmms_match_mixedlm(name):
    ours, theirs = _mixedlm_pair(name)
    r2, icc = mixedlm.r2_nakagawa(theirs), mixedlm.icc(theirs)
    assert ours.r2()["marginal"] == pytest.approx(r2.marginal, abs=1e-6)
    assert ours.r2()["conditional"] == pytest.approx(r2.conditional, abs=1e-6)
    assert ours.icc()["adjusted"] == pytest.approx(icc.adjusted, abs=1e-6)
    assert ours.icc()["unadjusted"] == pytest.approx(icc.unadjusted, abs=1e-6)
    for group, value in icc.by_group.items():
        assert ours.icc()["by_group"][group.replace("cask:batch", "batch:cask")] == (
            pytest.approx(value, abs=1e-6))


def test_r2_of_a_model_without_fixed_slopes_is_zero_marginal():
    ours, _ = _mixedlm_pair("Penicillin")
    ve = ours.variance_explained()
    assert ve.fixed == 0.0 and ours.r2()["marginal"] == 0.0
    assert ours.r2()["conditional"] == pytest.approx(ours.icc()["adjusted"])
    assert ve.approximation == "gaussian"


def test_r2_and_icc_of_glmms_match_mixedlm():
    data, ref = load_reference("cbpp")
    ours = hb.fit_reml(ref["formula"], data, family="binomial")
    data = data.assign(p=data["incidence"] / data["size"])
    ticks = mixedlm.load_grouseticks()
    formula = "TICKS ~ YEAR + cHEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.glmer("p ~ period + (1 | herd)", data, family=Binomial(),
                               weights=data["size"].to_numpy(float))
        ours_t = hb.fit_reml(formula, ticks, family="poisson")
        theirs_t = mixedlm.glmer(formula, ticks, family=Poisson())
    assert ours.variance_explained().approximation == "theoretical"  # π²/3 for the logit
    assert ours.variance_explained().residual == pytest.approx(np.pi ** 2 / 3)
    assert ours.r2()["conditional"] == pytest.approx(
        mixedlm.r2_nakagawa(theirs).conditional, abs=1e-5)
    assert ours.icc()["adjusted"] == pytest.approx(mixedlm.icc(theirs).adjusted, abs=1e-5)
    for approximation in ("lognormal", "delta"):
        r2 = mixedlm.r2_nakagawa(theirs_t, approximation)
        assert ours_t.r2(approximation)["marginal"] == pytest.approx(r2.marginal, abs=1e-5)
        assert ours_t.r2(approximation)["conditional"] == pytest.approx(r2.conditional, abs=1e-5)
    with pytest.raises(HierbayesError, match="binomial responses only"):
        ours_t.r2("theoretical")
    with pytest.raises(HierbayesError, match="approximation must be one of"):
        ours.icc("exact")


# --- parametric bootstrap -----------------------------------------------------------------------


def test_bootstrap_is_reproducible_by_seed_and_agrees_with_wald_ses():
    fm1, _, _ = sleep_fits()
    boot = fm1.bootstrap(n=100, seed=1)
    again = fm1.bootstrap(n=100, seed=1)
    other = fm1.bootstrap(n=100, seed=2)
    assert boot.replicates.equals(again.replicates)
    assert not boot.replicates.equals(other.replicates)
    assert boot.n_converged == 100 and boot.seed == 1
    fixef = boot.fixef()
    wald = fm1.fixef()["std_error"]
    # 100 replicates: an SD estimated to ~7 %; the Wald SEs are within 20 %.
    assert np.all(np.abs(fixef["std_error"] / wald - 1) < 0.2)
    vc = boot.varcorr(0.9)
    assert list(vc["group"]) == list(fm1.varcorr()["group"])
    assert np.allclose(vc["estimate"], fm1.varcorr()["estimate"])
    assert np.all(vc["lower"] < vc["upper"])
    sd_rows = vc["term2"].isna()
    assert np.all(vc.loc[sd_rows, "lower"] > 0)
    assert "90% parametric bootstrap percentile" in vc.attrs["interval"]


def test_bootstrap_of_a_glmm_and_bad_arguments():
    data, ref = load_reference("cbpp")
    fit = hb.fit_reml(ref["formula"], data, family="binomial")
    boot = fit.bootstrap(n=15, seed=3)
    assert boot.n_converged >= 12 and list(boot.varcorr()["group"]) == ["herd"]
    assert boot.replicates.shape == (15, 4 + 1 + 1)
    with pytest.raises(HierbayesError, match="positive integer"):
        fit.bootstrap(n=0)
    short = fit.bootstrap(n=1, seed=3)
    with pytest.raises(HierbayesError, match="too few"):
        short.fixef()
