"""The tidy tables of a `RemlFit` (shapes in hierbayes.tidy and the API contract).

`fixef` and `ranef` intervals are Wald: estimate ± z·SE with z the normal quantile of `ci_prob`
(1.959964 for 95 %); for `ranef` the SE is the conditional SD, so the interval is the
conditional-mode interval lme4's dotplots show, not a prediction interval for a new level.
`varcorr` intervals are profile likelihood intervals (hierbayes.reml.profile).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import HierbayesError
from ..tidy import check_ci_prob, fixef_frame, ranef_frame, varcorr_frame
from .profile import profile_intervals, std_errors
from .refit import ml_refit
from .sdcor import components, sds_and_correlations


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


def varcorr_table(fit, ci_prob: float, criterion: str = "fit") -> pd.DataFrame:
    """SD rows (term2 None), correlation rows (term1 before term2 in block order; correlated
    blocks only), then Residual (Gaussian fits with an estimated σ only: not with known residual
    SDs, not for GLMMs).

    Core columns (hierbayes.tidy): `estimate` is the SD or the correlation; `std_error` its
    Hessian (delta-method) SE on that scale; `lower`, `upper` the profile likelihood interval
    (hierbayes.reml.profile; `attrs["interval"]` says which criterion). REML extras: `variance`
    (SD rows only: the variance; NaN on correlation rows), `covariance` (correlation rows only:
    the covariance; NaN on SD rows), `block` (the design block: lme4's "g" and "g.1" for the two
    halves of `(x || g)`). A correlation that involves an SD of exactly 0 is undefined: NaN.
    """
    comps = components(fit.design, fit.sigma is not None)
    prof = profile_intervals(_profiled_fit(fit, criterion), ci_prob)
    se = std_errors(fit)
    rows = []
    for k, c in enumerate(comps):
        row = _component_row(fit, c)
        row.update(std_error=se[k], lower=prof.lower[k], upper=prof.upper[k])
        rows.append(row)
    label = prof.label
    if criterion == "ML" and fit.method == "REML":
        label += " (lme4's confint: the ML refit's profile, around the ML estimates)"
    frame = varcorr_frame(rows, label)
    frame.attrs["std_error"] = ("Hessian (delta-method) SE of the SD / correlation on its own "
                                "scale; NaN at a bound")
    return frame


CRITERIA = ("fit", "ML")


def _profiled_fit(fit, criterion: str):
    """The fit whose criterion is profiled: the fit itself, or with "ML" its ML refit (lme4's
    confint(method = "profile") profiles the ML deviance even for REML fits)."""
    if criterion not in CRITERIA:
        raise HierbayesError(
            f"criterion must be 'fit' (profile the criterion this fit minimised) or 'ML' "
            f"(lme4's confint: profile the ML deviance of the ML refit); got {criterion!r}."
        )
    return ml_refit(fit) if criterion == "ML" else fit


def _component_row(fit, c) -> dict:
    if c.kind == "sigma":
        return dict(group="Residual", term1=None, term2=None, estimate=fit.sigma,
                    variance=fit.sigma ** 2, covariance=np.nan, block="Residual")
    block = fit.design.blocks[c.block]
    cov = fit.covariance[block.name]
    sd, corr = sds_and_correlations(cov)
    if c.kind == "sd":
        return dict(group=block.group, term1=block.terms[c.i], term2=None,
                    estimate=sd[c.i], variance=cov[c.i, c.i], covariance=np.nan,
                    block=block.name)
    return dict(group=block.group, term1=block.terms[c.i], term2=block.terms[c.l],
                estimate=corr[c.i, c.l], variance=np.nan, covariance=cov[c.i, c.l],
                block=block.name)


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
