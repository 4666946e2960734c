"""The random-effects assumption, tested: do the within- and between-group slopes agree?

A random intercept b_j is assumed independent of the predictors. A level-1 predictor x that
varies both within and between groups breaks that assumption when its group means x̄_j are
related to the b_j (richer neighbourhoods, better schools): the model's single slope of x is then
a precision-weighted mix of the within-group slope (how y moves with x inside a group) and the
between-group slope (how group means of y move with x̄_j), and is biased for either (Mundlak 1978;
Bell & Jones 2015, "Explaining fixed effects").

The test (Mundlak's form of the Hausman test): refit the model with the group means x̄_j of each
such predictor added. Its coefficient on x is then the within slope W (for a random intercept,
exactly the fixed-effects, group-dummy, estimate), its coefficient on x̄_j the difference
D = B − W between the between slope B and W. A Wald test of D = 0 (normal reference) gives the
p-value; a term is **flagged** when p < `alpha` (default 0.01: the check runs on every fit, so
it should rarely cry wolf). For a posterior refit the table reports the posterior of D instead:
`std_error` its posterior SD, `p_value` the two-sided posterior tail probability
2·min(P(D < 0), P(D > 0)), flagged when below `alpha`. The split model that answers both
questions is one line: ``y ~ within(x, g) + between(x, g) + (1 | g)``.

Candidates, per grouping factor with a varying intercept: every fixed-effect column that varies
within the groups and between them (each part at least 1e-6 of its total variance). Columns
that are constant within groups (group-level predictors), already centred (``within(x, g)``)
or group means (``between(x, g)``) are not candidates. One refit per grouping factor.

This module computes from a fit and a `refit` callable (design -> fit); it imports no engine, so
both engines can run `check` (`fit_reml`, `fit_bayes`) and `hierbayes.within` the public call.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .design import Design
from .errors import WithinBetweenWarning

ALPHA = 0.01
SHARE = 1e-6  # the within and the between part each hold at least this share of the variance

COLUMNS = ["term", "group", "within", "between", "difference", "std_error", "statistic",
           "p_value", "flagged", "estimate", "within_std_error"]


def table(fit, refit, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per candidate term × grouping factor (columns: `COLUMNS`; see
    `hierbayes.within.within_between`). `refit(design)` fits an augmented design the way `fit`
    was fitted."""
    rows = []
    for group, candidates in candidate_terms(fit.design).items():
        augmented, added = augment(fit.design, group, candidates)
        if added:
            rows += _rows(fit, refit(augmented), group, added, alpha)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["flagged"] = frame["flagged"].astype(bool)
    frame.attrs["alpha"] = alpha
    frame.attrs["method"] = fit.method
    return frame


def check(fit, refit, stacklevel: int = 3) -> pd.DataFrame | None:
    """`table` of a fresh fit, warning (`WithinBetweenWarning`) about each flagged term: what
    fit_reml and fit_bayes run unless told not to. None when there is no candidate."""
    if not candidate_terms(fit.design):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refit's own warnings repeat the original fit's
        frame = table(fit, refit)
    flagged = frame[frame["flagged"]]
    if len(flagged):
        warnings.warn(message(flagged), WithinBetweenWarning, stacklevel=stacklevel)
    return frame


def message(flagged: pd.DataFrame) -> str:
    """The warning's text: each flagged term with its two slopes and the one-line remedy."""
    parts = [f"{r.term!r} over {r.group!r}: within {r.within:.3g}, between {r.between:.3g} "
             f"(p = {r.p_value:.2g})" for r in flagged.itertuples()]
    first = flagged.iloc[0]
    return (
        "The within- and between-group slopes differ for " + "; ".join(parts) + ". The model's "
        "single slope mixes them (the group effects are correlated with the group means of the "
        f"predictor). Fit both: y ~ within({first.term}, {first.group}) + "
        f"between({first.term}, {first.group}) + ..., or pass check_within=False to silence "
        "this."
    )


def candidate_terms(design: Design) -> dict[str, list[int]]:
    """Grouping factor -> fixed-effect columns varying both within and between its groups."""
    out: dict[str, list[int]] = {}
    for block in design.blocks:
        if "Intercept" not in block.terms or block.group in out:
            continue
        found = [j for j in range(design.X.shape[1]) if _varies_both(design.X[:, j], block)]
        if found:
            out[block.group] = found
    return out


def _varies_both(x: np.ndarray, block) -> bool:
    total = np.var(x)
    if not total > 0:
        return False
    means = group_means(x, block)
    return np.var(means) > SHARE * total and np.var(x - means) > SHARE * total


def group_means(x: np.ndarray, block) -> np.ndarray:
    """(n,) each row's mean of `x` over its level of `block`."""
    sums = np.bincount(block.index, weights=x, minlength=block.n_levels)
    return (sums / np.maximum(block.counts, 1))[block.index]


def augment(design: Design, group: str, columns: list[int]) -> tuple[Design, list[int]]:
    """`design` with the group means over `group` of `columns` added as fixed effects (those
    not already in the span of the fixed effects); the columns that were added."""
    block = next(b for b in design.blocks if b.group == group)
    added, extra = [], []
    for j in columns:
        candidate = np.column_stack([design.X, *extra, group_means(design.X[:, j], block)])
        r = np.linalg.qr(candidate, mode="r")
        if abs(r[-1, -1]) > 1e-7 * np.linalg.norm(candidate[:, -1]):
            added.append(j)
            extra.append(candidate[:, -1])
    if not added:
        return design, []
    names = [f"between({design.fixed_names[j]}, {group})" for j in added]
    augmented = dataclasses.replace(
        design, X=np.column_stack([design.X, *extra]), fixed_names=(*design.fixed_names, *names))
    return augmented, added


def _rows(fit, refit, group: str, added: list[int], alpha: float) -> list[dict]:
    names = fit.design.fixed_names
    own = fit.fixef()["estimate"].to_numpy()
    p = len(names)
    if refit.method == "NUTS":
        draws = refit.draws("fixef")  # (chain, draw, term)
        values = draws.to_numpy().reshape(-1, draws.shape[-1])
    rows = []
    for k, j in enumerate(added):
        if refit.method == "NUTS":
            w, d = values[:, j], values[:, p + k]
            within, diff = w.mean(), d.mean()
            se, within_se = d.std(ddof=1), w.std(ddof=1)
            pval = float(2 * min(np.mean(d < 0), np.mean(d > 0)))
        else:
            beta, vcov = np.asarray(refit.beta), np.asarray(refit.vcov)
            within, diff = beta[j], beta[p + k]
            se, within_se = np.sqrt(vcov[p + k, p + k]), np.sqrt(vcov[j, j])
            pval = float(2 * stats.norm.sf(abs(diff / se)))
        rows.append(dict(term=names[j], group=group, within=float(within),
                         between=float(within + diff), difference=float(diff),
                         std_error=float(se), statistic=float(diff / se), p_value=pval,
                         flagged=pval < alpha, estimate=float(own[j]),
                         within_std_error=float(within_se)))
    return rows
