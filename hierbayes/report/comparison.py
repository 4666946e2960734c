"""Report sections of a `Comparison`: verdicts, then the three side-by-side tables and the
reasons the two fits may differ."""

from __future__ import annotations

import pandas as pd

from .document import Bullets, Details, Section, Table, Text
from .format import interval_of, percent
from .sections import call_tidy, component_label

TOP = 10  # groups shown before the full (collapsed) table

FIXED_COLUMNS = ["term", "reml_estimate", "reml_std_error", "bayes_estimate", "bayes_std_error",
                 "bayes_lower", "bayes_upper", "std_diff", "agree"]
VARIANCE_COLUMNS = ["reml_estimate", "bayes_estimate", "bayes_median", "bayes_lower",
                    "bayes_upper", "reml_quantile", "singular", "agree"]
GROUP_COLUMNS = ["group", "level", "term", "n", "no_pool", "reml_estimate", "reml_std_error",
                 "bayes_estimate", "bayes_std_error", "bayes_lower", "bayes_upper",
                 "shrinkage_reml", "shrinkage_bayes", "std_diff", "agree"]


def intervals(cmp) -> str:
    """What bayes_lower/upper (and reml_lower/upper where shown) are."""
    bayes = interval_of(call_tidy(cmp.bayes.fixef, cmp.ci_prob),
                        f"{percent(cmp.ci_prob)} equal-tailed posterior interval")
    text = f"bayes_lower/upper: {bayes}"
    reml = interval_of(call_tidy(cmp.reml.fixef, cmp.ci_prob))
    return f"{text}; reml_lower/upper: {reml}" if reml else text


def comparison_sections(cmp) -> list[Section]:
    return [verdict_section(cmp), fixed_section(cmp), variance_section(cmp), groups_section(cmp)]


def verdict_section(cmp) -> Section:
    blocks = [Text(f"Posterior (NUTS) against the {cmp.method} fit of the same model. "
                   "std_diff = (posterior mean − REML estimate) / posterior SD; 'agree' means "
                   "|std_diff| < 0.5 (fixed and group effects) or the REML estimate inside the "
                   "posterior interval (variance components).", "note"),
              Bullets(tuple(cmp.verdict()))]
    reasons = cmp.reasons
    if reasons is not None and len(reasons):
        blocks.append(Table(reasons, caption="Why the two fits may differ here, detected from "
                            "the data and both fits."))
    return Section(f"Bayes vs {cmp.method}: verdict", tuple(blocks))


def _styles(frame: pd.DataFrame) -> tuple[str, ...]:
    if "agree" not in frame:
        return ()
    return tuple("" if bool(a) else "warn" for a in frame["agree"])


def _pick(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The documented columns in order; any others stay in the CSV/DataFrame."""
    return frame[[c for c in columns if c in frame.columns]]


def fixed_section(cmp) -> Section:
    shown = _pick(cmp.fixed, FIXED_COLUMNS)
    table = Table(shown, caption=f"Fixed effects, both fits. {intervals(cmp)}.",
                  row_styles=_styles(shown))
    return Section("Comparison: fixed effects", (table,))


def variance_section(cmp) -> Section:
    variance = cmp.variance
    shown = _pick(variance, VARIANCE_COLUMNS).copy()
    shown.insert(0, "component", [component_label(r) for r in variance.to_dict("records")])
    caption = (f"SDs and correlations, both fits; {intervals(cmp)}. reml_quantile: where the REML "
               "estimate falls in the posterior (0.5 = at its median).")
    return Section("Comparison: variance components",
                   (Table(shown, caption=caption, row_styles=_styles(shown)),))


def groups_section(cmp) -> Section:
    groups = _pick(cmp.groups, GROUP_COLUMNS)
    caption = (f"Deviations from the population value; shrinkage: 0 = no pooling, 1 = complete "
               f"pooling. {intervals(cmp)}.")
    order = groups["std_diff"].abs().sort_values(ascending=False).index
    worst = groups.loc[order].head(TOP)
    blocks = [Table(worst, caption=f"The {min(TOP, len(groups))} group effects where the fits "
                    f"differ most (largest |std_diff|). {caption}", row_styles=_styles(worst)),
              Details(f"Full comparison of group effects ({len(groups)} rows)",
                      (Table(groups, caption=caption, row_styles=_styles(groups)),))]
    return Section("Comparison: group effects", tuple(blocks))
