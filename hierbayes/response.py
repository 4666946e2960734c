"""The response: evaluate the left-hand side and check it suits the family."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic.errors import FormulaicError

from .errors import DesignError, FamilyError, FormulaError
from .expressions import model_matrix, plain
from .families import Family
from .formula import ParsedFormula, Response
from .validation import response_piece


@dataclass(frozen=True, eq=False)
class ResponseData:
    name: str  # how results name the response, e.g. "Reaction" or "incidence"
    y: np.ndarray  # the response; for binomial, the successes
    trials: np.ndarray | None  # binomial only: successes + failures


def evaluate_expression(expr: str, frame: pd.DataFrame, formula: str) -> pd.Series:
    """One response expression on `frame` (a column by name, else through the allow-list)."""
    if expr in frame.columns:
        return frame[expr]
    try:
        with np.errstate(all="ignore"):
            mm = model_matrix(response_piece(expr), frame, formula)
    except FormulaicError as err:
        raise FormulaError(
            f"In {formula!r}, the response {expr!r} cannot be evaluated: {plain(err)}"
        ) from None
    return mm.iloc[:, 0]


def build_response(
    response: Response, frame: pd.DataFrame, family: Family, formula: str
) -> ResponseData:
    values = [evaluate_expression(e, frame, formula) for e in response.exprs]
    if response.kind == "cbind":
        if family.response != "binomial":
            raise FamilyError(
                f"cbind({', '.join(response.exprs)}) is a binomial response; use "
                f"family='binomial' (got {family.name!r})."
            )
        successes = _counts(values[0], response.exprs[0], "successes")
        failures = _counts(values[1], response.exprs[1], "failures")
        return ResponseData(response.exprs[0], successes, successes + failures)
    expr, column = response.exprs[0], values[0]
    if family.response == "binomial":
        raise FamilyError(
            f"The binomial family needs the response written as cbind(successes, failures), "
            f"got {expr!r}. For a 0/1 response use family='bernoulli'."
        )
    if family.response == "binary":
        return ResponseData(expr, _binary(column, expr), None)
    if family.response == "count":
        return ResponseData(expr, _counts(column, expr, "counts"), None)
    y = _real(column, expr, family)
    if family.response == "positive" and np.any(y <= 0):
        raise DesignError(
            f"The {family.name} family needs a positive response; {expr!r} has "
            f"{int(np.sum(y <= 0))} value(s) <= 0 (e.g. {y[y <= 0][0]!r}). Drop or shift them."
        )
    return ResponseData(expr, y, None)


def _numeric(column: pd.Series, expr: str, family_hint: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=float)
    if pd.api.types.is_complex_dtype(column):
        raise DesignError(
            f"The response {expr!r} holds complex numbers; a response must be real. Model its "
            "real part, modulus or angle (np.real, np.abs, np.angle) as a column of its own."
        )
    if not pd.api.types.is_numeric_dtype(column):
        example = column.iloc[0] if len(column) else None
        raise DesignError(
            f"The response {expr!r} is not numeric (dtype {column.dtype}, e.g. {example!r}). "
            f"{family_hint}"
        )
    values = column.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise DesignError(
            f"The response {expr!r} has {int((~np.isfinite(values)).sum())} non-finite value(s); "
            "remove or transform those rows."
        )
    return values


def _real(column: pd.Series, expr: str, family: Family) -> np.ndarray:
    return _numeric(
        column,
        expr,
        f"The {family.name} family needs a numeric response: convert it with pd.to_numeric, or "
        "choose family='bernoulli' for a 0/1 outcome.",
    )


def _binary(column: pd.Series, expr: str) -> np.ndarray:
    values = _numeric(column, expr, "The bernoulli family needs 0/1 or True/False values.")
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        raise DesignError(
            f"The bernoulli response {expr!r} must be 0/1 or True/False; found "
            f"{values[bad][0]!r} ({int(bad.sum())} such values). For counts out of n use "
            "family='binomial' with cbind(successes, failures)."
        )
    return values


def _counts(column: pd.Series, expr: str, what: str) -> np.ndarray:
    values = _numeric(column, expr, f"The {what} must be non-negative whole numbers.")
    bad = (values < 0) | (values != np.round(values))
    if bad.any():
        raise DesignError(
            f"The {what} {expr!r} must be non-negative whole numbers; found {values[bad][0]!r} "
            f"({int(bad.sum())} such values)."
        )
    return values


def offsets(parsed: ParsedFormula, frame: pd.DataFrame) -> np.ndarray | None:
    """The sum of the formula's offset(...) expressions per row (None without any); each must
    be finite, and the message names the expression and the first bad row."""
    if not parsed.offsets:
        return None
    total = np.zeros(len(frame))
    for expr in parsed.offsets:
        values = pd.to_numeric(evaluate_expression(expr, frame, parsed.text), errors="coerce")
        values = np.asarray(values, dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise DesignError(
                f"offset({expr}) is not a finite number in {int(bad.sum())} row(s), the first "
                f"at {frame.index[np.flatnonzero(bad)[0]]!r}: an offset needs a finite value on "
                "every row (e.g. np.log of a positive exposure)."
            )
        total += values
    return total
