"""Helpers for the Bayesian tests: simulated data and NUTS fits shared by workers (the mocked
sampler is the `mocked_sample` fixture of conftest.py).

Real NUTS fits are shared between the pytest-xdist workers through a file in the run's temporary
folder: the first worker to need a fit samples it and saves it (`BayesFit.save`), the others wait
on a lock and load it (`hb.load`), so each model is sampled once per run.
"""

from __future__ import annotations

import fcntl
import os

import numpy as np
import pandas as pd

import hierbayes as hb
from hierbayes.bayes.fit import BayesFit

# Settings of the real NUTS fits: sampling is well under a second for these models, the cost is
# compilation (a few seconds per model), so 4 × 1000 draws buy stable R-hat and ESS for free.
NUTS = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 20261126, "progressbar": False}

def nuts_fit(formula: str, data: pd.DataFrame, **options) -> BayesFit:
    """`hb.fit_bayes` with the `NUTS` settings (`options` override them), without sampling
    warnings: each test asserts the diagnostics it relies on, by name, rather than turning every
    `SamplingWarning` of the fit into an error."""
    return hb.fit_bayes(formula, data, **{**NUTS, "warn": False, **options})


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
