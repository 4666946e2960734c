"""The tidy result shapes both fits share (the API contract), so comparison is a join.

`BayesFit` and `RemlFit` both satisfy the `Fit` protocol: `fixef(ci_prob)`, `varcorr(ci_prob)`
and `ranef(ci_prob)` take the same argument and return frames whose **core columns** have the
same names, order and dtypes on both sides (the frame builders below put them first):

| table | core columns (then each side's extras) |
|---|---|
| `fixef` | index `term`; `estimate`, `std_error`, `lower`, `upper` |
| `varcorr` | `group`, `term1`, `term2`, `estimate`, `std_error`, `lower`, `upper` |
| `ranef` | `group`, `level`, `term`, `estimate`, `std_error`, `lower`, `upper` |

`group`, `term1`, `term2`, `level` and `term` are strings (`term2` and, on the Residual row,
`term1` missing: NaN); the rest are floats. What they hold:

- Bayes (`hierbayes.bayes.posterior`): `estimate` the posterior mean, `std_error` the posterior
  SD, `lower`/`upper` the equal-tailed credible interval. Extras: `median` (all three tables),
  `block` (varcorr, ranef: the design block, `Block.name`).
- REML (`hierbayes.reml.tables`): `fixef` estimate, SE and Wald interval, extra `statistic`
  (estimate / SE: lme4's t or z value); `varcorr` the SD or correlation, its Hessian
  (delta-method) SE on that scale and the profile likelihood interval (lme4's
  confint(method = "profile")), extras `variance` (SD rows only), `covariance` (correlation rows
  only) and `block`; `ranef` the conditional mode, conditional SD and Wald interval, extra
  `block`.

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

FIXEF_COLUMNS = ["estimate", "std_error", "lower", "upper"]
VARCORR_COLUMNS = ["group", "term1", "term2", "estimate", "std_error", "lower", "upper"]
RANEF_COLUMNS = ["group", "level", "term", "estimate", "std_error", "lower", "upper"]
_LABELS = ["group", "term1", "term2", "level", "term"]


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
    the core columns (see the module docstring).
    """

    design: object
    method: str
    link: str

    def fixef(self, ci_prob: float = CI_PROB) -> pd.DataFrame: ...

    def varcorr(self, ci_prob: float = CI_PROB) -> pd.DataFrame: ...

    def ranef(self, ci_prob: float = CI_PROB) -> pd.DataFrame: ...

    def summary(self): ...


def _core_first(frame: pd.DataFrame, core: list[str], interval: str) -> pd.DataFrame:
    """The core columns first with their shared dtypes (labels str, numbers float)."""
    for column in core:
        if column not in frame:
            frame[column] = np.nan
    frame = frame[core + [c for c in frame.columns if c not in core]]
    for column in core:
        frame[column] = frame[column].astype("str" if column in _LABELS else float)
    frame.attrs["interval"] = interval
    return frame


def fixef_frame(names, estimate, std_error, lower, upper, interval: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"estimate": estimate, "std_error": std_error, "lower": lower, "upper": upper},
        index=pd.Index(list(names), name="term", dtype="str"),
    )
    return _core_first(frame, FIXEF_COLUMNS, interval)


def varcorr_frame(rows: list[dict], interval: str) -> pd.DataFrame:
    """`rows`: dicts with the core columns (term2 None on SD rows) and any extra columns."""
    return _core_first(pd.DataFrame(rows), VARCORR_COLUMNS, interval)


def ranef_frame(
    group, level, term, estimate, std_error, lower, upper, interval: str
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "group": np.asarray(group, object),
            "level": np.asarray(level, object),
            "term": np.asarray(term, object),
            "estimate": np.asarray(estimate, float),
            "std_error": np.asarray(std_error, float),
            "lower": np.asarray(lower, float),
            "upper": np.asarray(upper, float),
        }
    )
    return _core_first(frame, RANEF_COLUMNS, interval)
