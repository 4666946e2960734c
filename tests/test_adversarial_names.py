"""Grouping factors named like the model's own variables and dimensions (``sigma``, ``y``,
``beta``, ``alpha``, ``nu``, ``obs``, ``draw``): `hierbayes.naming.RESERVED_DIMS` gives their
levels the dimension ``<g>_level``. Verified end to end — fit (the real `sample` path with the
sampler mocked by prior draws: `conftest.mocked_sample`), tables, compare, save/load, predict —
including the clash with the family's own parameter (``nu`` of student_t, ``alpha`` of the
negative binomial, ``sigma`` of both).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes import naming

SLEEP = hb.datasets.load("sleepstudy")
NAMES = ("sigma", "y", "beta", "alpha", "nu", "obs", "draw")


def crossed() -> pd.DataFrame:
    """sleepstudy with seven crossed grouping factors named after reserved names."""
    row = np.arange(len(SLEEP))
    extra = {name: (row % (k + 2)).astype(str) for k, name in enumerate(NAMES[1:])}
    return SLEEP.assign(sigma=SLEEP["Subject"], **extra)


def quietly(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def check_tables(fit, names, data):
    ranef = fit.ranef()
    assert set(ranef["group"]) == set(names)
    blocks = {block.group: block for block in fit.design.blocks}
    for name in names:
        levels = ranef.loc[ranef["group"] == name, "level"].unique()
        assert sorted(levels) == sorted(data[name].astype(str).unique()), name
        assert naming.level_dim(name) == f"{name}_level"
        if hasattr(fit, "posterior"):  # (chain, draw, level, term)
            assert fit.posterior[naming.r(blocks[name])].dims[2] == f"{name}_level"
    varcorr = fit.varcorr()
    assert {g for g in varcorr["group"] if g != "Residual"} == set(names)


def check_prediction(fit, data, name):
    new = data.head(3).copy()
    new[name] = [new[name].iloc[0], "never seen", new[name].iloc[2]]
    got = fit.predict(new)
    values = np.asarray(got)
    assert np.all(np.isfinite(values))
    return got


@pytest.fixture(scope="module")
def gaussian_fits(tmp_path_factory):
    data = crossed()
    formula = "Reaction ~ Days + " + " + ".join(f"(1 | {n})" for n in NAMES)
    return data, formula, quietly(hb.fit_reml, formula, data)


def test_gaussian_model_with_every_reserved_name(gaussian_fits, mocked_sample, tmp_path):
    data, formula, reml = gaussian_fits
    before = data.copy(deep=True)
    bayes = quietly(hb.fit_bayes, formula, data, draws=20, tune=5, chains=2, random_seed=3)
    assert bayes.settings["marginalize"]  # the marginal path, then exact draws of the effects
    check_tables(bayes, NAMES, data)
    check_tables(reml, NAMES, data)
    cmp = quietly(hb.compare, bayes, reml, max_draws=40)
    counts = cmp.groups.groupby("group")["n"].sum()
    assert all(counts[name] == len(data) for name in NAMES)
    path = tmp_path / "fit.nc"
    bayes.save(path)
    loaded = quietly(hb.load, path)
    pd.testing.assert_frame_equal(loaded.ranef(), bayes.ranef())
    for name in NAMES:
        draws = check_prediction(loaded, data, name)
        assert draws.dims == ("chain", "draw", "obs")
        reml_pred = check_prediction(reml, data, name)
        assert reml_pred.attrs["unseen_levels"] == {name: ["never seen"]}
    pd.testing.assert_frame_equal(data, before)


def test_student_t_with_groups_named_nu_and_sigma(mocked_sample, tmp_path):
    """The family's own nu and sigma beside groups of those names."""
    data = SLEEP.assign(nu=SLEEP["Subject"], sigma=(np.arange(180) % 3).astype(str))
    fit = quietly(hb.fit_bayes, "Reaction ~ Days + (1 | nu) + (1 | sigma)", data,
                  family="student_t", draws=20, tune=5, chains=2, random_seed=1)
    post = fit.posterior
    assert post[naming.NU].dims == ("chain", "draw") and post[naming.SIGMA].dims == (
        "chain", "draw")
    assert "nu_level" in post["r_nu"].dims and "sigma_level" in post["r_sigma"].dims
    check_tables(fit, ("nu", "sigma"), data)
    assert "Residual" in set(fit.varcorr()["group"])
    response = fit.predict(data.head(4), kind="response", random_seed=2)
    assert response.shape == (2, 20, 4) and np.all(np.isfinite(response))
    fit.save(tmp_path / "t.nc")
    loaded = quietly(hb.load, tmp_path / "t.nc")
    pd.testing.assert_frame_equal(loaded.varcorr(), fit.varcorr())


def test_negative_binomial_with_a_group_named_alpha(mocked_sample, tmp_path):
    rng = np.random.default_rng(4)
    data = SLEEP.assign(alpha=SLEEP["Subject"],
                        y=rng.poisson(np.exp(1 + 0.1 * SLEEP["Days"])))
    formula = "y ~ Days + (1 | alpha)"
    bayes = quietly(hb.fit_bayes, formula, data, family="negative_binomial", draws=20, tune=5,
                    chains=2, random_seed=5)
    reml = quietly(hb.fit_reml, formula, data, family="negative_binomial")
    assert bayes.posterior[naming.ALPHA].dims == ("chain", "draw")
    assert "alpha_level" in bayes.posterior["r_alpha"].dims
    check_tables(bayes, ("alpha",), data)
    cmp = quietly(hb.compare, bayes, reml, max_draws=40)
    assert set(cmp.groups["group"]) == {"alpha"} and len(cmp.groups) == 18
    draws = bayes.predict(data.head(5), kind="response", random_seed=1)
    assert np.all(draws.values >= 0) and np.all(draws.values == np.round(draws.values))
    bayes.save(tmp_path / "nb.nc")
    loaded = quietly(hb.load, tmp_path / "nb.nc")
    np.testing.assert_array_equal(loaded.posterior[naming.ALPHA], bayes.posterior[naming.ALPHA])
    check_prediction(reml, data, "alpha")
