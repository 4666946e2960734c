"""`RemlFit.predict` against lme4-equivalent hand computations from the lme4 reference fits
(`tests/reference`): lme4's ``predict(fit, newdata, allow.new.levels = TRUE)`` is the fixed part
plus the level's conditional mode (``fixef + ranef``), 0 for a new level, and with
``re.form = NA`` the fixed part alone; ``type = "response"`` is the inverse link of that.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import lme4_name, load_reference
from scipy.special import expit

import hierbayes as hb
from hierbayes.errors import DataWarning


def lme4_effects(ref: dict) -> tuple[dict, dict]:
    """(fixed effect by lme4 term name, (level, term) -> conditional mode) of a reference fit."""
    fixed = ref["fixed_effects"]["estimate"]
    r = ref["ranef"]
    modes = {(level, term): value for level, term, value in
             zip(r["grp"], r["term"], r["condval"], strict=True)}
    return fixed, modes


@pytest.fixture(scope="module")
def sleep():
    data, ref = load_reference("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return data, ref, hb.fit_reml(ref["formula"], data)


def test_seen_levels_are_fixed_plus_modes_and_new_ones_the_fixed_part(sleep):
    _, ref, fit = sleep
    fixed, modes = lme4_effects(ref)
    new = pd.DataFrame({"Days": [0, 3, 9, 4], "Subject": ["308", "331", "372", "new"]},
                       index=["a", "b", "c", "d"])
    expected = []
    for days, subject in zip(new["Days"], new["Subject"], strict=True):
        intercept = fixed["(Intercept)"] + modes.get((subject, "(Intercept)"), 0.0)
        slope = fixed["Days"] + modes.get((subject, "Days"), 0.0)
        expected.append(intercept + slope * days)
    got = fit.predict(new)
    assert list(got.index) == ["a", "b", "c", "d"] and got.name == "prediction_link"
    # lme4 and hierbayes agree to ~1e-6 relative on this fit (test_reml.py).
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=2e-6)
    assert got.attrs["unseen_levels"] == {"Subject": ["new"]}
    # The new subject is exactly the population line; the seen ones are not.
    population = fit.predict(new, group_effects="population")
    assert got["d"] == population["d"]
    assert np.all(np.abs(got[["a", "b", "c"]] - population[["a", "b", "c"]]) > 1.0)
    np.testing.assert_allclose(population.to_numpy(),
                               fixed["(Intercept)"] + fixed["Days"] * new["Days"], rtol=2e-6)


def test_gaussian_mean_is_the_link_and_fitted_values_rebuild_from_the_tables(sleep):
    data, _, fit = sleep
    fitted = fit.predict()
    assert fitted.index.equals(data.index)
    pd.testing.assert_series_equal(fit.predict(kind="mean"), fitted.rename("prediction_mean"))
    beta = fit.fixef()["estimate"]
    ranef = fit.ranef().pivot(index="level", columns="term", values="estimate")
    by_hand = (beta["Intercept"] + ranef.loc[data["Subject"], "Intercept"].to_numpy()
               + (beta["Days"] + ranef.loc[data["Subject"], "Days"].to_numpy()) * data["Days"])
    np.testing.assert_allclose(fitted.to_numpy(), by_hand.to_numpy(), rtol=1e-12)
    # β is unpenalized in the PLS problem, so the residuals are orthogonal to X's columns.
    resid = (data["Reaction"] - fitted).to_numpy()
    assert abs(resid.sum()) < 1e-7 and abs(resid @ data["Days"].to_numpy()) < 1e-6


def test_glmm_mean_is_the_inverse_link_of_lme4s_linear_predictor():
    data, ref = load_reference("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hb.fit_reml(ref["formula"], data, family="binomial", laplace="lme4")
    fixed, modes = lme4_effects(ref)
    new = pd.DataFrame({"herd": ["1", "7", "99"], "period": ["1", "3", "4"],
                        "incidence": [0, 0, 0], "size": [1, 1, 1]})
    eta = []
    for herd, period in zip(new["herd"], new["period"], strict=True):
        value = fixed["(Intercept)"] + modes.get((herd, "(Intercept)"), 0.0)
        if period != "1":
            value += fixed[lme4_name(f"period[T.{period}]")]
        eta.append(value)
    link = fit.predict(new)
    mean = fit.predict(new, kind="mean")
    # laplace="lme4" reproduces lme4's estimates to ~5e-5 of an SE (test_glmm.py).
    np.testing.assert_allclose(link.to_numpy(), eta, atol=2e-4)
    np.testing.assert_allclose(mean.to_numpy(), expit(link.to_numpy()), rtol=1e-12)
    assert np.all((mean > 0) & (mean < 1))
    assert not np.allclose(mean.to_numpy(), link.to_numpy())
    assert link.attrs["unseen_levels"] == {"herd": ["99"]}
    population = fit.predict(new, group_effects="population", kind="mean")
    assert population.iloc[2] == mean.iloc[2]  # the new herd
    assert population.iloc[0] != mean.iloc[0]  # herd 1 has its own effect


def test_near_miss_warning_names_the_fitted_level_and_a_true_new_level_stays_silent(sleep):
    fit = sleep[2]
    near = pd.DataFrame({"Days": [1, 1], "Subject": ["0308", "308"]})
    with pytest.warns(DataWarning, match=r"level '0308' of 'Subject' .* fitted level\(s\) '308'"
                      ) as record:
        got = fit.predict(near)
    assert record[0].filename == __file__  # the caller's line, not one inside hierbayes
    # Predicted as asked: a new level (the population value), not silently as 308.
    population = fit.predict(near.iloc[1:], group_effects="population").iloc[0]
    assert got.iloc[0] == population
    assert got.iloc[0] != got.iloc[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        fit.predict(pd.DataFrame({"Days": [1], "Subject": ["3080"]}))  # no near miss
