"""What a failed sampler check means for everything downstream, in one sentence.

A posterior that failed R-hat, ESS, divergence or BFMI checks is not a posterior one can compare
or summarise, so the verdict of a comparison and the header of every report lead with this
sentence when a check failed (and say nothing when all pass). The remedies change how the same
model is sampled, never the model: a stronger prior would hide a sampler problem by changing the
question.
"""

from __future__ import annotations

import pandas as pd

from .format import number

REMEDY = (
    "run longer (more tune and draws, e.g. tune=2000, draws=2000), raise target_accept (e.g. "
    "0.95 or 0.99), or reparameterise (marginalize=True for a Gaussian model; centre and scale "
    "the predictors of varying slopes)"
)


def failed(diagnostics: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of a diagnostics table (`BayesFit.diagnostics()`) whose check failed."""
    if diagnostics is None or "ok" not in diagnostics or diagnostics.empty:
        return pd.DataFrame(columns=["check", "value", "where"])
    return diagnostics.loc[~diagnostics["ok"].astype(bool)]


def sampler_alert(diagnostics: pd.DataFrame | None, what: str = "comparison") -> str:
    """The leading warning when a check failed ("" when all pass): which checks, where, and
    what to do before reading `what` (the comparison, the estimates)."""
    bad = failed(diagnostics)
    if bad.empty:
        return ""
    items = []
    for row in bad.to_dict("records"):
        where = f" at {row['where']}" if row.get("where") else ""
        items.append(f"{row['check']} {number(row.get('value'))}{where}")
    return (f"Sampler checks FAILED ({'; '.join(items)}): do not read the {what} until the "
            f"sampling is fixed — {REMEDY}. Each check's own remedy is in the sampling "
            "diagnostics.")
