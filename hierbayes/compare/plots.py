"""Comparison plots (matplotlib). Each returns a Figure and never calls ``plt.show()``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from .draws import row_key, varcorr_draws

COLORS = {"no_pool": "0.55", "reml": "tab:orange", "bayes": "tab:blue", "prior": "0.6"}


def plot_shrinkage(cmp, group: str | None = None, term: str | None = None):
    """Per group: no pooling → REML → posterior mean, against group size, with the population
    value. Groups move further toward the population when they are small."""
    part = _select(cmp.groups, group, term)
    population = part["population_bayes"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    n = part["n"].to_numpy(float)
    jitter = np.exp(np.random.default_rng(0).uniform(-0.08, 0.08, size=len(n)))
    x = n * jitter
    for col, label, marker in (
        ("no_pool", "no pooling", "o"),
        ("reml_estimate", "REML", "s"),
        ("bayes_estimate", "posterior mean", "D"),
    ):
        key = col.split("_")[0] if col != "no_pool" else "no_pool"
        ax.scatter(
            x, population + part[col], s=14, marker=marker, color=COLORS[key], label=label, zorder=3
        )
    ax.vlines(
        x,
        population + part["no_pool"],
        population + part["bayes_estimate"],
        color="0.8",
        lw=0.8,
        zorder=1,
    )
    ax.axhline(population, color="k", lw=1, ls="--", label="population value")
    ax.set_xscale("log")
    ax.set_xlabel("observations in group (log scale)")
    ax.set_ylabel(f"{part['term'].iloc[0]} of each {part['group'].iloc[0]}")
    ax.set_title("Partial pooling: small groups move furthest toward the population value")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _select(groups, group, term):
    group = group or groups["group"].iloc[0]
    part = groups[groups["group"] == group]
    term = term or part["term"].iloc[0]
    return part[part["term"] == term]


def plot_forest(cmp):
    """Posterior intervals of fixed effects and variance components with REML overlaid."""
    fixed, variance = cmp.fixed, cmp.variance
    labels = list(fixed["term"]) + [_label(r) for r in variance.to_dict("records")]
    lower = np.r_[fixed["bayes_lower"], variance["bayes_lower"]]
    upper = np.r_[fixed["bayes_upper"], variance["bayes_upper"]]
    mid = np.r_[fixed["bayes_estimate"], variance["bayes_median"]]
    reml = np.r_[fixed["reml_estimate"], variance["reml_estimate"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(labels) + 1.5), sharey=True)
    y = np.arange(len(labels))[::-1]
    n_fixed = len(fixed)
    for ax, rows in zip(axes, (slice(0, n_fixed), slice(n_fixed, None)), strict=True):
        ax.hlines(
            y[rows],
            lower[rows],
            upper[rows],
            color=COLORS["bayes"],
            lw=2,
            label=f"posterior {cmp.ci_prob:.0%} interval",
        )
        ax.scatter(mid[rows], y[rows], color=COLORS["bayes"], zorder=3)
        ax.scatter(
            reml[rows],
            y[rows],
            marker="x",
            s=50,
            color=COLORS["reml"],
            zorder=4,
            label=f"{cmp.method} estimate",
        )
    axes[0].set_yticks(y, labels)
    axes[0].set_title("fixed effects")
    axes[1].set_title("SDs and correlations")
    axes[1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _label(row: dict) -> str:
    if row["group"] == "Residual":
        return "sigma (residual)"
    if is_sd(row):
        return f"sd({row['term1']} | {row['group']})"
    return f"cor({row['term1']}, {row['term2']} | {row['group']})"


def is_sd(row: dict) -> bool:
    return row_key(row)[2] is None


def plot_variance(cmp):
    """Posterior density of each SD with its prior and the REML estimate marked."""
    post = varcorr_draws(cmp.draws, cmp.design)
    prior = varcorr_draws(cmp.prior_draws, cmp.design) if cmp.prior_draws else {}
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
        ax.set_title(_label(row), fontsize=9)
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
