"""Plain-language agreement summary, and the reasons known to drive REML and Bayes apart,
detected from the data and the two fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..naming import is_sd, row_name

FEW_GROUPS = 10  # fewer levels than this: the group SD is poorly determined by the data
SMALL_GROUP = 5  # groups with fewer observations than this are "small"


def verdicts(
    fixed: pd.DataFrame, variance: pd.DataFrame, groups: pd.DataFrame, design, method: str
) -> list[str]:
    lines = [_fixed_line(fixed, method)]
    lines += [_variance_line(row, method) for row in variance.to_dict("records")]
    lines += _group_lines(groups)
    return lines


def reasons(variance: pd.DataFrame, groups: pd.DataFrame, design, method: str) -> pd.DataFrame:
    """One row per detected reason for disagreement: reason, where, detail."""
    rows = _design_reasons(design, method) + _variance_reasons(variance, method)
    if method == "Laplace" or design.family.response != "real":
        rows.append(
            (
                "non-Gaussian likelihood",
                design.response,
                "the frequentist fit integrates the group effects by a Laplace "
                "approximation; the posterior integrates them exactly (by sampling)",
            )
        )
    ratio = np.nanmedian(groups["se_ratio"])
    if np.isfinite(ratio) and ratio > 1.1:
        rows.append(
            (
                "BLUP SDs ignore uncertainty in θ",
                "groups",
                f"posterior SDs of group effects are {ratio:.2f}× the {method} conditional SDs "
                "(median): the conditional SDs treat the variance estimates as known",
            )
        )
    return pd.DataFrame(rows, columns=["reason", "where", "detail"])


def _design_reasons(design, method: str) -> list[tuple]:
    rows = []
    for block in design.blocks:
        if block.n_levels < FEW_GROUPS:
            rows.append(
                (
                    "few groups",
                    block.group,
                    f"{block.n_levels} levels: the data say little about its SD, so the "
                    f"prior matters and {method}'s point estimate hides that uncertainty",
                )
            )
        small = np.mean(block.counts < SMALL_GROUP)
        if small >= 0.25:
            rows.append(
                (
                    "small groups",
                    block.group,
                    f"{small:.0%} of levels have fewer than {SMALL_GROUP} observations",
                )
            )
    return rows


def _variance_reasons(variance: pd.DataFrame, method: str) -> list[tuple]:
    rows = []
    for row in variance.to_dict("records"):
        name = row_name(row, "prose")
        if row["singular"]:
            rows.append(
                (
                    "boundary estimate",
                    name,
                    f"{method} puts it at the boundary ({row['reml_estimate']:.3g}); the posterior "
                    f"median is {row['bayes_median']:.3g}",
                )
            )
        ratio = row["bayes_std_error"] / row["prior_sd"] if row["prior_sd"] > 0 else np.nan
        if np.isfinite(ratio) and ratio > 0.5:
            rows.append(
                (
                    "strong prior",
                    name,
                    f"posterior SD is {ratio:.0%} of the prior SD: the data barely update "
                    "the prior",
                )
            )
    return rows


def _fixed_line(fixed: pd.DataFrame, method: str) -> str:
    worst = fixed["std_diff"].abs().max()
    if fixed["agree"].all():
        return f"Fixed effects agree: within {worst:.2f} posterior SD of {method}."
    off = ", ".join(fixed.loc[~fixed["agree"], "term"])
    return f"Fixed effects differ for {off} (up to {worst:.2f} posterior SD from {method})."


def _variance_line(row: dict, method: str) -> str:
    name = row_name(row, "prose")
    interval = f"[{row['bayes_lower']:.3g}, {row['bayes_upper']:.3g}]"
    head = (
        f"{name}: {method} {row['reml_estimate']:.3g} vs posterior median "
        f"{row['bayes_median']:.3g} {interval}"
    )
    if row["singular"] and is_sd(row):
        return (
            f"{head} — {method} is at the boundary (singular fit); the prior and the "
            "uncertainty about the SD keep the posterior off zero."
        )
    if row["singular"]:
        return (
            f"{head} — {method} puts the correlation at ±1 (singular fit); "
            "the LKJ prior pulls it in."
        )
    if not row["agree"]:
        quantile = row["reml_quantile"]
        return f"{head} — {method} lies outside the posterior interval (quantile {quantile:.2f})."
    return f"{head} — agree ({method} at posterior quantile {row['reml_quantile']:.2f})."


def _rank_correlation(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho; NaN when one side is constant (e.g. every REML mode is 0)."""
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def _group_lines(groups: pd.DataFrame) -> list[str]:
    lines = []
    for (group, term), part in groups.groupby(["group", "term"], sort=False):
        rho = _rank_correlation(part["reml_estimate"], part["bayes_estimate"])
        small = part["n"] < SMALL_GROUP
        ranks = (
            f"rank correlation of group estimates {rho:.3f}"
            if np.isfinite(rho)
            else "no rank correlation (one side puts every group at the same value)"
        )
        line = (
            f"{term} over {group}: {ranks}; {part['agree'].mean():.0%} of {len(part)} groups agree"
        )
        if small.any() and (~small).any():
            d_small = part.loc[small, "std_diff"].abs().mean()
            d_large = part.loc[~small, "std_diff"].abs().mean()
            if d_small > d_large:
                line += (
                    f"; groups with n < {SMALL_GROUP} differ most (mean |std_diff| "
                    f"{d_small:.2f} vs {d_large:.2f})"
                )
        lines.append(line + ".")
    return lines
