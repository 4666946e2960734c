"""Comparison plots (matplotlib). Each returns a Figure and never calls ``plt.show()``.

Every legend and title names the frequentist method (`cmp.method`: REML, ML or Laplace).
Densities of SDs are ArviZ's boundary-corrected KDE of the draws (`arviz_stats`' linear KDE
reflects its binned counts at the ends of the draws' range), so the plotted posterior keeps the
mass of the table's interval where the table puts it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from ..arguments import keywords_checked
from ..errors import HierbayesError
from ..naming import is_sd, row_key, row_name

COLORS = {"no_pool": "0.55", "reml": "tab:orange", "bayes": "tab:blue", "prior": "0.6"}
LABELLED = 3  # groups labelled at each end of the shrinkage plot


@keywords_checked
def plot_shrinkage(cmp, group: str | None = None, term: str | None = None):
    """Per group: no pooling → frequentist estimate → posterior mean (with its interval), against
    group size, with the population value; the groups with the highest and lowest posterior
    means are labelled. Small groups move further toward the population. When every group has
    the same size, groups are spread out in the order of their no-pooling estimates instead."""
    part = _select(cmp.groups, group, term).sort_values("no_pool")
    population = part["population_bayes"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    x = _group_axis(ax, part["n"].to_numpy(float))
    ax.vlines(x, population + part["no_pool"], population + part["bayes_estimate"], color="0.8",
              lw=0.8, zorder=1)
    ax.vlines(x, population + part["bayes_lower"], population + part["bayes_upper"],
              color=COLORS["bayes"], alpha=0.35, lw=1.2, zorder=2,
              label=f"posterior {cmp.ci_prob:.0%} interval")
    for col, key, label, marker in (
        ("no_pool", "no_pool", "no pooling", "o"),
        ("reml_estimate", "reml", cmp.method, "s"),
        ("bayes_estimate", "bayes", "posterior mean", "D"),
    ):
        ax.scatter(x, population + part[col], s=14, marker=marker, color=COLORS[key],
                   label=label, zorder=3)
    _label_extremes(ax, x, population + part["bayes_estimate"].to_numpy(), part["level"])
    ax.axhline(population, color="k", lw=1, ls="--", label="population value")
    term, group = part["term"].iloc[0], part["group"].iloc[0]
    ax.set_ylabel(f"{term} of each {group}")
    ax.set_title(f"Partial pooling of {term} by {group}: no pooling, {cmp.method} and posterior",
                 fontsize=10)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _group_axis(ax, n: np.ndarray) -> np.ndarray:
    """x positions: group size on a log axis with whole-number ticks, or the rank order when
    every group has the same size."""
    if np.ptp(n) == 0:
        ax.set_xlabel(f"groups in order of their own estimate (each has n = {int(n[0])})")
        return np.arange(len(n), dtype=float)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(_whole_number))
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.set_xlabel("observations in group (log scale)")
    # Spread groups of equal size a little so their points do not hide each other.
    return n * np.exp(np.random.default_rng(0).uniform(-0.08, 0.08, size=len(n)))


def _whole_number(value: float, _pos=None) -> str:
    return f"{value:.0f}" if value >= 1 and float(value).is_integer() else ""


def _label_extremes(ax, x, y, levels) -> None:
    order = np.argsort(y)
    chosen = order if len(y) <= 2 * LABELLED else np.r_[order[:LABELLED], order[-LABELLED:]]
    for i in chosen:
        ax.annotate(str(levels.iloc[i]), (x[i], y[i]), xytext=(4, 0),
                    textcoords="offset points", fontsize=7, va="center", color="0.25")


def _select(groups, group, term):
    names = list(dict.fromkeys(groups["group"]))
    group = names[0] if group is None else group
    if group not in names:
        raise HierbayesError(f"plot_shrinkage: no grouping factor {group!r}; valid: "
                             f"{', '.join(map(repr, names))}.")
    part = groups[groups["group"] == group]
    terms = list(dict.fromkeys(part["term"]))
    term = terms[0] if term is None else term
    if term not in terms:
        raise HierbayesError(f"plot_shrinkage: no term {term!r} varies over {group!r}; valid "
                             f"terms: {', '.join(map(repr, terms))}.")
    return part[part["term"] == term]


CLASSES = ("fixed effects", "standard deviations", "correlations")


@keywords_checked
def plot_forest(cmp):
    """Posterior intervals and the frequentist estimates, one panel per class of parameter
    (fixed effects, SDs, correlations) with one shared axis each, so that interval widths
    compare within a class."""
    rows = {c: [] for c in CLASSES}
    for r in cmp.fixed.to_dict("records"):
        rows["fixed effects"].append((r["term"], r["bayes_lower"], r["bayes_estimate"],
                                      r["bayes_upper"], r["reml_estimate"]))
    for r in cmp.variance.to_dict("records"):
        kind = "standard deviations" if is_sd(r) else "correlations"
        rows[kind].append((row_name(r), r["bayes_lower"], r["bayes_median"], r["bayes_upper"],
                           r["reml_estimate"]))
    rows = {k: v for k, v in rows.items() if v}
    heights = [len(v) + 1.2 for v in rows.values()]
    fig, axes = plt.subplots(len(rows), 1, figsize=(7.5, 0.42 * sum(heights) + 1.0),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (kind, items) in zip(axes[:, 0], rows.items(), strict=True):
        _forest_panel(ax, kind, items, cmp.method)
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0, 1.12), ncol=3, fontsize=8,
                      frameon=False)
    fig.suptitle(f"Posterior {cmp.ci_prob:.0%} interval and mean (median for SDs and "
                 f"correlations) against {cmp.method}", fontsize=9)
    fig.tight_layout()
    return fig


def _forest_panel(ax, kind: str, items: list, method: str) -> None:
    y = np.arange(len(items))[::-1]
    labels, lo, mid, hi, reml = (list(v) for v in zip(*items, strict=True))
    ax.hlines(y, lo, hi, color=COLORS["bayes"], lw=3, label="posterior interval")
    ax.scatter(mid, y, color=COLORS["bayes"], zorder=3, s=25, label="posterior")
    ax.scatter(reml, y, marker="x", s=60, color=COLORS["reml"], zorder=4, label=method)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(items) - 0.3)
    if kind == "correlations":
        ax.set_xlim(-1.05, 1.05)
        ax.axvline(0, color="0.85", lw=0.8, zorder=0)
    ax.set_title(kind, fontsize=9, loc="left")
    ax.tick_params(axis="x", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)


@keywords_checked
def plot_variance(cmp):
    """Posterior density of each SD (ArviZ's boundary-corrected KDE) with its prior, its
    posterior interval as in the table, and the frequentist estimate."""
    post = cmp.component_draws()
    prior = cmp.component_draws(prior=True)
    rows = [r for r in cmp.variance.to_dict("records") if is_sd(r)]
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.2), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        key = row_key(row)
        grid, pdf = sd_density(post[key])
        ax.plot(grid, pdf, color=COLORS["bayes"], label="posterior")
        ax.axvspan(row["bayes_lower"], row["bayes_upper"], color=COLORS["bayes"], alpha=0.12,
                   lw=0, label=f"{cmp.ci_prob:.0%} interval")
        if key in prior:
            ax.plot(*sd_density(prior[key]), color=COLORS["prior"], ls="--", label="prior")
        ax.axvline(row["reml_estimate"], color=COLORS["reml"], label=cmp.method)
        right = max(np.quantile(post[key], 0.995) * 1.3, row["reml_estimate"] * 1.2, 1e-9)
        ax.set_xlim(0, right)
        ax.set_title(row_name(row), fontsize=9)
        ax.set_yticks([])
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def sd_density(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grid, density) of draws of an SD: ArviZ's linear KDE with its boundary correction and
    default ("experimental") bandwidth, on the draws' own range."""
    from arviz_stats.base import array_stats

    sample = np.asarray(sample, float)
    sample = sample[np.isfinite(sample)]
    if sample.size < 2 or np.ptp(sample) == 0:
        return np.array([]), np.array([])
    grid, pdf, _ = array_stats.kde(sample, bound_correction=True)
    return grid, pdf
