"""Helpers for the Bayesian tests: simulated data, mocked sampling, and NUTS fits shared by workers.

Real NUTS fits are shared between the pytest-xdist workers through a file in the run's temporary
folder: the first worker to need a fit samples it and saves it (`BayesFit.save`), the others wait
on a lock and load it (`hb.load`), so each model is sampled once per run.
"""

from __future__ import annotations

import fcntl
import os

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

import hierbayes as hb
from hierbayes.bayes import BayesFit

# Settings of the real NUTS fits: sampling is well under a second for these models, the cost is
# compilation (a few seconds per model), so 4 × 1000 draws buy stable R-hat and ESS for free.
NUTS = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 20261126, "progressbar": False}

TRUE_COUNTS = {"Intercept": 0.5, "x": 0.3, "sd_g": 0.6, "alpha": 2.0}


def simulate_counts(family: str, seed: int = 2026, groups: int = 40, per_group: int = 10):
    """``y ~ x + (1 | g)`` with the log link and the parameters of `TRUE_COUNTS`."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    u = rng.normal(0.0, TRUE_COUNTS["sd_g"], groups)
    mu = np.exp(TRUE_COUNTS["Intercept"] + TRUE_COUNTS["x"] * x + u[g])
    if family == "poisson":
        y = rng.poisson(mu)
    else:
        alpha = TRUE_COUNTS["alpha"]
        y = rng.negative_binomial(alpha, alpha / (alpha + mu))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})


def simulate_gaussian(seed: int = 7, groups: int = 6, per_group: int = 5) -> pd.DataFrame:
    """A tiny ``y ~ x + (1 | g)`` data set for cheap sampling tests."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.7, groups)[g] + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"G{k}" for k in g]})


def shared_fit(key: str, make_fit, tmp_path_factory) -> BayesFit:
    """`make_fit()` once per test run, whatever the number of xdist workers."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder all workers of this run share
    path = root / f"bayesfit-{key}.nc"
    with open(root / f"bayesfit-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return hb.load(path)
        fit = make_fit()
        fit.save(path)
        return fit


def fake_posterior(spec, chains: int = 2, draws: int = 50, seed: int = 0) -> xr.DataTree:
    """What `pm.sample` returns, with prior draws standing in for the posterior (no NUTS).

    The prior draws come from the model itself, so every variable has the names and dims that
    sampling would give it. Sample stats are clean (no divergences, no tree-depth hits).
    """
    prior = pm.sample_prior_predictive(
        draws=chains * draws,
        model=spec.model,
        random_seed=seed,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )["prior"].to_dataset()
    prior = prior.drop_vars("chain").squeeze("chain", drop=True)
    posterior = _split_chains(prior, chains, draws)
    rng = np.random.default_rng(seed)
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((chains, draws), bool)),
            "maxdepth_reached": (("chain", "draw"), np.zeros((chains, draws), bool)),
            "energy": (("chain", "draw"), rng.normal(size=(chains, draws))),
        },
        coords={"chain": range(chains), "draw": range(draws)},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


def _split_chains(prior: xr.Dataset, chains: int, draws: int) -> xr.Dataset:
    out = {}
    for name, var in prior.data_vars.items():
        values = var.transpose("draw", ...).to_numpy()
        out[name] = (
            ("chain", "draw", *var.dims[1:]),
            values.reshape(chains, draws, *values.shape[1:]),
        )
    coords = {k: v for k, v in prior.coords.items() if k != "draw"}
    return xr.Dataset(out, coords={**coords, "chain": range(chains), "draw": range(draws)})


def fake_fit(spec, chains: int = 2, draws: int = 50, seed: int = 0) -> BayesFit:
    """A `BayesFit` around `fake_posterior` (mocked sampling)."""
    settings = {
        "draws": draws,
        "tune": 0,
        "chains": chains,
        "random_seed": seed,
        "sampler": "mock",
        "target_accept": 0.9,
    }
    return BayesFit(spec, fake_posterior(spec, chains, draws, seed), settings)


def mock_pm_sample(monkeypatch) -> list[dict]:
    """Replace `pm.sample` (as `hierbayes.sampling` sees it) by prior draws of the model it is
    given; returns the list of keyword arguments of each call."""
    import warnings

    from hierbayes import sampling

    calls: list[dict] = []

    def fake_sample(**kwargs):
        calls.append(kwargs)
        spec = type("Spec", (), {"model": kwargs["model"]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # prior draws ignore a marginal potential
            return fake_posterior(spec, chains=kwargs["chains"], draws=kwargs["draws"])

    monkeypatch.setattr(sampling.pm, "sample", fake_sample)
    return calls
