"""`RemlFit.ridge_equivalent`: the conditional modes as an explicit ridge solution."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

import hierbayes as hb
from hierbayes.reml.ridge import ridge_path

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)", "gaussian"),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "gaussian"),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", "gaussian"),
    ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
]


@pytest.mark.parametrize(("name", "formula", "family"), CASES, ids=[c[1] for c in CASES])
def test_ridge_solution_equals_the_conditional_modes(name, formula, family):
    data, _ = load_reference(name)
    fit = hb.fit_reml(formula, data, family=family)
    ridge = fit.ridge_equivalent()
    modes = fit.ranef()
    assert list(ridge.columns[:4]) == ["group", "level", "term", "estimate"]
    pd.testing.assert_frame_equal(ridge[["group", "level", "term"]],
                                  modes[["group", "level", "term"]])
    scale = np.abs(modes["estimate"]).max()
    np.testing.assert_allclose(ridge["estimate"], modes["estimate"], rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(ridge.attrs["beta"], fit.beta, rtol=1e-8)


def test_penalty_is_sigma2_over_tau2_for_an_intercept():
    data, _ = load_reference("Penicillin")
    fit = hb.fit_reml("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    ridge = fit.ridge_equivalent()
    vc = fit.varcorr().set_index("group")["estimate"]
    for group in ("plate", "sample"):
        expected = vc["Residual"] ** 2 / vc[group] ** 2
        assert ridge.attrs["lambda"][group] == pytest.approx(expected, rel=1e-10)
        np.testing.assert_allclose(ridge.attrs["penalty"][group], [[expected]], rtol=1e-10)


def test_penalty_of_a_correlated_block_is_sigma2_times_the_inverse_covariance():
    data, _ = load_reference("sleepstudy")
    fit = hb.fit_reml("Reaction ~ Days + (Days | Subject)", data)
    penalty = fit.ridge_equivalent().attrs["penalty"]["Subject"]
    expected = fit.sigma**2 * np.linalg.inv(fit.covariance["Subject"])
    np.testing.assert_allclose(penalty, expected, rtol=1e-10)


def test_one_intercept_mode_is_the_textbook_shrunken_mean():
    """Balanced one-way layout: b_j = n/(n + λ)·(ȳ_j − β̂) with λ = σ²/τ²."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 6)
    y = 5 + rng.normal(0, 1.5, 12)[g] + rng.normal(0, 2, g.size)
    data = pd.DataFrame({"y": y, "g": [f"g{k:02d}" for k in g]})
    fit = hb.fit_reml("y ~ 1 + (1 | g)", data)
    ridge = fit.ridge_equivalent()
    lam = ridge.attrs["lambda"]["g"]
    means = data.groupby("g")["y"].mean().to_numpy()
    expected = 6 / (6 + lam) * (means - fit.beta[0])
    np.testing.assert_allclose(ridge["estimate"], expected, atol=1e-10)


def test_ridge_path_runs_from_no_pooling_to_complete_pooling():
    data, _ = load_reference("Penicillin")
    fit = hb.fit_reml("diameter ~ 1 + (1 | plate)", data)
    path = ridge_path(fit, [1e-6, 1.0, 1e6])
    spread = path.groupby("scale")["estimate"].std()
    assert spread.is_monotonic_decreasing
    assert spread[1e6] < 1e-4 * spread[1.0]
    # Little penalty: each plate's own mean deviation (no pooling).
    small = path[path["scale"] == 1e-6].set_index("level")["estimate"]
    own = data.groupby("plate")["diameter"].mean() - data["diameter"].mean()
    np.testing.assert_allclose(small.loc[own.index], own, atol=1e-4)
    one = path[path["scale"] == 1.0]["estimate"].to_numpy()
    np.testing.assert_allclose(one, fit.ranef()["estimate"], atol=1e-9)


def test_singular_block_is_held_at_zero_with_an_infinite_penalty():
    rng = np.random.default_rng(5)
    flat = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(8)], 4),
                         "y": rng.normal(10, 2, size=32)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)
        fit = hb.fit_reml("y ~ 1 + (1 | g)", flat)
    ridge = fit.ridge_equivalent()
    assert fit.singular and ridge.attrs["restricted"] == ["g"]
    assert ridge.attrs["lambda"]["g"] == np.inf
    assert (ridge["estimate"] == 0).all()
    assert ridge.attrs["beta"]["Intercept"] == pytest.approx(flat["y"].mean())


def test_known_sigma_and_weights_enter_the_ridge_problem():
    data = hb.simulate.eight_schools()
    data["effect"] = data["effect"] * np.array([1, 2, 1, 3, 1, 2, 4, 1])  # τ̂ > 0
    fit = hb.fit_reml("effect ~ 1 + (1 | school)", data, known_sigma="se")
    assert not fit.singular
    np.testing.assert_allclose(fit.ridge_equivalent()["estimate"], fit.ranef()["estimate"],
                               atol=1e-8 * fit.ranef()["estimate"].abs().max())
    sleep, _ = load_reference("sleepstudy")
    weighted = hb.fit_reml("Reaction ~ Days + (Days | Subject)", sleep,
                           weights=np.linspace(0.5, 2, len(sleep)))
    np.testing.assert_allclose(weighted.ridge_equivalent()["estimate"],
                               weighted.ranef()["estimate"], atol=1e-8)


def test_bad_scale_is_refused():
    data, _ = load_reference("Penicillin")
    fit = hb.fit_reml("diameter ~ 1 + (1 | plate)", data)
    with pytest.raises(hb.HierbayesError, match="penalty scale must be a positive number"):
        fit.ridge_equivalent(scale=0)
