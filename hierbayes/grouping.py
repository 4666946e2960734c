"""Grouping factors: their levels, in a stable order, and an integer code per row.

Level order (documented, stable under row permutation):

- a pandas ``Categorical`` column keeps its category order (unused categories are dropped);
- a numeric or boolean column is sorted numerically; integral floats are labelled without ".0";
- anything else is sorted as strings in code-point order (R's C locale, as lme4's references use).

An interaction ``a:b`` has one level per combination that occurs, labelled ``"A:a"`` and ordered by
the first factor's order, then the second's. Labels are always strings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def factor_levels(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes 0..L-1 per row and the labels of the L levels that occur."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        used = column.cat.remove_unused_categories()
        return used.cat.codes.to_numpy(np.int64), [str(c) for c in used.cat.categories]
    values = column.to_numpy()
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        uniques = np.unique(values)
        codes = np.searchsorted(uniques, values)
        return codes.astype(np.int64), [_number_label(v) for v in uniques]
    # Factorize first and sort only the distinct labels: sorting every row's string is the slow
    # part of building a large design.
    codes, uniques = pd.factorize(column.astype(str), sort=False)
    labels = np.asarray(uniques, dtype=object).astype(str)
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int64), [str(u) for u in labels[order]]


def _number_label(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def group_codes(data: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of the grouping factor made of `factors` (one column or a combination)."""
    parts = [factor_levels(data[name]) for name in factors]
    if len(parts) == 1:
        return parts[0]
    codes = np.stack([c for c, _ in parts], axis=1)
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    labels = [":".join(parts[j][1][k] for j, k in enumerate(row)) for row in combos]
    return inverse.reshape(-1).astype(np.int64), labels


def labels_of(data: pd.DataFrame, factors: tuple[str, ...]) -> np.ndarray:
    """The level label of every row (for matching new data against known levels)."""
    columns = []
    for name in factors:
        column = data[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            columns.append(np.array([_number_label(v) for v in column.to_numpy()], dtype=object))
        else:
            columns.append(column.astype(str).to_numpy(dtype=object))
    out = columns[0]
    for more in columns[1:]:
        out = np.array([f"{a}:{b}" for a, b in zip(out, more, strict=True)], dtype=object)
    return out
