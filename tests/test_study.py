"""`hb.agreement`, `hb.sbc` and their runner: plumbing on mocked sampling (prior draws stand in
for the posterior, `hierbayes.testing.fakes`), the summaries on hand-made tables, and (slow) a
few real NUTS studies whose numbers must come out one way and not the other."""

import concurrent.futures
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes import cli
from hierbayes.study import Agreement
from hierbayes.study.agreement import _jobs as _agreement_jobs
from hierbayes.study.agreement import subsample
from hierbayes.study.calibration import _jobs
from hierbayes.study.parallel import run_all

P = hb.Prior
PRIORS = {"Intercept": P("Normal", mu=0.0, sigma=1.0), "sd_g": P("HalfNormal", sigma=1.0),
          "sigma": P("Exponential", lam=1.0)}
FAST = {"draws": 40, "tune": 0, "chains": 2}


def groups_data(groups=12, per_group=6, seed=1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    y = 5 + rng.normal(0, 1, groups)[g] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"g": [f"g{k:02d}" for k in g], "y": y, "x": rng.normal(size=g.size)})


# --- the runner -------------------------------------------------------------------------------


class PollingClient:
    """A client whose futures are not concurrent.futures ones (as dask's are not)."""

    class Future:
        def __init__(self, value):
            self.value = value

        def done(self):
            return True

        def result(self):
            return self.value

    def submit(self, function, *args):
        return self.Future(function(*args))


def test_runner_keeps_job_order_on_every_backend():
    jobs = [9.0, 1.0, 4.0, 16.0]
    expected = [3.0, 1.0, 2.0, 4.0]
    assert run_all(math.sqrt, jobs, progressbar=False) == expected
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert run_all(math.sqrt, jobs, client=pool, progressbar=False) == expected
    assert run_all(math.sqrt, jobs, client=PollingClient(), progressbar=False) == expected
    assert run_all(math.sqrt, jobs, n_jobs=2, progressbar=False) == expected  # processes


def test_runner_refuses_bad_settings():
    with pytest.raises(hb.HierbayesError, match="n_jobs must be a whole number"):
        run_all(math.sqrt, [1.0], n_jobs=0)
    with pytest.raises(hb.HierbayesError, match="client must have a submit"):
        run_all(math.sqrt, [1.0], client=object())


def test_progress_bar_counts_on_stderr(capsys):
    run_all(math.sqrt, [1.0, 4.0], label="demo")
    err = capsys.readouterr().err
    assert "demo: [" in err and "2/2 (100%)" in err
    run_all(math.sqrt, [1.0, 4.0], label="demo", progressbar=False)
    assert capsys.readouterr().err == ""


# --- agreement --------------------------------------------------------------------------------


def test_subsample_draws_whole_groups_with_enough_rows():
    labels = np.array(["a"] * 5 + ["b"] * 2 + ["c"] * 4 + ["d"] * 6)
    rows = subsample(labels, 3, 4, np.random.default_rng(0))
    picked = pd.Series(labels[rows]).value_counts()
    assert sorted(picked.index) == ["a", "c", "d"] and (picked == 4).all()  # b has only 2 rows
    assert np.all(np.diff(rows) > 0)
    with pytest.raises(hb.HierbayesError, match=r"Only 3 groups have at least 4 rows.*needs 4"):
        subsample(labels, 4, 4, np.random.default_rng(0))


def synthetic(values: dict) -> Agreement:
    """An Agreement whose |std_diff| per (class, n_groups) is given; 2 reps, 10 quantities."""
    rows = []
    for (cls, n_groups), diff in values.items():
        for rep in range(2):
            for q in range(10):
                rows.append({"n_groups": n_groups, "per_group": 5, "rep": rep, "class": cls,
                             "quantity": f"q{q}", "std_diff": diff * (1 + 0.01 * q),
                             "agree": abs(diff * (1 + 0.01 * q)) < 0.5})
    fits = pd.DataFrame({"n_groups": [4, 8, 16], "per_group": 5, "error": None})
    return Agreement("y ~ 1 + (1 | g)", "g", pd.DataFrame(rows), fits, settings={"reps": 2})


def test_summary_is_the_smallest_size_from_which_a_class_agrees():
    study = synthetic({("SDs", 4): 1.2, ("SDs", 8): 0.3, ("SDs", 16): 0.2,
                       ("fixed effects", 4): 0.1, ("fixed effects", 8): 0.1,
                       ("fixed effects", 16): 0.1,
                       ("group effects", 4): 0.2, ("group effects", 8): 0.9,  # relapses
                       ("group effects", 16): 0.3})
    summary = study.summary().set_index("class")
    assert summary.loc["fixed effects", "smallest_n_groups"] == 4
    assert summary.loc["SDs", "smallest_n_groups"] == 8
    assert summary.loc["SDs", "n_obs"] == 40
    assert summary.loc["group effects", "smallest_n_groups"] == 16  # not 4: 8 fails again
    never = synthetic({("SDs", 4): 1.0, ("SDs", 8): 0.8, ("SDs", 16): 0.6}).summary()
    assert np.isnan(never["smallest_n_groups"].iloc[0])
    cells = study.cells()
    assert cells.loc[(cells["class"] == "SDs") & (cells["n_groups"] == 4), "agree"].item() \
        is False
    assert "90%" in study.summary().attrs["rule"]


def test_agreement_table_on_mocked_sampling(mocked_sample):
    data = groups_data(groups=10, per_group=6)
    study = hb.agreement("y ~ 1 + (1 | g)", data, n_groups=(3, 6), per_group=(2, 4), reps=2,
                         priors=PRIORS, seed=3, progressbar=False, **FAST)
    assert len(mocked_sample) == 8 and study.fits["error"].isna().all()
    assert list(study.table.columns[:7]) == ["n_groups", "per_group", "rep", "class",
                                             "quantity", "std_diff", "agree"]
    sizes = study.fits.set_index(["n_groups", "per_group", "rep"])["n_obs"]
    assert sizes.loc[(3, 2, 0)] == 6 and sizes.loc[(6, 4, 1)] == 24
    one = study.table[(study.table["n_groups"] == 6) & (study.table["per_group"] == 4)
                      & (study.table["rep"] == 0)]
    counts = one["class"].value_counts()
    assert counts["fixed effects"] == 1 and counts["SDs"] == 2 and counts["group effects"] == 6
    np.testing.assert_array_equal(one["agree"], one["std_diff"].abs() < 0.5)
    assert study.fits["seed"].nunique() == 8  # every subsample its own sampler seed


def test_subsamples_and_seeds_follow_the_study_seed():
    data = groups_data(groups=10, per_group=6)
    labels = data["g"].to_numpy()
    sizes = [(3, 2), (6, 4)]

    def jobs(seed):
        return [(job["data"].index.tolist(), job["seed"])
                for job in _agreement_jobs("f", data, labels, sizes, 2, seed, {})]

    assert jobs(3) == jobs(3)
    assert jobs(3) != jobs(4)


def test_agreement_records_a_subsample_that_cannot_be_fitted(mocked_sample):
    data = groups_data(groups=6, per_group=3)
    data["c"] = np.where(data["g"] < "g03", "a", "b")  # crossed factor: lost in small samples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = hb.agreement("y ~ 1 + (1 | g) + (1 | c)", data, n_groups=(2,), per_group=(3,),
                             reps=3, priors=None, seed=0, progressbar=False, **FAST)
    assert study.fits["error"].str.contains("DesignError").any()
    assert "failed" in repr(study)


def test_agreement_refuses_bad_sizes():
    data = groups_data()
    with pytest.raises(hb.HierbayesError, match="n_groups must be whole numbers >= 2"):
        hb.agreement("y ~ 1 + (1 | g)", data, n_groups=(1, 4))
    with pytest.raises(hb.HierbayesError, match="Only 12 groups have at least 6 rows"):
        hb.agreement("y ~ 1 + (1 | g)", data, n_groups=(20,), per_group=(6,))
    with pytest.raises(hb.HierbayesError, match="group='zip' must name"):
        hb.agreement("y ~ 1 + (1 | g)", data, group="zip")
    with pytest.raises(hb.HierbayesError, match="no group-level term"):
        hb.agreement("y ~ x", data)


@pytest.mark.slow
def test_std_diff_shrinks_with_the_number_of_groups():
    """Few groups: the posterior of the group SD is wide and skewed and its mean sits above
    REML's estimate; many groups: the two coincide. The group effects follow where each group
    has few rows (with 20 rows a group's data fix its effect: the differences are ~0.015 at 3
    and at 50 groups, below the Monte Carlo error of one replicate)."""
    sim = hb.simulate.zip_income(n_zips=60, min_size=20, max_size=60, seed=2).data
    study = hb.agreement("income ~ 1 + (1 | zip)", sim, n_groups=(3, 50), per_group=(20,),
                         reps=1, seed=1, draws=1000, tune=1000, chains=2, progressbar=False)
    assert study.fits["error"].isna().all() and (study.fits["divergences"] == 0).all()
    cells = study.cells().set_index(["class", "n_groups"])["median_abs_std_diff"]
    assert cells[("SDs", 3)] > 2 * cells[("SDs", 50)]  # 0.35 vs 0.09
    # The mean of a balanced one-way layout is the same on both sides at any size.
    assert cells[("fixed effects", 3)] < 0.2 and cells[("fixed effects", 50)] < 0.2
    sd = study.table[study.table["quantity"] == "sd(Intercept | zip)"].set_index("n_groups")
    # 2 × 1000 draws (0.54; 0.54-0.58 at 1000-2000): 2 × 500 left ~0.05 of Monte Carlo error.
    assert sd.loc[3, "std_diff"] > 0.5 > 2 * abs(sd.loc[50, "std_diff"])
    summary = study.summary().set_index("class")
    assert summary.loc["group effects", "smallest_n_groups"] == 3
    fig = study.plot()
    assert [ax.get_title() for ax in fig.axes] == ["fixed effects", "SDs", "group effects"]
    few_rows = hb.agreement("income ~ 1 + (1 | zip)", sim, n_groups=(3, 50), per_group=(5,),
                            reps=1, seed=1, draws=1000, tune=1000, chains=2, progressbar=False)
    assert few_rows.fits["error"].isna().all()
    effects = few_rows.cells().set_index(["class", "n_groups"])["median_abs_std_diff"]
    assert effects[("group effects", 3)] > 1.5 * effects[("group effects", 50)]  # 0.094, 0.047


# --- sbc --------------------------------------------------------------------------------------


def test_sbc_jobs_keep_each_truth_with_its_data_set():
    truth = pd.DataFrame({"beta[Intercept]": np.arange(5.0)})
    ys = np.arange(5.0)[:, None] * np.ones((5, 3))
    for marginal, workers in ((True, 2), (False, 1)):
        for job in _jobs(None, truth, ys, {}, marginal, workers):
            np.testing.assert_array_equal(job["truth"]["beta[Intercept]"], job["ys"][:, 0])
            assert job["rows"] == list(job["truth"].index)


@pytest.mark.parametrize(("formula", "family", "columns"), [
    ("cbind(s, f) ~ x + (1 | g)", "binomial", {"beta[Intercept]", "beta[x]", "sd_g[Intercept]"}),
    ("n ~ 1 + (1 | g)", "negative_binomial", {"beta[Intercept]", "sd_g[Intercept]", "alpha"}),
    ("y ~ x + (x | g)", "gaussian", {"beta[Intercept]", "beta[x]", "sd_g[Intercept]",
                                     "sd_g[x]", "corr_g[Intercept, x]", "sigma"}),
])
def test_sbc_of_any_family_on_mocked_sampling(mocked_sample, formula, family, columns):
    """Prior draws stand in for the posterior: a sampler that ignores the data, and yet exactly
    calibrated (the truth is a prior draw too): ranks uniform, every quantity present."""
    data = groups_data(groups=5, per_group=4)
    data["s"], data["f"], data["n"] = 3, 2, 4
    study = hb.sbc(formula, data, n_datasets=8, family=family, draws=20, chains=2, thin=2,
                   marginalize=False, progressbar=False, bins=2)
    assert set(study.ranks.columns) == columns and len(study.ranks) == 8
    assert study.n_ranks == 21 and study.ranks.to_numpy().max() <= 20
    assert study.settings["path"] == "standard" and len(mocked_sample) == 8
    assert (study.fits["divergences"] == 0).all() and study.fits["sampler_ok"].dtype == bool


def test_sbc_flags_a_wrong_prior_on_mocked_sampling(mocked_sample):
    data = groups_data(groups=5, per_group=4)
    wrong = {"sd_g": P("HalfNormal", sigma=0.05)}
    study = hb.sbc("y ~ 1 + (1 | g)", data, n_datasets=12, priors=PRIORS, fit_priors=wrong,
                   draws=20, chains=1, thin=1, bins=4, marginalize=False, progressbar=False)
    assert not study.calibrated
    assert study.uniformity["p_value"].idxmin() == "sd_g[Intercept]"
    assert study.ranks["sd_g[Intercept]"].min() >= 15  # the truth above nearly every draw
    assert "Not calibrated: the ranks of sd_g[Intercept]" in study.verdict()


def test_sbc_refuses_bad_settings():
    data = groups_data()
    with pytest.raises(hb.HierbayesError, match="n_datasets must be a whole number >= 2"):
        hb.sbc("y ~ 1 + (1 | g)", data, n_datasets=1)
    with pytest.raises(hb.HierbayesError, match="bins must be a whole number from 2 to 3"):
        hb.sbc("y ~ 1 + (1 | g)", data, n_datasets=4, draws=10, chains=1, thin=5, bins=9)


@pytest.mark.slow
def test_sbc_is_uniform_for_nuts_and_not_for_a_wrong_prior():
    data = groups_data(groups=6, per_group=4)
    settings = {"n_datasets": 15, "priors": PRIORS, "draws": 200, "tune": 200, "chains": 1,
                "thin": 10, "bins": 5, "progressbar": False, "seed": 0}
    right = hb.sbc("y ~ 1 + (1 | g)", data, **settings)
    wrong = hb.sbc("y ~ 1 + (1 | g)", data, fit_priors={"sd_g": P("HalfNormal", sigma=0.1)},
                   **settings)
    assert right.settings["path"] == "marginal"
    assert right.calibrated and right.uniformity["p_value"].min() > 0.05
    assert not wrong.calibrated
    assert wrong.uniformity.loc["sd_g[Intercept]", "p_value"] < 1e-6


# --- the command line -------------------------------------------------------------------------


def test_cli_agreement_and_sbc_write_their_reports(mocked_sample, tmp_path, capsys):
    status = cli.main(["agreement", "eight_schools", "--out", str(tmp_path / "a"),
                       "--groups", "3", "6", "--per-group", "1", "--reps", "1", "--draws",
                       "20", "--tune", "0", "--chains", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "Agreement of Bayes and REML for effect ~ 1 + (1 | school)" in out
    for name in ("report.html", "report.md", "agreement.csv", "agreement_summary.csv"):
        assert (tmp_path / "a" / name).is_file(), name
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Where they agree" in html and "data:image/png;base64" in html
    status = cli.main(["sbc", "eight_schools", "--out", str(tmp_path / "s"), "--datasets", "4",
                       "--draws", "10", "--tune", "0", "--chains", "1", "--thin", "1",
                       "--quiet"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "Calibrated" in out
    ranks = pd.read_csv(tmp_path / "s" / "sbc_ranks.csv", index_col=0)
    assert list(ranks.columns) == ["beta[Intercept]", "sd_school[Intercept]"]
