"""The tidy result shapes both fits share (see the API contract), so comparison is a join.

Every table says which interval it shows in ``frame.attrs["interval"]``, e.g. "95% Wald" or
"95% equal-tailed credible interval". hierbayes shows 95 % intervals on both sides by default so
that REML and posterior intervals are comparable (ArviZ's own default is 89 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CI_PROB = 0.95

FIXEF_COLUMNS = ["estimate", "std_error", "lower", "upper"]
VARCORR_COLUMNS = ["group", "term1", "term2", "estimate"]
RANEF_COLUMNS = ["group", "level", "term", "estimate", "std_error", "lower", "upper"]


def fixef_frame(names, estimate, std_error, lower, upper, interval: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"estimate": estimate, "std_error": std_error, "lower": lower, "upper": upper},
        index=pd.Index(list(names), name="term"),
    ).astype(float)
    frame.attrs["interval"] = interval
    return frame


def varcorr_frame(rows: list[dict], interval: str | None = None) -> pd.DataFrame:
    """`rows`: dicts with group, term1, term2 (None for an SD), estimate, and any extra columns."""
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in VARCORR_COLUMNS]
    frame = frame[VARCORR_COLUMNS + extra]
    frame["estimate"] = frame["estimate"].astype(float)
    if interval:
        frame.attrs["interval"] = interval
    return frame


def ranef_frame(
    group, level, term, estimate, std_error, lower, upper, interval: str
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "group": group,
            "level": level,
            "term": term,
            "estimate": np.asarray(estimate, float),
            "std_error": np.asarray(std_error, float),
            "lower": np.asarray(lower, float),
            "upper": np.asarray(upper, float),
        }
    )
    frame.attrs["interval"] = interval
    return frame
