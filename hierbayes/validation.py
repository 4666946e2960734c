"""Checks on user data, done once while the design is built; each failure names its column."""

from __future__ import annotations

import difflib
import warnings

import numpy as np
import pandas as pd

from .errors import DataWarning, DesignError, FormulaError
from .expressions import checked_columns
from .formula import ParsedFormula


def response_piece(expr: str) -> str:
    """The formulaic formula that evaluates one response expression (``cbind`` argument)."""
    return f"0 + I({expr})"


def formula_names(parsed: ParsedFormula, need_response: bool = True) -> set[str]:
    """The names every piece of the formula reads (response, fixed part, offsets, bars,
    grouping factors), each piece checked against the allow-list of `hierbayes.expressions`."""
    names: set[str] = set()
    if need_response:
        for expr in parsed.response.exprs:
            names |= checked_columns(response_piece(expr), parsed.text)
    names |= checked_columns(parsed.fixed, parsed.text)
    for expr in parsed.offsets:
        names |= checked_columns(response_piece(expr), parsed.text)
    for term in parsed.random:
        names |= checked_columns(term.expr, parsed.text)
        names |= set(term.factors)
    return names


def used_columns(
    parsed: ParsedFormula, data: pd.DataFrame, need_response: bool = True
) -> list[str]:
    """The data columns the formula uses, in the data's column order; unknown names rejected.

    Every piece of the formula is checked against the allow-list of `hierbayes.expressions`
    here, before anything evaluates it: make_design, Design.evaluate and hb.load all start here.
    """
    names = formula_names(parsed, need_response)
    _check_response_not_predictor(parsed, names if need_response else set())
    present = {str(c) for c in data.columns}
    missing = sorted(names - present)
    for name in missing:
        close = difflib.get_close_matches(name, list(present), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise DesignError(
            f"The formula uses column {name!r}, which is not in the data.{hint} "
            f"Available columns: {', '.join(map(repr, sorted(present)))}."
        )
    return [str(c) for c in data.columns if str(c) in names]


def _check_response_not_predictor(parsed: ParsedFormula, names: set[str]) -> None:
    if not names or parsed.response.kind != "single":
        return
    response = parsed.response.exprs[0]
    pieces = [parsed.fixed] + [term.expr for term in parsed.random]
    if any(response in checked_columns(piece, parsed.text) for piece in pieces):
        raise FormulaError(
            f"In {parsed.text!r}, the response {response!r} also appears as a predictor; "
            "remove it from the right of '~'."
        )


def drop_missing(frame: pd.DataFrame, missing: str) -> tuple[pd.DataFrame, int]:
    """Drop rows with a missing value in any used column (or raise, with missing='raise')."""
    if missing not in ("drop", "raise"):
        raise DesignError(f"missing must be 'drop' or 'raise', got {missing!r}.")
    isna = frame.isna()
    bad = isna.any(axis=1).to_numpy()
    if not bad.any():
        return frame, 0
    counts = isna.sum()
    where = ", ".join(f"{c!r} ({n})" for c, n in counts.items() if n)
    if missing == "raise":
        raise DesignError(
            f"{int(bad.sum())} of {len(frame)} rows have missing values in column(s) {where}. "
            "Drop or impute them, or pass missing='drop' to drop those rows."
        )
    if bad.all():
        raise DesignError(
            f"Every row has a missing value in column(s) {where}; nothing is left to fit."
        )
    warnings.warn(
        f"Dropped {int(bad.sum())} of {len(frame)} rows with missing values in column(s) {where}. "
        "Pass missing='raise' to make this an error.",
        DataWarning,
        stacklevel=4,
    )
    return frame.loc[~bad], int(bad.sum())


def check_finite(frame: pd.DataFrame) -> None:
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column) or pd.api.types.is_complex_dtype(column):
            inf = np.isinf(column.to_numpy())
            if inf.any():
                first = frame.index[np.argmax(inf)]
                raise DesignError(
                    f"Column {name!r} has {int(inf.sum())} infinite value(s) (first at row "
                    f"{first!r}). Remove those rows or replace the values before fitting."
                )


def check_matrix_finite(matrix: np.ndarray, names: list[str], what: str) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        raise DesignError(
            f"The {what} column {names[j]!r} has {int(bad[:, j].sum())} non-finite value(s) "
            "(NaN or infinity), e.g. from the log of a value <= 0. Transform or filter the data."
        )


def independent_columns(X: np.ndarray, names: list[str]) -> list[int]:
    """Indices of the columns to keep: each dropped one lies in the span of the earlier ones.

    Unpivoted Householder QR gives |R_jj| = distance of column j from the span of columns before it,
    so dependent columns are the later ones, as lme4 drops them.
    """
    if X.shape[1] == 0:
        return []
    r = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    diag = np.zeros(X.shape[1])
    diag[: min(r.shape)] = np.abs(np.diag(r))
    keep = [j for j in range(X.shape[1]) if norms[j] > 0 and diag[j] > 1e-7 * norms[j]]
    dropped = [names[j] for j in range(X.shape[1]) if j not in keep]
    if dropped:
        warnings.warn(
            f"The fixed-effect model matrix is rank deficient: dropping {len(dropped)} column(s) "
            f"{', '.join(map(repr, dropped))} that are linear combinations of earlier columns "
            "(as lme4 does). Remove them from the formula to silence this.",
            DataWarning,
            stacklevel=4,
        )
    return keep
