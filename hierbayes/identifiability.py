"""Models the data cannot identify, refused while the design is built (lme4's checks, and more).

- `check_levels`: lme4's ``checkNlevels`` and ``checkZdims``. Every grouping factor needs at least
  2 levels. A model with an estimated residual SD (gaussian, student_t) needs fewer levels than
  observations and, per bar, fewer group effects (levels × terms) than observations, or the group
  variance and the residual variance cannot be told apart; the other families (no residual
  variance: lme4's ``allow.n`` for glmer) and known residual SDs allow as many as observations,
  so an observation-level effect (grouseticks' ``(1 | INDEX)``, eight schools) stays possible.
  A grouping column of non-integer numbers with more levels than half the rows is a continuous
  variable used as a group. `check_nlevels` = "error" (default, as lme4's "stop"), "warning" or
  "ignore" applies to all but the 2-level rule.
- `check_exact_fit` (estimated residual SD only): a response the fixed effects reproduce exactly
  (a constant response, as many fixed-effect columns as rows) or that is constant within every
  level of a grouping factor with varying intercepts (the response used as the group) leaves a
  residual SD of exactly 0, which the likelihood cannot reach.

Spec layer: no PyMC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arguments import check_choice
from .errors import DesignError
from .validation import data_warning

NLEVELS_CHOICES = ("error", "warning", "ignore")
EXACT_RTOL = 1e-11  # a residual below this fraction of |y| is a rounding error of an exact fit


def check_levels(term, levels: list[str], column: pd.Series | None, n_obs: int, n_terms: int,
                 residual_estimated: bool, check_nlevels: str = "error") -> None:
    """lme4's rules on the number of levels of one bar (see the module docstring)."""
    if len(levels) < 2:
        raise DesignError(
            f"The grouping factor {term.group!r} of {term.source!r} has {len(levels)} level "
            f"({', '.join(map(repr, levels))}); a group-level term needs at least 2 levels. "
            "Remove the term or check the column."
        )
    if check_choice(check_nlevels, "check_nlevels", NLEVELS_CHOICES) == "ignore":
        return
    for problem in _level_problems(term, len(levels), column, n_obs, n_terms,
                                   residual_estimated):
        message = (f"{problem} Pass check_nlevels='warning' (or 'ignore') to fit it anyway.")
        if check_nlevels == "error":
            raise DesignError(message)
        data_warning(message)


def _level_problems(term, n_levels, column, n_obs, n_terms, residual_estimated) -> list[str]:
    out = []
    where = f"The grouping factor {term.group!r} of {term.source!r}"
    versus = "the residual variance" if residual_estimated else "the data"
    if n_levels > n_obs or (residual_estimated and n_levels == n_obs):
        relation = "fewer" if residual_estimated else "no more"
        out.append(
            f"{where} has {n_levels} levels for {n_obs} observations: its variance cannot be "
            f"told apart from {versus} (lme4's check.nobs.vs.nlev: {relation} levels than "
            "observations). Remove the term, or group by a coarser factor."
        )
    elif n_levels * n_terms > n_obs or (residual_estimated and n_levels * n_terms == n_obs):
        out.append(
            f"{term.source!r} has {n_levels * n_terms} group effects ({n_levels} levels × "
            f"{n_terms} terms) for {n_obs} observations: they cannot be told apart from "
            f"{versus} (lme4's check.nobs.vs.nRE). Drop a varying term, e.g. '(1 | "
            f"{term.group})', or use a coarser grouping factor."
        )
    if column is not None and _continuous(column) and n_levels > n_obs / 2:
        example = float(column[column != np.round(column)].iloc[0])
        out.append(
            f"{where} is a column of non-integer numbers (e.g. {example:.6g}) with {n_levels} "
            f"distinct values in {n_obs} rows: a continuous variable, not a grouping factor. "
            f"Use it as a predictor ('y ~ {term.group} + ...'), or group by a categorical column."
        )
    return out


def _continuous(column: pd.Series) -> bool:
    if not pd.api.types.is_float_dtype(column):
        return False
    values = column.to_numpy(dtype=float)
    return bool(np.any(values != np.round(values)))


def check_fixed_count(n_fixed: int, n_obs: int, fixed_names) -> None:
    """A residual SD needs more rows than fixed-effect columns (REML divides by n − p)."""
    if n_fixed >= n_obs:
        raise DesignError(
            f"The model has {n_fixed} fixed-effect columns ({', '.join(fixed_names)}) for "
            f"{n_obs} observations: they fit the response exactly and leave nothing to estimate "
            "the residual SD from (REML divides by n − p = "
            f"{n_obs - n_fixed}). Use fewer predictors or more data."
        )


def check_exact_fit(response: str, y: np.ndarray, X: np.ndarray, blocks) -> None:
    """Refuse a response the model reproduces exactly (see the module docstring)."""
    scale = np.max(np.abs(y))
    if scale == 0 or np.all(y == y[0]):
        raise constant_response_error(response, y[0])
    u = y / scale  # unit scale: the squares below neither overflow nor underflow
    Xu = _unit_columns(X)
    if _residual(u, Xu) <= EXACT_RTOL * np.linalg.norm(u):
        raise fixed_exact_error(response)
    for block in blocks:
        if not _has_intercept(block.Z):
            continue
        within = _within(u, block.index, block.n_levels)
        rest = _residual(within, _within(Xu, block.index, block.n_levels))
        if rest <= EXACT_RTOL * np.linalg.norm(u):
            raise within_exact_error(response, block, float(np.linalg.norm(within)),
                                     float(np.linalg.norm(u)), len(within))


def constant_response_error(response: str, value: float) -> DesignError:
    return DesignError(
        f"The response {response!r} is constant (every value is {value:.6g}): there is nothing "
        "to model and the residual SD would be 0. Check the column."
    )


def fixed_exact_error(response: str) -> DesignError:
    return DesignError(
        f"The fixed effects reproduce the response {response!r} exactly (a residual of 0): "
        "the residual SD cannot be estimated. A predictor is probably a copy or a linear "
        "function of the response; remove it."
    )


def within_exact_error(response: str, block, within: float, size: float, n_rows: int,
                       rtol: float = EXACT_RTOL) -> DesignError:
    """`within`: the norm of the response minus its level means; `size`: the response's norm."""
    return DesignError(_within_message(response, block, within <= rtol * size, n_rows))


def _within_message(response: str, block, constant: bool, n_rows: int) -> str:
    if constant:
        return (
            f"The response {response!r} is constant within every level of {block.group!r} "
            f"(each of its {block.n_levels} groups has a single value), so the group effects "
            f"of {block.source!r} fit it exactly and the residual SD would be 0. Model the group "
            f"means without the bar (e.g. one row per {block.group}), or check the column."
        )
    return (
        f"The fixed effects and the group intercepts of {block.source!r} reproduce the response "
        f"{response!r} exactly (a residual of 0; {block.group!r} has {block.n_levels} levels for "
        f"{n_rows} rows): the residual SD cannot be estimated. Group by a coarser factor, "
        "or check whether the response is computed from the predictors."
    )


def _unit_columns(X: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(X), axis=0) if X.size else np.ones(X.shape[1])
    return X / np.where(peak > 0, peak, 1.0)


def _residual(v: np.ndarray, X: np.ndarray) -> float:
    if X.shape[1] == 0:
        return float(np.linalg.norm(v))
    coef = np.linalg.lstsq(X, v, rcond=None)[0]
    return float(np.linalg.norm(v - X @ coef))


def _has_intercept(Z: np.ndarray) -> bool:
    return bool(np.any(np.all(Z[:1] == Z, axis=0) & (Z[0] != 0)))


def _within(values: np.ndarray, index: np.ndarray, n_levels: int) -> np.ndarray:
    """`values` minus their level means (columns separately)."""
    counts = np.bincount(index, minlength=n_levels)
    if values.ndim == 1:
        return values - (np.bincount(index, weights=values, minlength=n_levels) / counts)[index]
    out = np.empty_like(values)
    for j in range(values.shape[1]):
        out[:, j] = _within(values[:, j], index, n_levels)
    return out
