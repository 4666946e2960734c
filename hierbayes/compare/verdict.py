"""The plain-language agreement summary of a comparison, one line per block.

When a sampler check failed, the first line says so and that the rest is not to be read until the
sampling is fixed (`hierbayes.report.checks`). The reasons the fits may differ are measured in
`hierbayes.compare.reasons`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..naming import is_sd, row_name
from ..report.checks import sampler_alert
from .tables import NEAR_ZERO

SMALL_GROUP = 5  # groups with fewer observations than this are "small"
SMALL_STANDS_OUT = 1.5  # small groups "differ most" at 1.5× the others' mean |std_diff| (≥ 0.25)


def verdicts(
    fixed: pd.DataFrame,
    variance: pd.DataFrame,
    groups: pd.DataFrame,
    method: str,
    diagnostics: pd.DataFrame | None = None,
) -> list[str]:
    alert = sampler_alert(diagnostics)
    lines = [alert] if alert else []
    lines.append(_fixed_line(fixed, method))
    lines += [_variance_line(row, method) for row in variance.to_dict("records")]
    lines += _group_lines(groups)
    return lines


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
        near = _near_zero_note(row)
        if near:
            agrees = "and the posterior agrees"
            return f"{head} — {method} is at the boundary (singular fit), {agrees}{near}."
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
        line = f"{head} — {method} lies outside the posterior interval (quantile {quantile:.2f})"
    else:
        line = f"{head} — agree ({method} at posterior quantile {row['reml_quantile']:.2f})"
    return line + _near_zero_note(row) + "."


def _near_zero_note(row: dict) -> str:
    """Said only of an SD whose posterior sits mostly below its term's own negligible size
    (`hierbayes.compare.tables.near_zero_thresholds`)."""
    share = row.get("posterior_near_zero", np.nan)
    if not (is_sd(row) and np.isfinite(share) and share >= 0.5):
        return ""
    return (f"; near zero: {share:.0%} of the posterior lies below {row['near_zero']:.3g}, "
            f"where this term's variation is under {NEAR_ZERO:.0%} of the response's scale")


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
            # Said only when small groups clearly stand out, not on a difference in the noise.
            if d_small >= max(SMALL_STANDS_OUT * d_large, 0.25):
                line += (
                    f"; groups with n < {SMALL_GROUP} differ most (mean |std_diff| "
                    f"{d_small:.2f} vs {d_large:.2f})"
                )
        lines.append(line + ".")
    return lines
