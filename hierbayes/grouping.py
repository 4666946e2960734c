"""Grouping factors: their levels, in a stable order, and an integer code per row.

Level order (documented, stable under row permutation):

- a pandas ``Categorical`` column keeps its category order (unused categories are dropped);
- a numeric or boolean column is sorted numerically; integral floats are labelled without ".0";
- anything else is sorted as strings in code-point order (R's C locale, as lme4's references use).

An interaction ``a:b`` has one level per combination that occurs, labelled ``"A:a"`` and ordered by
the first factor's order, then the second's. Labels are always strings, so two distinct values
that print alike (the int ``1`` and the str ``"1"`` in one column, categories ``1`` and ``"1"``,
or ``("x:y", "z")`` and ``("x", "y:z")`` in an interaction) would silently become one group: that
raises a `DesignError` naming them instead.

`near_misses` tells which unseen labels of new data differ from a fitted level only by
whitespace, letter case or zeros (``" 308"``, ``"0308"``, ``"308.0"`` for ``"308"``), so that
prediction can say so instead of silently treating them as new groups.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import DesignError


def factor_levels(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes 0..L-1 per row and the labels of the L levels that occur."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        used = column.cat.remove_unused_categories()
        labels = [str(c) for c in used.cat.categories]
        _check_distinct(column.name, list(used.cat.categories), labels)
        return used.cat.codes.to_numpy(np.int64), labels
    values = column.to_numpy()
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        uniques = np.unique(values)
        codes = np.searchsorted(uniques, values)
        return codes.astype(np.int64), [_number_label(v) for v in uniques]
    # Factorize first and sort only the distinct labels: sorting every row's string is the slow
    # part of building a large design.
    codes, uniques = pd.factorize(column, sort=False)
    labels = np.array([str(u) for u in uniques], dtype=object).astype(str)
    if len(set(labels)) < len(labels):
        _check_distinct(column.name, list(uniques), list(labels))
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int64), [str(u) for u in labels[order]]


def _check_distinct(name, values: list, labels: list[str]) -> None:
    """Distinct values must keep distinct labels (labels are what results and new data use)."""
    first: dict[str, object] = {}
    for value, label in zip(values, labels, strict=True):
        if label in first:
            other = first[label]
            raise DesignError(
                f"The grouping column {name!r} holds {other!r} ({type(other).__name__}) and "
                f"{value!r} ({type(value).__name__}): distinct values that both read {label!r}, "
                "so their groups could not be told apart in the results or in new data. Make the "
                f"column one type first, e.g. data[{name!r}].astype(str) if they are one group."
            )
        first[label] = value


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
    if len(set(labels)) < len(labels):
        pairs = [tuple(parts[j][1][k] for j, k in enumerate(row)) for row in combos]
        _check_distinct(":".join(factors), pairs, labels)
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


# Differences that make a label look new although it names a fitted group (see `near_misses`).
_ZEROS = re.compile(r"(?<![\d.])0+(?=\d)|(?<=\d)\.0+(?!\d)")


def _loose(label: str) -> str:
    """`label` without whitespace, case, leading zeros of numbers and trailing ".0"s."""
    return _ZEROS.sub("", "".join(str(label).split()).casefold())


def near_misses(unseen, levels) -> dict[str, list[str]]:
    """Unseen label -> the fitted levels it equals up to whitespace, case and zeros (only those
    with at least one such level)."""
    loose: dict[str, list[str]] = {}
    for level in levels:
        loose.setdefault(_loose(level), []).append(str(level))
    out = {}
    for label in unseen:
        if matches := loose.get(_loose(label)):
            out[str(label)] = matches
    return out
