"""The comparison tables: fixed effects, variance components, groups. Computes, never formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..naming import RESIDUAL, row_key
from .complete import complete_pooling
from .draws import PosteriorDraws, varcorr_draws
from .nopool import no_pooling
from .shrinkage import posterior_lambda
from .uncertainty import posterior_total, reml_total_sd

AGREE_SD = 0.5  # |std_diff| below this many posterior SDs counts as agreement


def fixed_table(bayes, reml, ci_prob: float, tol: float = AGREE_SD) -> pd.DataFrame:
    r, b = reml.fixef(ci_prob=ci_prob), bayes.fixef(ci_prob=ci_prob)
    out = pd.DataFrame(
        {
            "term": r.index,
            "reml_estimate": r["estimate"].to_numpy(),
            "reml_std_error": r["std_error"].to_numpy(),
            "reml_lower": r["lower"].to_numpy(),
            "reml_upper": r["upper"].to_numpy(),
            "bayes_estimate": b.loc[r.index, "estimate"].to_numpy(),
            "bayes_std_error": b.loc[r.index, "std_error"].to_numpy(),
            "bayes_lower": b.loc[r.index, "lower"].to_numpy(),
            "bayes_upper": b.loc[r.index, "upper"].to_numpy(),
        }
    )
    out["std_diff"] = (out["bayes_estimate"] - out["reml_estimate"]) / out["bayes_std_error"]
    out["se_ratio"] = out["bayes_std_error"] / out["reml_std_error"]
    out["overlap"] = interval_overlap(
        out["reml_lower"], out["reml_upper"], out["bayes_lower"], out["bayes_upper"]
    )
    out["agree"] = out["std_diff"].abs() < tol
    return out


def interval_overlap(lo1, hi1, lo2, hi2) -> np.ndarray:
    """Length of the intersection over the length of the union (1 = same interval, 0 = disjoint)."""
    inter = np.clip(np.minimum(hi1, hi2) - np.maximum(lo1, lo2), 0, None)
    union = np.maximum(hi1, hi2) - np.minimum(lo1, lo2)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)


def variance_table(
    draws: PosteriorDraws, prior: PosteriorDraws | None, reml, design, ci_prob: float
) -> pd.DataFrame:
    rows = []
    post, pri = varcorr_draws(draws, design), varcorr_draws(prior, design) if prior else {}
    lo_q, hi_q = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    near = near_zero_thresholds(design)
    for rec in reml.varcorr(ci_prob=ci_prob).to_dict("records"):
        key = row_key(rec)
        sample = post[key]
        est = float(rec["estimate"])
        is_sd = key[2] is None
        tiny = near.get(key, np.nan)
        rows.append(
            {
                "group": key[0],
                "term1": key[1],
                "term2": key[2],
                "reml_estimate": est,
                "reml_std_error": rec["std_error"],
                "reml_lower": rec["lower"],
                "reml_upper": rec["upper"],
                "bayes_estimate": sample.mean(),
                "bayes_std_error": sample.std(ddof=1),
                "bayes_median": np.median(sample),
                "bayes_lower": np.quantile(sample, lo_q),
                "bayes_upper": np.quantile(sample, hi_q),
                "reml_quantile": np.mean(sample <= est),
                "singular": _at_boundary(est, is_sd, reml),
                "near_zero": tiny,
                "posterior_near_zero": np.mean(sample < tiny) if is_sd else np.nan,
                "prior_near_zero": np.mean(pri[key] < tiny) if is_sd and key in pri else np.nan,
                "prior_sd": pri[key].std(ddof=1) if key in pri else np.nan,
            }
        )
    out = pd.DataFrame(rows)
    out["agree"] = (out["reml_estimate"] >= out["bayes_lower"]) & (
        out["reml_estimate"] <= out["bayes_upper"]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        # Prior-to-posterior contraction (Betancourt 2018): 0 = the data did not narrow the
        # prior, 1 = the posterior is a point next to it.
        out["contraction"] = 1 - out["bayes_std_error"] ** 2 / out["prior_sd"] ** 2
    return out


def _at_boundary(estimate: float, is_sd: bool, reml) -> bool:
    """lme4's isSingular rule per row: an SD below 1e-4 of the fit's scale (the residual SD, the
    median known SD, or 1 on a link scale), or a correlation within 1e-4 of ±1."""
    if not is_sd:
        return abs(estimate) > 1 - 1e-4
    scale = getattr(reml, "sd_scale", None) or 1.0
    return estimate < 1e-4 * scale


NEAR_ZERO = 0.05  # an SD is "near zero" when its effect is below 5 % of the response's scale


def near_zero_thresholds(design) -> dict[tuple, float]:
    """(group, term, None) -> the SD below which that term's variation is negligible.

    Measured on each term's own scale: group effects b of term t add b·z_t to the linear
    predictor, so an SD τ_t moves it by about τ_t·rms(z_t) (rms: root mean square of the term's
    column; 1 for an intercept). τ_t is near zero when that is below 5 % of the response's scale
    (its SD for Gaussian models, 1 on the link scale otherwise): τ_t < 0.05·scale / rms(z_t).
    A slope on days (rms 5) gets a threshold five times smaller than an intercept.
    """
    gaussian = design.family.response == "real"
    scale = float(np.std(design.y)) if gaussian else 1.0
    out = {}
    for block in design.blocks:
        rms = np.sqrt(np.mean(block.Z**2, axis=0))
        for term, size in zip(block.terms, rms, strict=True):
            out[(block.group, term, None)] = NEAR_ZERO * scale / size if size > 0 else np.nan
    if gaussian:
        out[(RESIDUAL, None, None)] = NEAR_ZERO * scale
    return out


def groups_table(
    draws: PosteriorDraws, bayes, reml, design, ci_prob: float, tol: float = AGREE_SD
) -> pd.DataFrame:
    r_fixef, b_fixef = reml.fixef(), bayes.fixef()
    beta_hat = r_fixef["estimate"].to_numpy()
    r_ranef, b_ranef = reml.ranef(), bayes.ranef(ci_prob=ci_prob)
    vc = reml.varcorr(ci_prob=ci_prob)  # profiled once per ci_prob (cached on the fit)
    reml_total = reml_total_sd(reml, design)
    bayes_total = posterior_total(draws, design)
    pooled = dict(zip(design.fixed_names, complete_pooling(
        design, getattr(bayes, "link", None), alpha=getattr(reml, "dispersion", None)),
        strict=True))
    frames = []
    for i, block in enumerate(design.blocks):
        own = no_pooling(design, beta_hat, block, getattr(bayes, "link", None),
                         alpha=getattr(reml, "dispersion", None))
        lam_draws = posterior_lambda(draws, design, i)
        lo, hi = np.quantile(lam_draws, [(1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2], axis=0)
        for t, term in enumerate(block.terms):
            tau = _reml_sd(vc, block.group, term)
            frame = pd.DataFrame(
                {
                    "group": block.group,
                    "level": list(block.levels),
                    "term": term,
                    "n": block.counts,
                    "no_pool": own[:, t],
                    # Every group at the pooled regression's value, as a deviation from the
                    # population value (0 for a term outside the fixed part: both are 0).
                    "complete_pool": pooled.get(term, 0.0) - _fixed_value(r_fixef, term),
                    "population_reml": _fixed_value(r_fixef, term),
                    "population_bayes": _fixed_value(b_fixef, term),
                }
            )
            frame = _attach(frame, r_ranef, "reml", ["estimate", "std_error"])
            frame = _attach(frame, b_ranef, "bayes", ["estimate", "std_error", "lower", "upper"])
            frame["lambda_reml"] = _reml_lambda(frame["reml_std_error"].to_numpy(), tau)
            frame["lambda_bayes"] = lam_draws[:, :, t].mean(axis=0)
            frame["lambda_bayes_lower"], frame["lambda_bayes_upper"] = lo[:, t], hi[:, t]
            frame["reml_total_sd"] = reml_total[i][:, t]
            frame["bayes_total_sd"], frame["beta_corr"] = (v[:, t] for v in bayes_total[i])
            frame["bayes_skewness"] = stats.skew(draws.effects[i][:, :, t], axis=0)
            frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["shrinkage_reml"] = 1 - out["lambda_reml"]
    out["shrinkage_bayes"] = 1 - out["lambda_bayes"]
    for side in ("reml", "bayes"):
        out[f"moved_{side}"] = _moved(out["no_pool"], out[f"{side}_estimate"])
    out["std_diff"] = (out["bayes_estimate"] - out["reml_estimate"]) / out["bayes_std_error"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["se_ratio"] = out["bayes_std_error"] / out["reml_std_error"]
        out["total_sd_ratio"] = out["bayes_total_sd"] / out["reml_total_sd"]
    out["agree"] = out["std_diff"].abs() < tol
    return out


def _attach(frame, ranef, side, columns) -> pd.DataFrame:
    part = ranef[["group", "level", "term", *columns]].rename(
        columns={c: f"{side}_{c}" for c in columns}
    )
    return frame.merge(part, on=["group", "level", "term"], how="left", validate="one_to_one")


def _reml_sd(vc: pd.DataFrame, group: str, term: str) -> float:
    sds = vc[(vc["group"] == group) & (vc["term1"] == term) & vc["term2"].isna()]
    return float(sds["estimate"].iloc[0])


def _reml_lambda(condsd: np.ndarray, tau: float) -> np.ndarray:
    """λ̂ = 1 − condvar/τ̂²: the weight of the group's own data (0 when τ̂ = 0: full pooling)."""
    if tau <= 0:
        return np.zeros_like(condsd)
    return 1 - condsd**2 / tau**2


def _fixed_value(fixef: pd.DataFrame, term: str) -> float:
    return float(fixef.loc[term, "estimate"]) if term in fixef.index else 0.0


def _moved(no_pool: pd.Series, estimate: pd.Series) -> np.ndarray:
    """Fraction of the way from the no-pooling estimate to the population value (deviation 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = 1 - estimate.to_numpy() / no_pool.to_numpy()
    return np.where(np.abs(no_pool.to_numpy()) > 1e-12, moved, np.nan)
