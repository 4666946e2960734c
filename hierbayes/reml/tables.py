"""The tidy tables of a `RemlFit` (shapes in hierbayes.tidy and the API contract).

Intervals are Wald: estimate ± z·SE with z the normal quantile of `ci_prob` (1.959964 for 95 %);
for `ranef` the SE is the conditional SD, so the interval is the conditional-mode interval lme4's
dotplots show, not a prediction interval for a new level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..tidy import check_ci_prob, fixef_frame, ranef_frame, varcorr_frame


def _z(ci_prob: float) -> float:
    return float(norm.ppf(0.5 + check_ci_prob(ci_prob) / 2))


def _label(ci_prob: float, z: float) -> str:
    return f"{100 * ci_prob:g}% Wald (estimate ± {z:.6f}·SE, normal quantile)"


def fixef_table(fit, ci_prob: float) -> pd.DataFrame:
    z = _z(ci_prob)
    se = np.sqrt(np.diag(fit.vcov))
    frame = fixef_frame(fit.design.fixed_names, fit.beta, se, fit.beta - z * se, fit.beta + z * se,
                        _label(ci_prob, z))
    frame["statistic"] = frame["estimate"] / frame["std_error"]
    return frame


def varcorr_table(fit) -> pd.DataFrame:
    """SD rows (term2 None), correlation rows (term1 < term2 in block order), then Residual
    (Gaussian fits with an estimated σ only: not with known residual SDs).

    `estimate` is the SD or the correlation; `variance` is the variance or the covariance.
    `block` names the design block (lme4's "g" and "g.1" for the two halves of `(x || g)`).
    A correlation that involves an SD of exactly 0 is undefined and reported as NaN.
    """
    rows = []
    for block in fit.design.blocks:
        cov = fit.covariance[block.name]
        sd = np.sqrt(np.diag(cov))
        for i, term in enumerate(block.terms):
            rows.append(dict(group=block.group, term1=term, term2=None, estimate=sd[i],
                             variance=cov[i, i], block=block.name))
        for i in range(block.n_terms):
            for j in range(i + 1, block.n_terms):
                denom = sd[i] * sd[j]
                corr = cov[i, j] / denom if denom > 0 else np.nan
                rows.append(dict(group=block.group, term1=block.terms[i], term2=block.terms[j],
                                 estimate=corr, variance=cov[i, j], block=block.name))
    if fit.sigma is not None:  # GLMMs have no residual SD; known SDs are not estimated
        rows.append(dict(group="Residual", term1=None, term2=None, estimate=fit.sigma,
                         variance=fit.sigma ** 2, block="Residual"))
    return varcorr_frame(rows)


def ranef_table(fit, ci_prob: float) -> pd.DataFrame:
    """One row per block × level × term: conditional mode and conditional SD (level-major)."""
    z = _z(ci_prob)
    parts = []
    for block in fit.design.blocks:
        modes = fit.modes[block.name]  # (L, k)
        sds = np.sqrt(np.diagonal(fit.condcov[block.name], axis1=1, axis2=2))
        L, k = modes.shape
        parts.append(pd.DataFrame({
            "group": block.group, "level": np.repeat(np.asarray(block.levels, object), k),
            "term": np.tile(np.asarray(block.terms, object), L),
            "estimate": modes.ravel(), "std_error": sds.ravel(), "block": block.name,
        }))
    frame = pd.concat(parts, ignore_index=True)
    est, se = frame["estimate"].to_numpy(), frame["std_error"].to_numpy()
    out = ranef_frame(frame["group"], frame["level"], frame["term"], est, se, est - z * se,
                      est + z * se, _label(ci_prob, z).replace("SE", "conditional SD"))
    out["block"] = frame["block"].to_numpy()
    return out
