"""How much do the variance components depend on their priors? Power-scaling, without refits.

The posterior is p(θ | y) ∝ p(θ)·p(y | θ). Raising the hyperpriors — the priors of the group SDs
and of the correlations (LKJ) — to a power α, p(θ)^α, weakens them (α < 1) or strengthens them
(α > 1); the power-scaled posterior is the present one reweighted by p_hyper(θ)^(α − 1), with
Pareto-smoothed importance weights (Kallioinen, Paananen, Bürkner & Vehtari 2024, "Detecting
and diagnosing prior and likelihood sensitivity with power-scaling", Stat Comput 34:57;
arviz_stats's `psense`, whose two numbers this table reports).

Per SD and correlation (and the residual SD, reported but not scaled: its prior is not a
hyperprior):

- `prior_sensitivity`: arviz_stats's diagnostic — the rate of change of the cumulative
  Jensen–Shannon distance between the posterior and its power-scaled versions at α = 0.99 and
  1.01; ≥ 0.05 is their threshold of an informative prior (`sensitive`);
- `likelihood_sensitivity`: the same with the likelihood power-scaled (NaN without pointwise
  log-likelihood); with both ≥ 0.05 the `diagnosis` is a prior–data conflict, with only the
  prior's, a strong prior / weak likelihood;
- `median_weaker`, `median_stronger`: the posterior median with the hyperpriors' weight halved
  (α = 0.5) and doubled (α = 2), and `shift` = their difference in posterior SDs: how far the
  estimate moves when the prior is made half or twice as strong;
- `ess_share`: the smaller effective sample size of the two weightings as a share of the draws
  (below about 0.1 the weighted medians rest on few draws: refit with a changed prior instead).

This is where Bayes and REML legitimately differ: with few groups a group SD is sensitive and the
posterior is partly the prior's, which REML does not have; with many groups it is not.
"""

from __future__ import annotations

import arviz_stats
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from .. import naming
from ..errors import HierbayesError

THRESHOLD = 0.05  # arviz_stats's (and priorsense's) threshold of sensitivity
ALPHAS = (0.5, 2.0)
SAMPLE_DIMS = ("chain", "draw")


def prior_sensitivity(bayes, reml=None, alphas=ALPHAS) -> pd.DataFrame:
    """One row per SD / correlation of `bayes` (columns in the module docstring; `reml_estimate`
    when a frequentist fit `reml` is given)."""
    low, high = _check_alphas(alphas)
    draws = bayes.draws("varcorr")  # (chain, draw, component)
    log_prior = hyperprior_logp(bayes)  # (chain, draw)
    values = {f"q{k}": draws.isel(component=k).drop_vars(
        [c for c in draws.coords if c not in SAMPLE_DIMS]) for k in range(draws.sizes["component"])}
    tree = {"posterior": xr.Dataset(values), "log_prior": xr.Dataset({"hyper": log_prior})}
    loglik = _log_likelihood(bayes)
    if loglik is not None:
        tree["log_likelihood"] = xr.Dataset({naming.RESPONSE: loglik})
    tree = xr.DataTree.from_dict(tree)
    prior_sense = arviz_stats.psense(tree, group="prior")
    lik_sense = arviz_stats.psense(tree, group="likelihood") if loglik is not None else None
    weights = {a: _weights(log_prior, a) for a in (low, high)}
    rows = []
    for k, name in enumerate(values):
        sample = values[name].to_numpy().reshape(-1)
        row = {c: _label(draws[c].values[k]) for c in ("group", "term1", "term2")}
        prior_s = float(prior_sense[name])
        lik_s = float(lik_sense[name]) if lik_sense is not None else np.nan
        weaker, stronger = (weighted_median(sample, weights[a]) for a in (low, high))
        row.update(bayes_median=float(np.median(sample)), median_weaker=weaker,
                   median_stronger=stronger, shift=(stronger - weaker) / sample.std(ddof=1),
                   prior_sensitivity=prior_s, likelihood_sensitivity=lik_s,
                   sensitive=prior_s >= THRESHOLD, diagnosis=_diagnosis(prior_s, lik_s))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["ess_share"] = min(_ess_share(w) for w in weights.values())
    if reml is not None:
        frame.insert(3, "reml_estimate", _reml_estimates(frame, reml))
    frame.attrs["alphas"] = (low, high)
    frame.attrs["scaled"] = "the priors of the group SDs and correlations (hyperpriors)"
    return frame


def hyperprior_logp(bayes) -> xr.DataArray:
    """(chain, draw) log density of the hyperpriors at the posterior draws: each block's SD
    prior (on the SD scale) and LKJ(η) on its correlation matrix, up to constants."""
    post = bayes.posterior
    total = 0.0
    for block in bayes.design.blocks:
        sd_prior = bayes.priors[naming.sd(block)]
        sd = post[naming.sd(block)].transpose(*SAMPLE_DIMS, block.term_dim)
        dist = sd_prior.pymc_class().dist(**sd_prior.params)
        logp = pm.logp(dist, sd.to_numpy()).eval()  # (C, D, k)
        total = total + logp.sum(axis=-1)
        if naming.corr(block) in post:
            eta = bayes.priors[naming.corr(block)].params["eta"]
            corr = post[naming.corr(block)].transpose(*SAMPLE_DIMS, ...).to_numpy()
            total = total + (eta - 1.0) * np.linalg.slogdet(corr)[1]
    if np.ndim(total) == 0:
        raise HierbayesError("The model has no group-level terms: no hyperprior to scale.")
    return xr.DataArray(total, dims=SAMPLE_DIMS)


def weighted_median(sample: np.ndarray, weights: np.ndarray) -> float:
    """The 0.5 quantile of `sample` under normalised `weights` (linear between draws)."""
    order = np.argsort(sample)
    cumulative = np.cumsum(weights[order]) - 0.5 * weights[order]
    return float(np.interp(0.5, cumulative / weights.sum(), sample[order]))


def _weights(log_prior: xr.DataArray, alpha: float) -> np.ndarray:
    """Normalised Pareto-smoothed weights p_hyper^(α − 1), flattened chain by chain."""
    lw = log_prior.azstats.power_scale_lw(alpha=alpha, dim=list(SAMPLE_DIMS))
    lw = lw.transpose(*SAMPLE_DIMS).to_numpy().reshape(-1)
    w = np.exp(lw - lw.max())
    return w / w.sum()


def _ess_share(weights: np.ndarray) -> float:
    return float(1.0 / np.sum(weights**2) / len(weights))


def _log_likelihood(bayes) -> xr.DataArray | None:
    try:
        loglik = bayes.log_likelihood()
    except (KeyError, AttributeError):
        return None
    return loglik.drop_vars([c for c in loglik.coords if c not in SAMPLE_DIMS])


def _diagnosis(prior_s: float, lik_s: float) -> str:
    if prior_s >= THRESHOLD and lik_s >= THRESHOLD:
        return "prior-data conflict"
    if prior_s >= THRESHOLD:
        return "strong prior / weak likelihood" if np.isfinite(lik_s) else "sensitive to prior"
    return "not sensitive"


def _check_alphas(alphas) -> tuple[float, float]:
    try:
        low, high = (float(a) for a in alphas)
    except (TypeError, ValueError):
        low = high = np.nan
    if not (0 < low < 1 < high):
        raise HierbayesError(f"alphas must be two powers (weaker < 1 < stronger), e.g. (0.5, 2); "
                             f"got {alphas!r}.")
    return low, high


def _label(value):
    return None if value in ("", None) else str(value)


def _reml_estimates(frame: pd.DataFrame, reml) -> np.ndarray:
    vc = reml.varcorr()
    keys = {naming.row_key(r): r["estimate"] for r in vc.to_dict("records")}
    return np.array([keys.get(naming.row_key(r), np.nan) for r in frame.to_dict("records")])
