"""Comparison plots (matplotlib). Each returns a Figure and never calls ``plt.show()``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from scipy import stats

from ..arguments import check_choice, keywords_checked
from ..naming import is_sd, row_key, row_name

COLORS = {"no_pool": "0.55", "reml": "tab:orange", "bayes": "tab:blue", "prior": "0.6"}


@keywords_checked
def plot_shrinkage(cmp, group: str | None = None, term: str | None = None):
    """Per group: no pooling → REML → posterior mean, against group size, with the population
    value. Groups move further toward the population when they are small. When every group has
    the same size, groups are spread out in the order of their no-pooling estimates instead."""
    part = _select(cmp.groups, group, term).sort_values("no_pool")
    population = part["population_bayes"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    n = part["n"].to_numpy(float)
    balanced = np.ptp(n) == 0
    if balanced:
        x = np.arange(len(n))
        ax.set_xlabel(f"groups in order of their own estimate (each has n = {int(n[0])})")
    else:
        x = n * np.exp(np.random.default_rng(0).uniform(-0.08, 0.08, size=len(n)))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        ax.set_xlabel("observations in group (log scale)")
    ax.vlines(
        x,
        population + part["no_pool"],
        population + part["bayes_estimate"],
        color="0.8",
        lw=0.8,
        zorder=1,
    )
    for col, key, label, marker in (
        ("no_pool", "no_pool", "no pooling", "o"),
        ("reml_estimate", "reml", cmp.method, "s"),
        ("bayes_estimate", "bayes", "posterior mean", "D"),
    ):
        ax.scatter(
            x, population + part[col], s=14, marker=marker, color=COLORS[key], label=label, zorder=3
        )
    ax.axhline(population, color="k", lw=1, ls="--", label="population value")
    ax.set_ylabel(f"{part['term'].iloc[0]} of each {part['group'].iloc[0]}")
    ax.set_title("Partial pooling: each group's own estimate pulled toward the population")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _select(groups, group, term):
    group = groups["group"].iloc[0] if group is None else check_choice(
        group, "group", groups["group"].unique())
    part = groups[groups["group"] == group]
    term = part["term"].iloc[0] if term is None else check_choice(
        term, f"term (of group {group!r})", part["term"].unique())
    return part[part["term"] == term]


@keywords_checked
def plot_forest(cmp):
    """Posterior intervals of fixed effects and variance components with the REML estimates
    overlaid; one panel per parameter, each on its own scale."""
    rows = [
        (term, r["bayes_lower"], r["bayes_estimate"], r["bayes_upper"], r["reml_estimate"])
        for term, r in cmp.fixed.set_index("term").iterrows()
    ]
    rows += [
        (row_name(r), r["bayes_lower"], r["bayes_median"], r["bayes_upper"], r["reml_estimate"])
        for r in cmp.variance.to_dict("records")
    ]
    fig, axes = plt.subplots(len(rows), 1, figsize=(7, 0.55 * len(rows) + 0.9), squeeze=False)
    for ax, (label, lo, mid, hi, reml) in zip(axes[:, 0], rows, strict=True):
        ax.hlines(0, lo, hi, color=COLORS["bayes"], lw=3)
        ax.scatter([mid], [0], color=COLORS["bayes"], zorder=3, s=25)
        ax.scatter([reml], [0], marker="x", s=60, color=COLORS["reml"], zorder=4)
        left, right = min(lo, reml), max(hi, reml)
        pad = 0.6 * (right - left) or 1.0
        ax.set_xlim(left - pad, right + pad)
        ax.set_yticks([0], [label])
        ax.tick_params(axis="x", labelsize=7)
        ax.spines[["top", "right", "left"]].set_visible(False)
    fig.suptitle(
        f"posterior {cmp.ci_prob:.0%} interval and mean (median for SDs), {cmp.method} ×",
        fontsize=9,
    )
    fig.tight_layout(h_pad=0.2)
    return fig


@keywords_checked
def plot_variance(cmp):
    """Posterior density of each SD with its prior and the REML estimate marked."""
    post = cmp.component_draws()
    prior = cmp.component_draws(prior=True)
    rows = [r for r in cmp.variance.to_dict("records") if is_sd(r)]
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.2), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        key = row_key(row)
        sample = post[key]
        top = np.quantile(sample, 0.995) * 1.3
        grid = np.linspace(0, max(top, row["reml_estimate"] * 1.2, 1e-9), 300)
        ax.plot(grid, _density(sample, grid), color=COLORS["bayes"], label="posterior")
        if key in prior:
            ax.plot(grid, _density(prior[key], grid), color=COLORS["prior"], ls="--", label="prior")
        ax.axvline(row["reml_estimate"], color=COLORS["reml"], label=cmp.method)
        ax.set_title(row_name(row), fontsize=9)
        ax.set_yticks([])
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _density(sample: np.ndarray, grid: np.ndarray) -> np.ndarray:
    sample = sample[np.isfinite(sample)]
    if sample.std() == 0:
        return np.zeros_like(grid)
    # Reflect at zero: SDs are positive and a plain KDE would leak mass below 0.
    kde = stats.gaussian_kde(np.r_[sample, -sample])
    return 2 * kde(grid)
