"""Stand-ins for NUTS: a `BayesFit` whose "posterior" is the model's prior draws.

For tests, notebooks and benchmarks that exercise what happens after sampling (tables, comparison,
reports, saving) without paying for NUTS. The draws come from the model itself, so every variable
has the names and dims that sampling would give it.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import xarray as xr

from ..bayes.fit import BayesFit


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
