"""How a fit shows itself: a compact notebook display (``_repr_html_``) and, for the posterior,
a text summary in the spirit of brms's ``summary()`` (lme4's is `RemlFit.summary()`).

Both show the formula, family, data and group sizes, the fixed effects with intervals, the
variance components and the fit's checks (sampler diagnostics, or the optimiser's convergence and
singularity). Numbers are rounded for reading only: each row keeps two significant digits of its
own standard error (at most 6 decimals), while ``fixef()`` & co. keep full precision.
Formats only; every number comes from the fit's own tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..tidy import CI_PROB
from . import html
from .checks import failed, sampler_alert
from .document import Code, Document, Section, Table, Text
from .format import number, percent
from .sections import component_label, criterion_label, is_bayes, varcorr_table

SE_DIGITS = 2  # significant digits kept of a table's typical standard error


class TextSummary(str):
    """A summary that reads as text both when printed and when a notebook echoes it."""

    def __repr__(self) -> str:
        return str(self)


def rounded(frame: pd.DataFrame, spread: str = "std_error") -> pd.DataFrame:
    """A copy of `frame` whose numeric values are rounded row by row to the decimals at which
    that row's `spread` (its uncertainty) keeps `SE_DIGITS` significant digits."""
    out = frame.copy()
    numeric = out.select_dtypes(include="number").columns
    spreads = out[spread] if spread in out else pd.Series(np.nan, index=out.index)
    for label, value in spreads.items():
        out.loc[label, numeric] = out.loc[label, numeric].astype(float).round(_decimals(value))
    return out


def _decimals(spread: float) -> int:
    if not (np.isfinite(spread) and spread > 0):
        return 4
    return int(min(max(SE_DIGITS - 1 - math.floor(math.log10(abs(spread))), 0), 6))


def fit_text(fit, ci_prob: float = CI_PROB) -> TextSummary:
    """The posterior's summary as text (brms-like): model, data, sampling, group-level and
    population-level effects, and the verdict of the sampler checks."""
    design, settings = fit.design, fit.settings
    lines = [f" Family: {design.family.name} (link: {fit.link})",
             f"Formula: {design.formula}",
             f"   Data: {_data_line(design)}",
             f"  Draws: {settings.get('chains')} chains × {settings.get('draws')} draws after "
             f"{settings.get('tune')} tuning (NUTS, {settings.get('sampler')}; seed "
             f"{settings.get('random_seed')}; {fit.sampling_path.split(' (')[0]} path)", ""]
    interval = f"{percent(ci_prob)} equal-tailed interval"
    vc = _varcorr_shown(fit, ci_prob).set_index("component")
    lines += [f"Group-level effects and residual SD (posterior mean, SD, {interval}):",
              _frame_text(vc), "",
              f"Population-level effects (posterior mean, SD, {interval}):",
              _frame_text(fit.fixef(ci_prob=ci_prob)[_CORE]), "",
              _checks_line(fit.diagnostics())]
    return TextSummary("\n".join(lines))


_CORE = ["estimate", "std_error", "lower", "upper"]


def _data_line(design) -> str:
    groups = "; ".join(f"{g}: {size}" for g, size in group_sizes(design).items())
    return f"{design.n_obs} observations" + (f"; {groups}" if groups else "")


def group_sizes(design) -> dict[str, str]:
    """Grouping factor -> "18 levels, 10 observations each" (or the range of sizes)."""
    out = {}
    for block in design.blocks:
        counts = np.asarray(block.counts)
        each = (f"{int(counts[0])} observations each" if np.ptp(counts) == 0 else
                f"{int(counts.min())} to {int(counts.max())} observations (median "
                f"{number(float(np.median(counts)))})")
        out.setdefault(block.group, f"{block.n_levels} levels, {each}")
    return out


def _varcorr_shown(fit, ci_prob: float) -> pd.DataFrame:
    """SD and correlation rows named in words, with the columns the fit reports (a frequentist
    fit without intervals has estimates only)."""
    table = varcorr_table(fit, ci_prob)
    shown = table[[c for c in _CORE if c in table]].copy()
    shown.insert(0, "component", [component_label(r) for r in table.to_dict("records")])
    return shown


def _frame_text(frame: pd.DataFrame, spread: str = "std_error") -> str:
    """`frame` as text, each row's numbers with that row's decimals (no padded zeros)."""
    numeric = frame.select_dtypes(include="number").columns
    text = frame.astype(object)
    for label, value in frame[spread].items():
        d = _decimals(value)
        text.loc[label, numeric] = [f"{v:.{d}f}" if np.isfinite(v) else ""
                                    for v in frame.loc[label, numeric].astype(float)]
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        return text.to_string()


def _checks_line(diagnostics: pd.DataFrame) -> str:
    alert = sampler_alert(diagnostics, "estimates")
    if alert:
        return alert
    values = diagnostics.set_index("check")["value"]
    parts = [f"{name} {number(values[name])}" for name in values.index if pd.notna(values[name])]
    return "Sampler checks: all pass (" + "; ".join(parts) + ")."


def fit_display_html(fit, ci_prob: float = CI_PROB) -> str:
    """The compact notebook display of a `BayesFit` or a `RemlFit`."""
    bayes = is_bayes(fit)
    design = fit.design
    head = [Code(design.formula),
            Text(f"Family: {design.family.name} (link: {fit.link}); {_data_line(design)}.")]
    fixef = fit.fixef(ci_prob=ci_prob)
    sections = [
        Section("Model", tuple(head)),
        Section("Fixed effects", (Table(rounded(fixef[_CORE]), index=True,
                                        caption=_interval(fixef)),)),
        Section("Variance components", (Table(rounded(_varcorr_shown(fit, ci_prob)),
                                              caption=_interval(varcorr_table(fit, ci_prob))),)),
        _checks_section(fit) if bayes else _reml_status(fit),
    ]
    kind = "Bayesian fit (NUTS)" if bayes else f"{fit.method} fit"
    alert = sampler_alert(fit.diagnostics(), "estimates") if bayes else ""
    document = Document(f"{kind} of {design.response}", "", tuple(sections), alert=alert)
    return html.fragment(document, compact=True)


def _interval(table: pd.DataFrame) -> str:
    interval = table.attrs.get("interval")
    return f"lower/upper: {interval}." if interval else "Point estimates."


def _checks_section(fit) -> Section:
    table = fit.diagnostics()
    ok = table["ok"].astype(bool)
    shown = table[["check", "value", "threshold", "where"]].assign(
        verdict=np.where(ok, "pass", "FAIL"))
    styles = tuple("ok" if v else "warn" for v in ok)
    verdict = (Text("All sampler checks pass.", "ok") if failed(table).empty else
               Text("Failed checks: see fit.diagnostics() for each remedy.", "warn"))
    return Section("Sampler checks", (Table(shown, row_styles=styles), verdict))


def _reml_status(fit) -> Section:
    blocks = [Text(f"{criterion_label(fit)} {number(fit.criterion)}; "
                   + ("converged" if fit.converged else "NOT converged") + "; "
                   + ("singular (a variance component at the boundary)" if fit.singular
                      else "not singular") + ".",
                   "ok" if fit.converged and not fit.singular else "warn")]
    return Section("Fit", tuple(blocks))
