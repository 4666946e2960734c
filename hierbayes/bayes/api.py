"""`fit_bayes`: build the model, then sample it (`hierbayes.bayes.model`, `.sample`)."""

from __future__ import annotations

import pandas as pd

from ..arguments import check_seed
from ..reml.api import check_within_between
from .fit import BayesFit
from .keywords import check_sample_keywords
from .model import build_model
from .sampling import DEFAULT_TARGET_ACCEPT, sample


# Repeats `sample`'s explicit settings on purpose (not **kwargs): users see them in help().
def fit_bayes(
    formula: str,
    data: pd.DataFrame,
    family="gaussian",
    priors=None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: str | None = None,
    target_accept: float = DEFAULT_TARGET_ACCEPT,
    progressbar: bool = True,
    link: str | None = None,
    missing: str = "drop",
    marginalize: bool | None = None,
    known_sigma: str | None = None,
    check_nlevels: str = "error",
    check_within: bool = True,
    centred=None,
    log_likelihood: bool = False,
    **sample_kwargs,
) -> BayesFit:
    """Fit the model by NUTS: `build_model` then `sample` (see both for the arguments).

    `marginalize`: for gaussian identity-link models, integrate the group effects out, sample
    the rest, then draw the group effects exactly (None: whenever it applies; see `sample`).

    `priors`: name -> `hb.Prior` overrides of the defaults (`hb.default_priors` lists the names).
    `known_sigma`: a column of known per-observation residual SDs (gaussian only), e.g. the
    standard errors of a meta-analysis; no residual SD is then estimated.
    `sampler`: "nutpie" (default when installed), "pymc", "numpyro" or "blackjax".
    `check_nlevels`: "error", "warning" or "ignore" for a grouping factor with too many levels
    for the data (lme4's checkNlevels; see hierbayes.identifiability).
    `check_within`: before sampling, warn (`WithinBetweenWarning`) when a predictor's within-
    and between-group slopes differ, tested on the REML/Laplace fit (`hierbayes.mundlak`).
    Extra keyword arguments go to `pymc.sample` (unknown ones are refused, with the valid list).
    """
    check_sample_keywords(sample_kwargs, fit_bayes, sample)
    check_seed(random_seed)  # before the model is built
    spec = build_model(formula, data, family, priors, link, missing, known_sigma=known_sigma,
                       check_nlevels=check_nlevels, centred=centred)
    if check_within:
        check_within_between(spec.design, spec.link)
    return sample(
        spec,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        target_accept=target_accept,
        progressbar=progressbar,
        marginalize=marginalize,
        log_likelihood=log_likelihood,
        **sample_kwargs,
    )
