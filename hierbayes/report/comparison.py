"""Report sections of a `Comparison`: verdicts, then the three side-by-side tables and the
reasons the two fits may differ. Every heading and caption names the frequentist method
(`Comparison.method`: REML, ML or Laplace); the ``reml_*`` columns keep the API's names."""

from __future__ import annotations

import pandas as pd

from .document import Bullets, Details, Section, Table, Text
from .format import interval_of, percent
from .sections import component_label

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
    bayes = interval_of(cmp.bayes.fixef(ci_prob=cmp.ci_prob),
                        f"{percent(cmp.ci_prob)} equal-tailed posterior interval")
    text = f"bayes_lower/upper: {bayes}"
    reml = interval_of(cmp.reml.fixef(ci_prob=cmp.ci_prob))
    return f"{text}; reml_lower/upper ({cmp.method}): {reml}" if reml else text


def comparison_sections(cmp) -> list[Section]:
    return [verdict_section(cmp), fixed_section(cmp), variance_section(cmp), groups_section(cmp)]


def verdict_section(cmp) -> Section:
    method = cmp.method
    blocks = [Text(f"Posterior (NUTS) against the {method} fit of the same model; the reml_* "
                   f"columns hold the {method} fit. std_diff = (posterior mean − {method} "
                   "estimate) / posterior SD; 'agree' means |std_diff| < 0.5 (fixed and group "
                   f"effects) or the {method} estimate inside the posterior interval (variance "
                   "components).", "note"),
              Bullets(tuple(cmp.verdict()))]
    reasons = cmp.reasons
    if reasons is not None and len(reasons):
        blocks.append(Table(reasons, caption="Why the two fits may differ here: each reason is "
                            "listed only where its measured quantity (in the detail) passes its "
                            "threshold."))
    return Section(f"Bayes vs {method}: verdict", tuple(blocks))


def _styles(frame: pd.DataFrame) -> tuple[str, ...]:
    if "agree" not in frame:
        return ()
    return tuple("" if bool(a) else "warn" for a in frame["agree"])


def _pick(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The documented columns in order; any others stay in the CSV/DataFrame."""
    return frame[[c for c in columns if c in frame.columns]]


def fixed_section(cmp) -> Section:
    shown = _pick(cmp.fixed, FIXED_COLUMNS)
    table = Table(shown, caption=f"Fixed effects: posterior and {cmp.method}. "
                  f"{intervals(cmp)}.", row_styles=_styles(shown))
    return Section(f"Fixed effects: Bayes vs {cmp.method}", (table,))


def variance_section(cmp) -> Section:
    variance = cmp.variance
    shown = _pick(variance, VARIANCE_COLUMNS).copy()
    shown.insert(0, "component", [component_label(r) for r in variance.to_dict("records")])
    caption = (f"SDs and correlations: posterior and {cmp.method}; {intervals(cmp)}. "
               f"reml_quantile: where the {cmp.method} estimate falls in the posterior (0.5 = at "
               "its median).")
    return Section(f"Variance components: Bayes vs {cmp.method}",
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
    return Section(f"Group effects: Bayes vs {cmp.method}", tuple(blocks))
