"""Simulation-based calibration (Talts et al. 2018) of the marginal and the standard paths.

For one design (the predictors and groups of a template data set) and fixed priors: draw the
parameters and a response from the prior (the standard PyMC model's prior predictive), fit each
simulated data set, and take the rank of every true value among thinned posterior draws. With a
correct sampler and likelihood the ranks are uniform; `uniformity` tests that per quantity with a
chi-square test on equal-width bins.

Both paths are fitted by `hierbayes.sample`, which compiles each model once: every data set has
the same design, so the compiled model is reused with the new response swapped in
(`hierbayes.bayes.compiled`). Used by tests/test_marginal.py (small) and
benchmarks/sbc_marginal.py (full).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import stats

from .. import naming
from ..bayes.diagnostics import reported_quantities
from ..bayes.model import BayesModel, model_from_design
from ..bayes.sampling import sample
from ..design import make_design


def simulate(spec: BayesModel, n_datasets: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """True values (data set × quantity, labels of `reported_quantities`) and responses
    (data set × row), drawn from the prior of `spec`'s standard model."""
    prior = pm.sample_prior_predictive(
        draws=n_datasets,
        model=spec.model,
        random_seed=seed,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )
    truth = reported_quantities(spec.design, prior["prior"].to_dataset())  # label -> (1, N)
    y = prior["prior_predictive"][naming.RESPONSE]
    y = y.transpose(*naming.SAMPLE_DIMS, naming.OBS_DIM).to_numpy()[0]  # (N, n)
    return pd.DataFrame({k: v[0] for k, v in truth.items()}), y


def respecify(spec: BayesModel, y: np.ndarray) -> BayesModel:
    """`spec` with the response replaced by `y` (same rows, predictors, groups and priors)."""
    data = spec.design.data.copy()
    data[spec.design.response] = y  # a plain column: the response of a calibration design
    design = make_design(spec.formula, data, spec.design.family, spec.missing)
    return model_from_design(design, spec.priors, spec.link, spec.missing, spec.centred)


def ranks(posterior: xr.Dataset, design, truth: pd.Series, thin: int) -> pd.Series:
    """Rank of each true value among the posterior draws kept by thinning (0 .. draws kept)."""
    quantities = reported_quantities(design, posterior)
    out = {}
    for label, value in truth.items():
        kept = quantities[label].reshape(-1)[::thin]  # chains one after the other
        out[label] = int(np.sum(kept < value))
    return pd.Series(out)


def marginal_ranks(spec, truth, ys, draws=500, tune=500, chains=2, thin=10, seed=0):
    """(data set × quantity) ranks from the marginal path (group effects integrated out)."""
    return path_ranks(spec, truth, ys, True, draws, tune, chains, thin, seed)


def standard_ranks(spec, truth, ys, draws=500, tune=500, chains=2, thin=10, seed=0):
    """(data set × quantity) ranks from the standard path (group effects sampled by NUTS)."""
    return path_ranks(spec, truth, ys, False, draws, tune, chains, thin, seed)


def path_ranks(spec, truth, ys, marginalize, draws=500, tune=500, chains=2, thin=10, seed=0):
    """(data set × quantity) ranks, one fit per data set (``attrs["divergences"]``: in all)."""
    rows, divergences = [], 0
    for i, y in enumerate(ys):
        spec_i = respecify(spec, y)
        fit = sample(
            spec_i, draws=draws, tune=tune, chains=chains, random_seed=seed + i,
            progressbar=False, warn=False, marginalize=marginalize,
        )  # fmt: skip
        divergences += int(fit.idata["sample_stats"]["diverging"].sum())
        rows.append(ranks(fit.posterior, spec_i.design, truth.iloc[i], thin))
    frame = pd.DataFrame(rows)
    frame.attrs["divergences"] = divergences
    return frame


def uniformity(rank_frame: pd.DataFrame, n_ranks: int, bins: int = 5) -> pd.DataFrame:
    """Chi-square test of uniform ranks per quantity (ranks 0 .. n_ranks - 1 in `bins` bins).

    The bins hold whole ranks, so they may hold unequal numbers of them (101 ranks in 10 bins:
    11 in the first): the expected counts are those of the discrete uniform distribution."""
    bin_of = np.arange(n_ranks) * bins // n_ranks  # bin of each possible rank
    share = np.bincount(bin_of, minlength=bins) / n_ranks  # (bins,) expected share
    binned = bin_of[rank_frame.to_numpy().astype(int)]  # (datasets, quantities)
    rows = []
    for j, label in enumerate(rank_frame.columns):
        counts = np.bincount(binned[:, j], minlength=bins)
        chi2, p = stats.chisquare(counts, f_exp=share * counts.sum())
        rows.append({"quantity": label, "chi2": chi2, "p_value": p, "counts": counts.tolist()})
    return pd.DataFrame(rows).set_index("quantity")
