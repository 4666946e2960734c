"""Plots and reports of the studies (`agreement`, `sbc`): they format what the studies measured.

Reports are `hierbayes.report.Report` documents (one self-contained HTML file and a Markdown
version with PNG files), written atomically like every other report.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from ..report import Report
from ..report.document import Bullets, Code, Details, Document, Figure, Section, Table, Text, png_of

FLOOR = 1e-3  # |std_diff| below this is drawn at it (log axis)


def plot_agreement(study, classes=None, figsize=None):
    """One panel per quantity class: median |std_diff| of each subsample (points) and of each
    size (lines, one per rows-per-group), against the number of groups; the dashed line is the
    agreement threshold."""
    table = study.table
    present = [c for c in ("fixed effects", "SDs", "correlations", "group effects")
               if c in set(table["class"])]
    classes = present if classes is None else [c for c in classes if c in present]
    if not classes:
        raise ValueError("The study has no fitted subsample to plot (see study.fits).")
    fig, axes = plt.subplots(1, len(classes), figsize=figsize or (3.6 * len(classes), 3.4),
                             sharey=True, squeeze=False)
    per_rep = (table.assign(abs_diff=table["std_diff"].abs())
               .groupby(["class", "per_group", "n_groups", "rep"])["abs_diff"].median()
               .reset_index())
    cells = study.cells()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, cls in zip(axes[0], classes, strict=True):
        for k, (per_group, part) in enumerate(cells[cells["class"] == cls].groupby("per_group")):
            color = colors[k % len(colors)]
            dots = per_rep[(per_rep["class"] == cls) & (per_rep["per_group"] == per_group)]
            ax.scatter(dots["n_groups"], np.maximum(dots["abs_diff"], FLOOR), s=12, alpha=0.5,
                       color=color)
            ax.plot(part["n_groups"], np.maximum(part["median_abs_std_diff"], FLOOR), "o-",
                    color=color, label=f"{per_group} per group")
        ax.axhline(study.tol, ls="--", color="0.4", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        sizes = sorted(set(table["n_groups"]))
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_title(cls)
        ax.set_xlabel(f"groups ({study.group})")
    axes[0][0].set_ylabel("|Bayes − REML| in posterior SDs")
    axes[0][-1].legend(fontsize="small")
    fig.tight_layout()
    return fig


def agreement_report(study, path=None, title=None, description: str = "") -> Report:
    summary = study.summary()
    failed = study.fits[study.fits["error"].notna()]
    overview = [Code(study.formula), Text(
        f"{len(study.fits)} subsamples of {study.group}: every combination of "
        f"{sorted(set(study.fits['n_groups']))} groups × {sorted(set(study.fits['per_group']))} "
        f"rows per group, {study.settings.get('reps')} each; each fitted by REML and by NUTS. "
        f"std_diff = (posterior mean − REML) / posterior SD; {summary.attrs['rule']}.")]
    if description:
        overview.insert(0, Text(description))
    if len(failed):
        overview.append(Text(f"{len(failed)} subsample(s) could not be fitted: see the table "
                             "of fits.", "warn"))
    sections = [
        Section("The study", tuple(overview)),
        Section("Where they agree", (
            Table(summary, "Smallest number of groups from which each class agrees"),
            Figure("agreement", png_of(plot_agreement(study)),
                   "Median |std_diff| per subsample (dots) and per size (lines)"))),
        Section("Details", (
            Table(study.cells(), "Per class and size"),
            Details("Every subsample", (Table(study.fits, "Fits"),)))),
    ]
    document = Document(title or f"Bayes vs REML by data size: {study.formula}",
                        "hierbayes agreement study", tuple(sections))
    report = Report(document)
    return report.save(path) if path is not None else report


def plot_ranks(study, columns: int = 4, figsize=None):
    """One histogram of ranks per quantity, with the band where 99 % of the bin counts of
    uniform ranks fall (binomial quantiles)."""
    from scipy import stats

    ranks, bins = study.ranks, study.bins
    labels = list(ranks.columns)
    rows = int(np.ceil(len(labels) / columns))
    fig, axes = plt.subplots(rows, min(columns, len(labels)), squeeze=False,
                             figsize=figsize or (3.0 * min(columns, len(labels)), 2.3 * rows))
    edges = np.linspace(0, study.n_ranks, bins + 1)
    n = len(ranks)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
    for ax, label in zip(axes.ravel(), labels, strict=False):
        ax.axhspan(lo, hi, color="0.85")
        ax.axhline(n / bins, color="0.5", lw=1)
        ax.hist(ranks[label], bins=edges, color="#2b6cb0", alpha=0.8)
        p = study.uniformity.loc[label, "p_value"]
        ax.set_title(f"{label}\np = {p:.2g}", fontsize="small")
        ax.set_yticks([])
    for ax in axes.ravel()[len(labels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def sbc_report(study, path=None, title=None, description: str = "") -> Report:
    table = study.uniformity.reset_index()
    verdict = study.verdict()
    blocks = [Code(study.formula), Text(verdict, "ok" if study.calibrated else "warn"),
              Text(f"{len(study.ranks)} data sets drawn from the prior, each fitted by NUTS "
                   f"({study.settings.get('path')} path); rank of each true value among "
                   f"{study.n_ranks - 1} thinned posterior draws. Uniform ranks mean calibrated "
                   "inference; a chi-square test per quantity on "
                   f"{study.bins} bins, judged against 0.01 / number of quantities.")]
    if description:
        blocks.insert(0, Text(description))
    sections = [Section("Calibration", tuple(blocks)),
                Section("Uniformity", (Table(table, "Chi-square test of uniform ranks"),)),
                Section("Rank histograms", (Figure("ranks", png_of(plot_ranks(study)),
                                                   "Grey band: 99% of the bin counts of "
                                                   "uniform ranks"),)),
                Section("Fits", (Bullets(tuple(_fit_notes(study.fits))),
                                 Details("Every data set", (Table(study.fits, "Fits"),))))]
    document = Document(title or f"Simulation-based calibration: {study.formula}",
                        "hierbayes sbc", tuple(sections))
    report = Report(document)
    return report.save(path) if path is not None else report


def _fit_notes(fits: pd.DataFrame) -> list[str]:
    notes = [f"{len(fits)} fits, {int(fits['divergences'].sum())} divergent transitions in all"]
    bad = int((~fits["sampler_ok"].astype(bool)).sum())
    notes.append(f"{bad} fit(s) failed a sampler check" if bad else "every fit passed the "
                 "sampler checks")
    return notes
