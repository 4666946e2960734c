"""Why the posterior and the frequentist fit may differ: each reason measured, never assumed.

Every reason is a measured quantity of the two fits compared with a documented threshold; it is
listed only where the measurement says it applies, with the measured value in its detail.

=================================  ===========================================  ==============
reason                             measured quantity                            applies when
=================================  ===========================================  ==============
boundary estimate                  the frequentist SD (correlation) against     SD < 1e-4 ×
                                   lme4's singularity rule                      scale, |ρ| ≈ 1
SD poorly determined               upper / lower end of the SD's posterior      > 4
                                   interval
prior still informative            contraction 1 − var_post / var_prior of an   < 0.5
                                   SD or correlation (prior draws of the model)
fixed-effect uncertainty           median over groups of r_cond = posterior SD  r_cond > 1.1
                                   of b_j / conditional SD (β̂, θ̂ fixed) and of  and r_cond >
                                   r_total = posterior SD of β + b_j / its      1.1 · r_total
                                   prediction-error SD given θ̂ (uncertainty.py)
variance-parameter uncertainty     r_total (the gap left once β's uncertainty   > 1.1
                                   is on both sides)
pooling differs                    |λ_bayes − λ_reml|, the weights on each      max > 0.1
                                   group's own data
Laplace approximation              median |skewness| of the posterior draws of  > 0.3 (Laplace
                                   the group effects                            fits only)
within/between slopes differ       p-value of D = B − W, the between- minus the p < 0.01
                                   within-group slope of a predictor
                                   (`hierbayes.mundlak`, on the frequentist fit)
=================================  ===========================================  ==============

`r_cond` > 1.1 alone is not a reason: REML's conditional SDs hold β̂ fixed, so the posterior SDs of
b_j exceed them whenever β is uncertain, and the group's total coefficient β + b_j shows whether
the two fits really disagree about a group. The Laplace approximation replaces each group's
conditional posterior by a normal; skewed posterior draws of the group effects are where it errs.
Different within- and between-group slopes are no disagreement between the fits but a bias of
both: each estimates one slope where the data have two (the random-effects assumption fails).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..naming import is_sd, row_name

INTERVAL_RATIO = 4.0  # an SD whose 95 % interval spans more than a factor 4 is poorly determined
CONTRACTION_MIN = 0.5  # the data removed less than half of the prior's variance
SD_RATIO = 1.1  # posterior SDs more than 10 % above the frequentist ones
POOLING_GAP = 0.1  # weights on a group's own data that differ by more than 0.1
SKEWNESS = 0.3  # the group effects' posteriors are visibly asymmetric

COLUMNS = ["reason", "where", "detail"]


def reasons(variance: pd.DataFrame, groups: pd.DataFrame, method: str,
            within: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per reason that applies here: reason, where, detail (with the measured value).
    `within`: the table of `hierbayes.mundlak` (its `flagged` rows are listed)."""
    rows = []
    for row in variance.to_dict("records"):
        rows += _variance_reasons(row, method)
    for (group, term), part in groups.groupby(["group", "term"], sort=False):
        where = f"{term} over {group}"
        rows += _uncertainty_reasons(part, where, method)
        rows += _pooling_reason(part, where, method)
        if method == "Laplace":
            rows += _laplace_reason(part, where)
    if within is not None:
        rows += [_within_reason(row, method) for row in within.to_dict("records")
                 if row["flagged"]]
    return pd.DataFrame(rows, columns=COLUMNS)


def _within_reason(row: dict, method: str) -> tuple:
    term, group = row["term"], row["group"]
    return ("within/between slopes differ", f"{term} over {group}",
            f"the slope of {term} within the levels of {group} is {row['within']:.3g}, between "
            f"them {row['between']:.3g} (difference {row['difference']:.3g} ± "
            f"{row['std_error']:.2g}, p = {row['p_value']:.2g}); both fits estimate one slope "
            f"({method}: {row['estimate']:.3g}), a mix of the two, because the group effects "
            f"go with the group means of {term}: fit y ~ within({term}, {group}) + "
            f"between({term}, {group}) + ... to estimate each")


def _variance_reasons(row: dict, method: str) -> list[tuple]:
    name = row_name(row, "prose")
    out = []
    if row["singular"]:
        out.append(("boundary estimate", name,
                    f"{method} puts it at the boundary ({row['reml_estimate']:.3g}); the posterior "
                    f"median is {row['bayes_median']:.3g}"))
    lower, upper = row["bayes_lower"], row["bayes_upper"]
    if is_sd(row) and upper > INTERVAL_RATIO * max(lower, 0):
        spread = f"a factor {upper / lower:.1f}" if lower > 0 else "from 0"
        out.append(("SD poorly determined", name,
                    f"its posterior interval [{lower:.3g}, {upper:.3g}] spans {spread} (more than "
                    f"{INTERVAL_RATIO:g}): {method}'s single estimate {row['reml_estimate']:.3g} "
                    "hides this uncertainty, which the posterior carries into every group effect"))
    contraction = row.get("contraction", np.nan)
    if np.isfinite(contraction) and contraction < CONTRACTION_MIN:
        out.append(("prior still informative", name,
                    f"the data removed {max(contraction, 0):.0%} of the prior's variance "
                    f"(posterior SD {row['bayes_std_error']:.3g}, prior SD {row['prior_sd']:.3g}; "
                    f"less than "
                    f"{CONTRACTION_MIN:.0%}): the prior shapes this posterior, and {method} has "
                    "no prior"))
    return out


def _median_ratio(values: pd.Series) -> float:
    finite = values[np.isfinite(values) & (values > 0)]
    return float(finite.median()) if len(finite) else float("nan")


def _uncertainty_reasons(part: pd.DataFrame, where: str, method: str) -> list[tuple]:
    r_cond = _median_ratio(part["se_ratio"])
    r_total = _median_ratio(part["total_sd_ratio"])
    out = []
    beta_gap = np.isfinite(r_total) and r_cond > SD_RATIO * max(r_total, 1.0)
    if np.isfinite(r_cond) and r_cond > SD_RATIO and beta_gap:
        corr = part["beta_corr"].median()
        with_corr = (f"; the posterior correlation of the fixed effect with the group effects is "
                     f"{corr:.2f} (median)") if np.isfinite(corr) else ""
        out.append(("fixed-effect uncertainty", where,
                    f"posterior SDs of the group effects are {r_cond:.2f}× {method}'s conditional "
                    f"SDs, which hold the fixed effects at their estimates; on each group's own "
                    f"coefficient (fixed effect + group effect) the ratio is {r_total:.2f}×"
                    f"{with_corr}: the gap is the uncertainty of the fixed effect, not a "
                    "disagreement about the groups"))
    if np.isfinite(r_total) and r_total > SD_RATIO:
        out.append(("variance-parameter uncertainty", where,
                    f"posterior SDs of each group's coefficient are {r_total:.2f}× {method}'s "
                    f"prediction-error SDs (median), which take the estimated SDs and "
                    "correlations as known; the posterior averages over them"))
    return out


def _pooling_reason(part: pd.DataFrame, where: str, method: str) -> list[tuple]:
    gap = (part["lambda_bayes"] - part["lambda_reml"]).abs()
    if not (gap > POOLING_GAP).any():
        return []
    worst = part.loc[gap.idxmax()]
    small = part.loc[gap > POOLING_GAP, "n"]
    return [("pooling differs", where,
             f"the weight on a group's own data differs by up to {gap.max():.2f} (level "
             f"{worst['level']}, n = {int(worst['n'])}: posterior {worst['lambda_bayes']:.2f}, "
             f"{method} {worst['lambda_reml']:.2f}) in {len(small)} of {len(part)} groups "
             f"(n ≤ {int(small.max())}): the posterior averages the pooling over the group SD, "
             f"{method} uses its estimate")]


def _laplace_reason(part: pd.DataFrame, where: str) -> list[tuple]:
    skew = part["bayes_skewness"].abs().median()
    if not skew > SKEWNESS:
        return []
    return [("Laplace approximation", where,
             f"the posteriors of the group effects are skewed (median |skewness| {skew:.2f}, "
             f"above {SKEWNESS}); the Laplace fit replaces each by a normal distribution, and "
             "the posterior integrates them exactly (by sampling)")]
