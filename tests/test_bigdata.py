"""Fits from a Dask frame (hierbayes.bigdata): the same numbers as from the pandas frame it was
cut from, the same errors for bad input, and clear refusals of what needs the rows.

Each comparison fits one data set twice, as pandas and as a Dask frame of several partitions
(sorted so that some partitions lack levels and categories), and requires equal criteria,
estimates and group effects to near machine precision; the lme4 reference fits of the crossed
(Penicillin) and nested (Pastes) designs are matched from a Dask frame too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

import hierbayes as hb
from hierbayes.bigdata.rows import RowsNotInMemory

dd = pytest.importorskip("dask.dataframe")


def simulated(n: int = 6000, groups: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n) * 3
    f = rng.choice(["a", "b", "c"], n)
    b = rng.normal(size=(groups, 2)) * [2.0, 0.5]
    y = 10 + 2 * x + (f == "b") + b[g, 0] + b[g, 1] * x + rng.normal(size=n)
    frame = pd.DataFrame({"y": y, "x": x, "g": [f"s{v:03d}" for v in g], "f": f,
                          "h": rng.integers(0, 12, n)})
    # Sorted by f: the first partitions hold only "a", the last only "c".
    return frame.sort_values("f", kind="stable").reset_index(drop=True)


def as_dask(frame: pd.DataFrame, partitions: int = 4):
    return dd.from_pandas(frame, npartitions=partitions, sort=False)


def assert_same_fit(a, b, rtol=1e-8):
    assert b.criterion == pytest.approx(a.criterion, rel=1e-11)
    np.testing.assert_allclose(b.beta, a.beta, rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b.vcov, a.vcov, rtol=1e-6)
    if a.sigma is not None:
        assert b.sigma == pytest.approx(a.sigma, rel=1e-8)
    ra, rb = a.ranef(), b.ranef()
    assert list(ra["level"]) == list(rb["level"]) and list(ra["term"]) == list(rb["term"])
    np.testing.assert_allclose(rb["estimate"], ra["estimate"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(rb["std_error"], ra["std_error"], rtol=1e-6)
    assert b.fixef().index.tolist() == a.fixef().index.tolist()


@pytest.mark.parametrize("formula,method", [
    ("y ~ x + f + (1 + x | g)", "REML"),
    ("y ~ x + f + (1 + x | g)", "ML"),
    ("y ~ x + (1 + x || g)", "REML"),
    ("y ~ x + (1 | g) + (1 | h)", "REML"),
    ("y ~ 0 + x + (1 | g)", "REML"),
])
def test_reml_from_dask_equals_pandas(formula, method):
    data = simulated()
    a = hb.fit_reml(formula, data, method=method, check_within=False)
    b = hb.fit_reml(formula, as_dask(data), method=method)
    assert_same_fit(a, b)
    assert b.design.n_obs == len(data)
    assert dict(zip(b.design.blocks[0].levels, b.design.blocks[0].counts, strict=True)) == (
        data.groupby("g").size().to_dict())


@pytest.mark.parametrize("name", ["Penicillin", "Pastes"])
def test_lme4_references_from_dask(name):
    data, ref = load_reference(name)
    fit = hb.fit_reml(ref["formula"], as_dask(data, 3))
    assert fit.criterion == pytest.approx(ref["fit_criteria"]["REML_criterion"], abs=1e-4)
    assert fit.sigma == pytest.approx(ref["residual_sd"], rel=1e-4)
    assert_same_fit(hb.fit_reml(ref["formula"], data), fit)


def test_categories_absent_from_the_first_partitions():
    # Sorted by h: the sample rows that fix the encoding hold h = 0 only, and f, b one value.
    data = simulated().assign(b=lambda d: d.h > 8).sort_values("h").reset_index(drop=True)
    formula = "y ~ x + C(h) + f + b + (1 | g)"
    with pytest.warns(hb.DataWarning, match="dropping 1 column"):  # b: a sum of C(h)'s dummies
        a = hb.fit_reml(formula, data, check_within=False)
    with pytest.warns(hb.DataWarning, match="dropping 1 column"):
        b = hb.fit_reml(formula, as_dask(data, 5))
    assert b.design.fixed_names == a.design.fixed_names
    assert len(a.design.fixed_names) == 2 + 11 + 2 and b.design.dropped_fixed == ("b",)
    assert_same_fit(a, b)


def test_prior_weights_are_refused_for_a_dask_frame():
    data = simulated(n=400, groups=20)
    with pytest.raises(hb.HierbayesError, match="Prior weights are not supported for a Dask"):
        hb.fit_reml("y ~ x + (1 | g)", as_dask(data), weights=np.ones(len(data)))
    fit = hb.fit_reml("y ~ x + (1 | g)", data, weights=np.ones(len(data)), check_within=False)
    assert fit.criterion == pytest.approx(hb.fit_reml("y ~ x + (1 | g)", as_dask(data)).criterion)


def test_large_columns_are_rescaled_as_from_pandas():
    data = simulated().assign(x=lambda d: d.x * 1e7, y=lambda d: d.y * 1e-6)
    a = hb.fit_reml("y ~ x + (1 + x | g)", data, check_within=False)
    b = hb.fit_reml("y ~ x + (1 + x | g)", as_dask(data))
    assert_same_fit(a, b)


def test_missing_rows_and_collinear_columns_as_from_pandas():
    data = simulated().assign(x2=lambda d: 2 * d.x)
    data.loc[[3, 50, 4000], "x"] = np.nan
    with pytest.warns(hb.DataWarning) as pandas_warnings:
        a = hb.fit_reml("y ~ x + x2 + (1 | g)", data, check_within=False)
    with pytest.warns(hb.DataWarning) as dask_warnings:
        b = hb.fit_reml("y ~ x + x2 + (1 | g)", as_dask(data))
    assert [str(w.message) for w in dask_warnings] == [str(w.message) for w in pandas_warnings]
    assert any("Dropped 3 of 6000 rows" in str(w.message) for w in dask_warnings)
    assert any("'x2'" in str(w.message) for w in dask_warnings)
    assert b.design.fixed_names == ("Intercept", "x") and b.design.n_dropped == 3
    assert_same_fit(a, b)


def _bad_inputs():
    base = simulated(n=400, groups=20)
    nan_y = base.copy()
    nan_y.loc[[5, 7], "y"] = np.nan
    inf_x = base.copy()
    inf_x.loc[[9, 300], "x"] = np.inf
    text_y = base.assign(y=base.y.round(1).astype(str))
    dates = base.assign(x=pd.Timestamp("2020-01-01") + pd.to_timedelta(base.h, unit="D"))
    return [
        ("y ~ z + (1 | g)", base, {}),  # a missing column
        ("y ~ x + (1 | g)", nan_y, {"missing": "raise"}),
        ("y ~ x + (1 | g)", base.assign(y=np.nan), {}),  # every row missing
        ("y ~ x + (1 | g)", inf_x, {}),
        ("y ~ x + (1 | g)", text_y, {}),  # a non-numeric response
        ("y ~ x + (1 | g)", dates, {}),
        ("y ~ x + (1 | g)", base.assign(g="one"), {}),  # one level
        ("y ~ x + (1 | id)", base.assign(id=np.arange(len(base))), {}),  # a level per row
        ("y ~ x + (1 | g)", base.assign(y=3.5), {}),  # a constant response
        ("y ~ x + (1 | g)", base.assign(y=2 * base.x + 1), {}),  # reproduced exactly
        ("y ~ x + (1 | g)", base.assign(y=base.g.str[1:].astype(float)), {}),  # y = the group
        ("y ~ x + (1 | g)", base.assign(y=base.g.str[1:].astype(float) + 0.5 * base.x), {}),
        ("y ~ x + (1 + x | g) + (x | g)", base, {}),  # one variance twice
        ("y ~ x + (1 | g)", base, {"check_nlevels": "sometimes"}),
    ]


@pytest.mark.parametrize("formula,data,kwargs", _bad_inputs())
def test_bad_input_gives_the_pandas_error(formula, data, kwargs):
    with pytest.raises(hb.HierbayesError) as from_pandas:
        hb.fit_reml(formula, data, check_within=False, **kwargs)
    with pytest.raises(hb.HierbayesError) as from_dask:
        hb.fit_reml(formula, as_dask(data, 3), **kwargs)
    assert type(from_dask.value) is type(from_pandas.value)
    # Dask holds strings as Arrow strings: the message names the dtype the frame really has.
    dask_text = str(from_dask.value).replace("(dtype string,", "(dtype str,")
    assert dask_text == str(from_pandas.value)


@pytest.mark.parametrize("formula,kwargs,error,words", [
    ("y ~ x + (1 | g)", {"family": "poisson"}, hb.FamilyError, "gaussian family only"),
    ("y ~ scale(x) + (1 | g)", {}, hb.FormulaError, "scale(...) learns from the whole column"),
    ("y ~ x + offset(x) + (1 | g)", {}, hb.DesignError, "offset(...) is not supported"),
])
def test_what_a_dask_frame_cannot_do_is_refused(formula, kwargs, error, words):
    data = simulated(n=400, groups=20).assign(y=lambda d: np.abs(d.y).round())
    with pytest.raises(error, match=re.escape(words)):
        hb.fit_reml(formula, as_dask(data), **kwargs)
    # ... and the same call on the pandas frame is fine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hb.fit_reml(formula, data, check_within=False, **kwargs)


def test_a_crossed_design_beyond_the_dense_size_is_refused_by_name():
    """More than 200 crossed group effects take the Schur path, whose statistics come from the
    rows: a Dask frame is refused with the reason, the pandas frame takes that path."""
    from hierbayes.bayes.marginal import plan_for

    data = simulated(n=3000, groups=200)
    formula = "y ~ x + (1 | g) + (1 | h)"
    with pytest.raises(hb.HierbayesError, match="reads the rows, which a Dask frame"):
        hb.build_model(formula, as_dask(data))
    assert plan_for(hb.build_model(formula, data), None).path == "schur"


def test_operations_on_rows_say_so_and_prediction_is_lazy():
    data = simulated()
    a = hb.fit_reml("y ~ x + f + (1 + x | g)", data, check_within=False)
    b = hb.fit_reml("y ~ x + f + (1 + x | g)", as_dask(data))
    assert len(a.predict()) == len(data)  # from pandas the fitted rows are there ...
    with pytest.raises(RowsNotInMemory, match=re.escape("fit.predict(ddf)")):
        b.predict()  # ... from Dask they are not
    with pytest.raises(RowsNotInMemory):
        b.bootstrap(2, seed=1)
    new = as_dask(data.iloc[::7], 3)
    lazy = b.predict(new)
    assert isinstance(lazy, dd.Series)
    np.testing.assert_allclose(lazy.compute().to_numpy(), a.predict(data.iloc[::7]).to_numpy(),
                               rtol=1e-9)
    # a pandas frame predicts as from the pandas fit
    np.testing.assert_allclose(b.predict(data.head(20)), a.predict(data.head(20)), rtol=1e-9)


def test_a_distributed_client_runs_the_passes():
    distributed = pytest.importorskip("dask.distributed")
    data = simulated(n=2000, groups=30)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        b = hb.fit_reml("y ~ x + (1 + x | g)", as_dask(data, 3))
        # the client's scheduler ran the passes: it has seen the partition tasks
        assert any("partition_moments" in str(key) or "lambda" in str(key)
                   for key in client.run_on_scheduler(
                       lambda dask_scheduler: list(dask_scheduler.task_prefixes)))
    assert_same_fit(hb.fit_reml("y ~ x + (1 + x | g)", data, check_within=False), b)


def test_bayes_from_dask_equals_pandas_seeded(tmp_path):
    data = simulated(n=1500, groups=15)
    kw = {"draws": 60, "tune": 60, "chains": 1, "random_seed": 5, "progressbar": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hb.fit_bayes("y ~ x + (1 + x | g)", data, check_within=False, **kw)
        b = hb.fit_bayes("y ~ x + (1 + x | g)", as_dask(data), **kw)
    assert b.settings["marginal_path"] == "grouped"
    pd.testing.assert_frame_equal(b.priors.to_frame(), a.priors.to_frame())
    names = list(a.idata["posterior"].data_vars)
    assert names == list(b.idata["posterior"].data_vars) and "r_g" in names
    for name in names:  # β, SDs, correlation, σ, and the group effects drawn after NUTS
        pa = a.idata["posterior"][name].to_numpy()
        pb = b.idata["posterior"][name].to_numpy()
        np.testing.assert_allclose(pb, pa, rtol=1e-6, atol=1e-8)
    assert "log_likelihood" not in b.idata.children
    assert a.loo().elpd < 0  # from pandas LOO is there ...
    with pytest.raises(RowsNotInMemory, match="pointwise log-likelihood"):
        b.loo()  # ... from Dask there are no rows to leave out
    summary = b.predict(as_dask(data.head(30), 2), summary=True)
    assert isinstance(summary, dd.DataFrame)
    expected = a.predict(data.head(30), summary=True)
    np.testing.assert_allclose(summary.compute()["estimate"], expected["estimate"], rtol=1e-6)
    with pytest.raises(hb.HierbayesError, match="summary=True"):
        b.predict(as_dask(data.head(30), 2))
    with pytest.raises(RowsNotInMemory, match="cannot be saved"):
        b.save(tmp_path / "fit.nc")
    with pytest.raises(hb.HierbayesError, match="marginal path only"):
        hb.fit_bayes("y ~ x + (1 + x | g)", as_dask(data), marginalize=False, **kw)


def test_pandas_fits_do_not_load_dask():
    code = (
        "import sys, hierbayes as hb\n"
        "data = hb.datasets.load('sleepstudy')\n"
        "hb.fit_reml('Reaction ~ Days + (Days | Subject)', data, check_within=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dask'"
        " or m == 'hierbayes.bigdata.moments'))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]"


def test_r2_icc_and_anova_from_the_sums():
    data = simulated(n=3000, groups=30)
    small, big = "y ~ x + (1 | g)", "y ~ x + (1 + x | g)"
    pandas_fits = [hb.fit_reml(f, data, check_within=False) for f in (small, big)]
    dask_fits = [hb.fit_reml(f, as_dask(data)) for f in (small, big)]
    for a, b in zip(pandas_fits, dask_fits, strict=True):
        assert b.r2() == pytest.approx(a.r2(), rel=1e-10)
        assert b.icc()["unadjusted"] == pytest.approx(a.icc()["unadjusted"], rel=1e-10)
    expected = hb.anova(*pandas_fits)
    got = hb.anova(*dask_fits)
    np.testing.assert_allclose(got["Chisq"].to_numpy()[1:], expected["Chisq"].to_numpy()[1:],
                               rtol=1e-8)
    other = hb.fit_reml(big, as_dask(data.assign(y=data.y + data.x)))
    with pytest.raises(hb.HierbayesError, match="same response on the same rows"):
        hb.anova(dask_fits[0], other)
    with pytest.raises(hb.HierbayesError, match="same response on the same rows"):
        hb.anova(pandas_fits[0], dask_fits[1])


def test_default_priors_from_the_sums():
    data = simulated(n=2000, groups=20)
    formula = "y ~ x + f + (1 + x | g)"
    expected = hb.default_priors(formula, data).to_frame()
    pd.testing.assert_frame_equal(hb.default_priors(formula, as_dask(data)).to_frame(), expected)
    # the SDs of the data set the scales: a response ten times larger, priors ten times wider
    wider = hb.default_priors(formula, as_dask(data.assign(y=10 * data.y))).to_frame()
    assert wider.loc[wider.name == "sigma", "parameters"].item() != (
        expected.loc[expected.name == "sigma", "parameters"].item())


@pytest.mark.parametrize("formula,path", [
    ("y ~ x + f + (1 + x | g)", "grouped"),
    ("y ~ x + (1 + x || g)", "grouped"),
    ("y ~ x + (1 | g) + (1 | h)", "dense"),
])
def test_marginal_likelihood_from_the_sums(formula, path):
    from hierbayes.bayes.marginal import plan_for

    data = simulated(n=2000, groups=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hb.build_model(formula, data)
        b = hb.build_model(formula, as_dask(data))
    plan_a, plan_b = plan_for(a, True), plan_for(b, True)
    assert plan_a.path == plan_b.path == path
    s = plan_a.stats
    # Xᵀe is 0 up to rounding: measured against |e|·|x|, the sizes it is a product of
    scale = {"Xte": np.sqrt(s["ete"] * np.max(np.diag(s["XtX"])))}
    for key in ("beta_hat", "ete", "Xte", "XtX", "A", "ZtX", "Zte"):
        size = scale.get(key, np.max(np.abs(s[key])))
        np.testing.assert_allclose(plan_b.stats[key], s[key], rtol=1e-9, atol=1e-9 * size,
                                   err_msg=key)
    # the log density of the marginal model at its initial point
    marginal_a = hb.bayes.marginal.build_marginal_model(a.design, a.priors, plan_a)
    point = marginal_a.initial_point()
    assert b.model.compile_logp()(point) == pytest.approx(marginal_a.compile_logp()(point),
                                                         rel=1e-10)
