"""Report sections of one fit (Bayesian, or REML/ML/Laplace): model, sampling, fixed effects,
variance components, group effects. Everything shown comes from the fit's own tables, read through
the `hierbayes.tidy.Fit` protocol (``fixef/varcorr/ranef(ci_prob=...)``, ``method``, ``link``);
nothing is estimated here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .document import Code, Details, Section, Subheading, Table, Text
from .format import interval_caption, number, percent

TOP = 10  # group effects shown at each end before the full (collapsed) table


BAYES_METHOD = "NUTS"  # `fit.method` of a posterior; frequentist fits say REML, ML or Laplace


def is_bayes(fit) -> bool:
    return fit.method == BAYES_METHOD


def varcorr_table(fit, ci_prob: float) -> pd.DataFrame:
    """``fit.varcorr(ci_prob=ci_prob)``, the protocol's call (profile intervals on the REML side,
    credible intervals on the Bayesian side)."""
    return fit.varcorr(ci_prob=ci_prob)


def model_section(fit, description: str = "") -> Section:
    design = fit.design
    family = design.family.name
    link = fit.link
    blocks = [Text(description)] if description else []
    dropped = f" ({design.n_dropped} rows dropped for missing values)" if design.n_dropped else ""
    blocks += [
        Code(design.formula),
        Text(f"Family: {family}" + (f" (link: {link})" if link else "")
             + f"; response: {design.response}."),
        Subheading("Data"),
        Text(f"Observations: {design.n_obs}{dropped}; fixed effects: "
             f"{', '.join(design.fixed_names) or 'none'}."),
        Table(data_summary(design), caption="Grouping factors: number of levels and "
              "observations per level."),
    ]
    if is_bayes(fit):
        blocks += [Subheading("Priors"),
                   Table(fit.priors.to_frame(), caption="Priors used (source 'user' = set by the "
                         "caller, 'default' = hierbayes' data-scaled default).")]
    return Section("Model", tuple(blocks))


def data_summary(design) -> pd.DataFrame:
    rows = []
    for block in design.blocks:
        if any(r["group"] == block.group for r in rows):
            continue  # a factor with two blocks, e.g. (1 | g) + (0 + x | g): one row
        counts = np.asarray(block.counts)
        rows.append({
            "group": block.group, "levels": block.n_levels,
            "terms": ", ".join(block.terms),
            "min n": int(counts.min()), "median n": float(np.median(counts)),
            "max n": int(counts.max()), "levels with n = 1": int((counts == 1).sum()),
        })
    return pd.DataFrame(rows)


def sampling_section(fit, diagnostics: pd.DataFrame | None = None) -> Section:
    """How the posterior was sampled and its checks (`BayesFit.diagnostics()`, or the table a
    comparison kept), each failed check with its remedy."""
    posterior = fit.idata["posterior"]
    sizes = posterior.sizes
    library = posterior.attrs.get("inference_library", "")
    blocks = [Text(f"NUTS{f' ({library})' if library else ''}: {sizes.get('chain', '?')} chains "
                   f"× {sizes.get('draw', '?')} draws after tuning.")]
    table = fit.diagnostics() if diagnostics is None else diagnostics
    ok = table["ok"].astype(bool)
    shown = table.assign(verdict=np.where(ok, "pass", "FAIL"))
    shown = shown.drop(columns=[c for c in ("ok", "message") if c in shown])
    styles = tuple("ok" if v else "warn" for v in ok)
    blocks.append(Table(shown, caption="Checks of the sampler (Vehtari et al. 2021; "
                        "Betancourt 2017).", row_styles=styles))
    messages = [m for m in table.get("message", []) if isinstance(m, str) and m]
    if messages:
        blocks += [Text(m, "warn") for m in messages]
    else:
        blocks.append(Text("All sampler checks pass.", "ok"))
    return Section("Sampling diagnostics", tuple(blocks))


def criterion_label(fit) -> str:
    """What `RemlFit.criterion` is: −2 × the REML log-likelihood, else the deviance."""
    return "REML criterion" if fit.method == "REML" else "deviance"


def reml_section(fit) -> Section:
    """What lme4's summary header says: method, criterion, convergence, singularity."""
    method = fit.method
    blocks = [Text(f"{method} fit; {criterion_label(fit)} {number(fit.criterion)}.")]
    if not fit.converged:
        blocks.append(Text("The optimiser did not converge: treat the estimates with care.",
                           "warn"))
    if fit.singular:
        blocks.append(Text("Singular fit: a variance component is at the boundary (an SD of 0 or "
                           "a correlation of ±1).", "warn"))
    return Section(f"{method} fit", tuple(blocks))


def fixed_section(fit, ci_prob: float) -> Section:
    table = fit.fixef(ci_prob=ci_prob)
    kind = "posterior mean and SD" if is_bayes(fit) else "estimate and standard error"
    caption = f"estimate, std_error: {kind}; {interval_caption(table)}"
    return Section("Fixed effects", (Table(table, caption=caption, index=True),))


def variance_section(fit, ci_prob: float) -> Section:
    table = varcorr_table(fit, ci_prob)
    shown = table.copy()
    shown.insert(0, "component", [component_label(r) for r in table.to_dict("records")])
    shown = shown.drop(columns=["group", "term1", "term2"])
    kind = "posterior mean" if is_bayes(fit) else "point estimate"
    caption = f"estimate: {kind}; {interval_caption(table)}"
    return Section("Variance components and correlations", (Table(shown, caption=caption),))


def component_label(row: dict) -> str:
    """'SD(Days | Subject)', 'corr(Intercept, Days | Subject)' or 'Residual SD'."""
    group, term1, term2 = row["group"], row["term1"], row.get("term2")
    if group == "Residual":
        return "Residual SD"
    if term2 is None or (isinstance(term2, float) and np.isnan(term2)) or term2 == "":
        return f"SD({term1} | {group})"
    return f"corr({term1}, {term2} | {group})"


def groups_section(fit, ci_prob: float) -> Section:
    table = fit.ranef(ci_prob=ci_prob)
    caption = f"Deviations from the fixed effects. {interval_caption(table)}"
    blocks = []
    for (group, term), part in table.groupby(["group", "term"], sort=False):
        part = part.sort_values("estimate", ascending=False).drop(columns=["group", "term"])
        blocks.append(Subheading(f"{term} by {group}"))
        if len(part) <= 2 * TOP:
            blocks.append(Table(part, caption=f"All {len(part)} levels, highest first. {caption}"))
            continue
        ends = pd.concat([part.head(TOP), part.tail(TOP)])
        ends.insert(0, "rank", [*range(1, TOP + 1), *range(len(part) - TOP + 1, len(part) + 1)])
        blocks.append(Table(ends, caption=f"The {TOP} highest and {TOP} lowest of {len(part)} "
                            f"levels. {caption}"))
    blocks.append(Details(f"Full table of group effects ({len(table)} rows)",
                          (Table(table, caption=caption),)))
    return Section("Group effects", tuple(blocks))


def intervals_note(ci_prob: float, bayes: bool) -> Text:
    what = ("equal-tailed posterior intervals (ETI)" if bayes else
            "intervals as each table states")
    return Text(f"Intervals in this report are {percent(ci_prob)} {what} unless a table says "
                "otherwise; ArviZ's own default would be 89%.", "note")
