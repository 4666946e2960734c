"""The tidy result shapes both fits share (see the API contract), so comparison is a join.

Every table says which interval it shows in ``frame.attrs["interval"]``, e.g. "95% Wald" or
"95% equal-tailed credible interval". hierbayes shows 95 % intervals on both sides by default so
that REML and posterior intervals are comparable (ArviZ's own default is 89 %).
"""

from __future__ import annotations

import numbers
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .errors import HierbayesError

CI_PROB = 0.95


def check_ci_prob(ci_prob) -> float:
    """`ci_prob` as a float strictly between 0 and 1, or a `HierbayesError` saying so."""
    ok = isinstance(ci_prob, numbers.Real) and not isinstance(ci_prob, bool)
    if not ok or not 0 < float(ci_prob) < 1:
        raise HierbayesError(
            f"ci_prob must be a probability strictly between 0 and 1 (e.g. 0.95 for 95 % "
            f"intervals), got {ci_prob!r}."
        )
    return float(ci_prob)


@runtime_checkable
class Fit(Protocol):
    """What `BayesFit` and `RemlFit` both answer, so comparison and reports read either alike.

    `method` names how the fit was made: "NUTS" for the posterior, else "REML", "ML" or
    "Laplace"; `link` is the link function. The three tables take the same `ci_prob` and share
    the core columns of the API contract (see the module docstring).
    """

    design: object
    method: str
    link: str

    def fixef(self, ci_prob: float = CI_PROB) -> pd.DataFrame: ...

    def varcorr(self, ci_prob: float = CI_PROB) -> pd.DataFrame: ...

    def ranef(self, ci_prob: float = CI_PROB) -> pd.DataFrame: ...

    def summary(self): ...

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
