"""Refuse to compare fits of different models: the comparison is a join, so both sides must share
one design (same response, rows, fixed terms, grouping factors and covariance structure)."""

from __future__ import annotations

import numpy as np

from ..design import Design
from ..errors import ModelMismatchError

_HINT = " Fit both from one formula with hb.compare_formula(formula, data, ...)."


def check_same_model(bayes: Design, reml: Design) -> None:
    if bayes.response != reml.response or bayes.family.name != reml.family.name:
        _fail(f"the response differs: {_model(bayes)} vs {_model(reml)}")
    if bayes.n_obs != reml.n_obs or not bayes.row_labels.equals(reml.row_labels):
        _fail(f"the data rows differ ({bayes.n_obs} vs {reml.n_obs} observations used)")
    if not (np.array_equal(bayes.y, reml.y) and _same_optional(bayes.trials, reml.trials)):
        _fail("the response values differ (same column name, different data)")
    if bayes.fixed_names != reml.fixed_names:
        _fail(f"the fixed effects differ: {list(bayes.fixed_names)} vs {list(reml.fixed_names)}")
    if not np.allclose(bayes.X, reml.X):
        _fail("the fixed-effect columns have the same names but different values")
    left, right = _structure(bayes), _structure(reml)
    if _groups(left) != _groups(right):
        _fail(f"the grouping factors differ: {_groups(left)} vs {_groups(right)}")
    if left != right:
        _fail(f"the covariance structure differs: {_blocks(left)} vs {_blocks(right)}")
    for a, b in zip(bayes.blocks, reml.blocks, strict=True):
        if a.levels != b.levels or not np.array_equal(a.index, b.index):
            _fail(f"the levels of {a.group!r} differ between the two fits")


def _fail(what: str) -> None:
    raise ModelMismatchError(f"Cannot compare these fits: {what}.{_HINT}")


def _model(design: Design) -> str:
    return f"{design.response!r} ({design.family.name})"


def _same_optional(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _structure(design: Design) -> list[tuple]:
    # Single-term blocks are the same whether written (1 | g) or (1 || g).
    return [(b.group, b.terms, b.correlated and b.n_terms > 1) for b in design.blocks]


def _groups(structure: list[tuple]) -> list[str]:
    return sorted({s[0] for s in structure})


def _blocks(structure: list[tuple]) -> str:
    bar = {True: "|", False: "||"}
    return ", ".join(f"({' + '.join(t)} {bar[c]} {g})" for g, t, c in structure)
