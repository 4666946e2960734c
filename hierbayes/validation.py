"""Checks on user data, done once while the design is built; each failure names its column."""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataWarning, DesignError, FormulaError
from .expressions import checked_columns
from .formula import ParsedFormula

_PACKAGE = str(Path(__file__).resolve().parent)


def data_warning(message: str) -> None:
    """A `DataWarning` attributed to the caller's own line (the first frame outside hierbayes),
    however deep in the package it is raised."""
    warnings.warn(message, DataWarning, skip_file_prefixes=(_PACKAGE,))


def response_piece(expr: str) -> str:
    """The formulaic formula that evaluates one response expression (``cbind`` argument)."""
    return f"0 + I({expr})"


def string_columns(data: pd.DataFrame) -> pd.DataFrame:
    """`data` with every column name as a string (formulas name columns by strings: an int
    column 0 is `0` in a formula). A new frame object; the caller's frame is untouched."""
    if all(isinstance(c, str) for c in data.columns):
        return data
    names = [str(c) for c in data.columns]
    seen: dict[str, object] = {}
    for original, name in zip(data.columns, names, strict=True):
        if name in seen:
            raise DesignError(
                f"The data frame has columns {seen[name]!r} and {original!r}, which formulas "
                f"both name {name!r}; rename one of them."
            )
        seen[name] = original
    return data.set_axis(names, axis=1)


def predictor_names(parsed: ParsedFormula) -> set[str]:
    """The columns read as numbers or categories right of '~' (not the grouping factors)."""
    names = set(checked_columns(parsed.fixed, parsed.text))
    for term in parsed.random:
        names |= checked_columns(term.expr, parsed.text)
    return names


def check_column_types(frame: pd.DataFrame, names) -> None:
    """Predictors must be numbers, booleans or categories: dates, durations and complex numbers
    have no place in a model matrix (numpy would fail deep inside, or drop the imaginary part)."""
    for name in frame.columns:
        if name not in names:
            continue
        dtype = frame[name].dtype
        if pd.api.types.is_complex_dtype(dtype):
            raise DesignError(
                f"Column {name!r} holds complex numbers; a predictor must be real. Use its real "
                "part, modulus or angle as a column of its own (np.real, np.abs, np.angle)."
            )
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(
                dtype) or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype):
            raise DesignError(
                f"Column {name!r} holds dates or times ({dtype}), which a formula cannot use as "
                f"a number. Convert it first, e.g. days since the start: "
                f"(data[{name!r}] - data[{name!r}].min()).dt.days, or a category: "
                f"data[{name!r}].astype(str)."
            )


def check_new_types(training: pd.DataFrame, new: pd.DataFrame) -> None:
    """New data must hold a column of the kind it was fitted with: True/False where numbers were
    fitted would silently be read as 0/1."""
    for name in new.columns:
        if name not in training.columns:
            continue
        was, now = training[name], new[name]
        numeric = pd.api.types.is_numeric_dtype(was) and not pd.api.types.is_bool_dtype(was)
        if numeric and pd.api.types.is_bool_dtype(now):
            raise DesignError(
                f"New data: column {name!r} is True/False, but the model was fitted with numbers "
                f"there ({was.dtype}, e.g. {was.iloc[0]!r}). Pass the numbers; if 0/1 is meant, "
                f"convert explicitly: new_data[{name!r}].astype(int)."
            )


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
    for term in parsed.random:
        if response in term.factors:
            raise FormulaError(
                f"In {parsed.text!r}, the response {response!r} is also the grouping factor of "
                f"{term.source!r}: each group's effect would equal its response exactly. Group "
                "by another column."
            )


def drop_missing(frame: pd.DataFrame, missing: str) -> tuple[pd.DataFrame, int]:
    """Drop rows with a missing value in any used column (or raise, with missing='raise')."""
    check_missing_choice(missing)
    isna = frame.isna()
    bad = isna.any(axis=1).to_numpy()
    if not bad.any():
        return frame, 0
    report_missing(int(bad.sum()), len(frame), isna.sum(), missing)
    return frame.loc[~bad], int(bad.sum())


def check_missing_choice(missing: str) -> None:
    if missing not in ("drop", "raise"):
        raise DesignError(f"missing must be 'drop' or 'raise', got {missing!r}.")


def report_missing(n_bad: int, n_rows: int, counts: pd.Series, missing: str) -> None:
    """The error (missing='raise', or every row missing) or warning for `n_bad` of `n_rows` rows
    with a missing value; `counts`: missing values per column. Shared by pandas and Dask data."""
    where = ", ".join(f"{c!r} ({n})" for c, n in counts.items() if n)
    if missing == "raise":
        raise DesignError(
            f"{n_bad} of {n_rows} rows have missing values in column(s) {where}. "
            "Drop or impute them, or pass missing='drop' to drop those rows."
        )
    if n_bad == n_rows:
        raise DesignError(
            f"Every row has a missing value in column(s) {where}; nothing is left to fit."
        )
    data_warning(
        f"Dropped {n_bad} of {n_rows} rows with missing values in column(s) {where}. "
        "Pass missing='raise' to make this an error."
    )


def check_finite(frame: pd.DataFrame) -> None:
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column) or pd.api.types.is_complex_dtype(column):
            inf = np.isinf(column.to_numpy())
            if inf.any():
                raise infinite_error(name, int(inf.sum()), frame.index[np.argmax(inf)])


def infinite_error(name: str, count: int, first) -> DesignError:
    return DesignError(
        f"Column {name!r} has {count} infinite value(s) (first at row {first!r}). Remove those "
        "rows or replace the values before fitting."
    )


def check_matrix_finite(matrix: np.ndarray, names: list[str], what: str) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        raise nonfinite_error(names[j], int(bad[:, j].sum()), what)


def nonfinite_error(name: str, count: int, what: str) -> DesignError:
    return DesignError(
        f"The {what} column {name!r} has {count} non-finite value(s) (NaN or infinity), e.g. "
        "from the log of a value <= 0. Transform or filter the data."
    )


def independent_columns(X: np.ndarray, names: list[str]) -> list[int]:
    """Indices of the columns to keep: each dropped one lies in the span of the earlier ones.

    Unpivoted Householder QR gives |R_jj| = distance of column j from the span of columns before it,
    so dependent columns are the later ones, as lme4 drops them.
    """
    if X.shape[1] == 0:
        return []
    # Each column at unit peak first: the decision is scale-free, and a column of 1e155 would
    # otherwise overflow the norms and be dropped as if it were 0.
    peak = np.max(np.abs(X), axis=0) if X.shape[0] else np.zeros(X.shape[1])
    X = X / np.where(peak > 0, peak, 1.0)
    r = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    diag = np.zeros(X.shape[1])
    diag[: min(r.shape)] = np.abs(np.diag(r))
    keep = [j for j in range(X.shape[1]) if norms[j] > 0 and diag[j] > RANK_TOL * norms[j]]
    warn_dropped(names, keep)
    return keep


RANK_TOL = 1e-7  # a column this close (relative) to the span of the earlier ones is dependent


def warn_dropped(names: list[str], keep: list[int]) -> None:
    dropped = [names[j] for j in range(len(names)) if j not in keep]
    if dropped:
        data_warning(
            f"The fixed-effect model matrix is rank deficient: dropping {len(dropped)} column(s) "
            f"{', '.join(map(repr, dropped))} that are linear combinations of earlier columns "
            "(as lme4 does). Remove them from the formula to silence this."
        )


BAYES_MAGNITUDE = 1e150  # squares of larger (or 1/squares of smaller) values leave float64


def check_magnitudes(design, limit: float = BAYES_MAGNITUDE, engine: str = "The Bayesian model"
                     ) -> None:
    """Refuse columns whose RMS lies outside [1/limit, limit]: the default priors (SDs of the
    data) and the log densities square them, and a square beyond float64 turns a prior scale
    into inf or 0 without a word. `fit_reml` rescales such columns itself."""
    columns = [(f"the response {design.response!r}", design.y)] if (
        design.family.response == "real") else []
    columns += [(f"the fixed-effect column {name!r}", design.X[:, j])
                for j, name in enumerate(design.fixed_names)]
    columns += [(f"the column {term!r} of {block.source!r}", block.Z[:, j])
                for block in design.blocks for j, term in enumerate(block.terms)]
    if design.known_sigma is not None:
        columns.append((f"the known SDs {design.known_sigma_column!r}", design.known_sigma))
    for what, values in columns:
        peak = float(np.max(np.abs(values))) if len(values) else 0.0
        if peak == 0:
            continue
        rms = peak * float(np.sqrt(np.mean((values / peak) ** 2)))
        if not 1 / limit <= rms <= limit:
            raise DesignError(
                f"{engine} cannot use {what}: its values are of magnitude {rms:.1e}, and the "
                f"priors and log densities square them, which float64 cannot hold beyond "
                f"{limit:.0e} (or below {1 / limit:.0e}). Rescale it (divide or multiply by a "
                "power of ten) and scale the estimates back; fit_reml rescales such columns "
                "itself."
            )
