"""A `Design` from a Dask frame: two map-reduce passes (`scan`, `moments`), then the checks a
pandas frame gets, with the same errors, on what the passes found.

What this path refuses, and why (each with a message that says what to do instead):
non-Gaussian families (the Laplace and PIRLS fits re-weight every row at every step),
known residual SDs and offset(...) terms (not folded into the cross-products), and the
transforms that learn from the whole column (scale, center, standardize, poly, bs, cr, within,
between): formulaic would learn them from the sample rows only. Add such a column to the Dask
frame first (e.g. ``ddf.assign(x_c=ddf.x - ddf.x.mean())``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..arguments import check_choice
from ..design import Block, Design, _check_overlap, _fixed_matrix, _model_matrix
from ..errors import DesignError, FamilyError, FormulaError
from ..families import get_family
from ..formula import parse_formula
from ..grouping import group_codes
from ..identifiability import (
    NLEVELS_CHOICES,
    check_fixed_count,
    check_levels,
    constant_response_error,
    fixed_exact_error,
)
from ..response import build_response
from ..validation import (
    check_column_types,
    check_missing_choice,
    infinite_error,
    nonfinite_error,
    predictor_names,
    report_missing,
    string_columns,
    used_columns,
)
from .exact import check_within_exact
from .gram import independent_from_gram
from .moments import (
    BlockPlan,
    DesignMoments,
    LevelMap,
    PartitionPlan,
    partition_moments,
    sum_tree,
    with_categories,
)
from .rows import Rows
from .scan import combine, scan_partition

STATEFUL = ("scale", "center", "standardize", "poly", "bs", "cr", "within", "between")
EXACT_TOL = 1e-7  # relative residual norm of an exact fit, at the normal equations' precision


@dataclass(frozen=True, eq=False, repr=False)
class PartitionedBlock(Block):
    """A block whose rows stay in the Dask frame: counts and column sizes from the sums."""

    level_counts: np.ndarray | None = None  # (L,)
    rms: np.ndarray | None = None  # (k,)

    @property
    def counts(self) -> np.ndarray:
        return self.level_counts

    def column_rms(self) -> np.ndarray:
        return self.rms


def dask_design(formula: str, ddf, family="gaussian", missing: str = "drop",
                known_sigma: str | None = None, check_nlevels: str = "error") -> Design:
    """The design of `formula` on the Dask frame `ddf` (see the module docstring)."""
    parsed = parse_formula(formula)
    family = get_family(family)
    check_choice(check_nlevels, "check_nlevels", NLEVELS_CHOICES)
    _check_supported(parsed, family, known_sigma)
    check_missing_choice(missing)
    meta = _meta(ddf)
    columns = used_columns(parsed, meta)
    check_column_types(meta.loc[:, columns], predictor_names(parsed))
    factor_sets = tuple(dict.fromkeys(term.factors for term in parsed.random))
    categorical = _categorical(parsed, columns, meta)
    scan = _run(ddf, lambda part: scan_partition(part, columns, factor_sets, categorical), combine)
    n = _checked_rows(scan, missing, columns)
    categories = _categories(scan, meta, categorical)
    sample = with_categories(scan.sample, categories)
    response = build_response(parsed.response, sample, family, formula)
    shift = float(np.mean(response.y))
    _, fixed_spec = _fixed_matrix(parsed, sample)
    plans, levels = _block_plans(parsed, sample, scan, n, check_nlevels)
    plan = PartitionPlan(formula, parsed, family, tuple(columns), fixed_spec, plans, shift,
                         categories)
    sums = _run(ddf, lambda part: partition_moments(part, plan), None)
    return _design(parsed, family, plan, sums, levels, meta.loc[:, columns], n, scan,
                   response.name)


def _check_supported(parsed, family, known_sigma) -> None:
    if family.name != "gaussian":
        raise FamilyError(
            f"A Dask frame is fitted for the gaussian family only (got {family.name!r}): the "
            "other families re-weight every row at every step, which cross-products cannot "
            "stand in for. Fit a pandas frame (e.g. ddf.compute(), or a sample of it)."
        )
    if known_sigma is not None or parsed.offsets:
        what = "known residual SDs (known_sigma)" if known_sigma is not None else "offset(...)"
        raise DesignError(
            f"{what} is not supported for a Dask frame. Fit a pandas frame, or subtract an "
            "offset from the response in the Dask frame first."
        )
    pieces = [parsed.fixed, *(t.expr for t in parsed.random)]
    for name in STATEFUL:
        if any(re.search(rf"\b{name}\s*\(", piece) for piece in pieces):
            raise FormulaError(
                f"In {parsed.text!r}, {name}(...) learns from the whole column, which a Dask "
                "frame's partitions cannot give it. Add the transformed column to the frame "
                "first, e.g. ddf.assign(x_c=ddf.x - ddf.x.mean()), and use that column."
            )


def _meta(ddf) -> pd.DataFrame:
    """The empty pandas frame with `ddf`'s columns and dtypes."""
    meta = ddf._meta
    if not meta.columns.is_unique:
        dup = meta.columns[meta.columns.duplicated()].tolist()
        raise DesignError(f"The data frame has duplicated column names {dup}; rename them.")
    return string_columns(meta)


def _categorical(parsed, columns, meta: pd.DataFrame) -> list[str]:
    """Predictors encoded by category: text and category columns, and any column in C(...)."""
    pieces = [parsed.fixed, *(t.expr for t in parsed.random)]
    named = {m for piece in pieces for m in re.findall(r"\bC\(\s*([A-Za-z_]\w*)", piece)}
    return [c for c in columns if c in predictor_names(parsed)
            and (c in named or _is_categorical(meta[c]))]


def _is_categorical(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def _run(ddf, per_partition, reduce):
    """`per_partition` on every partition and the results reduced, by Dask's active scheduler
    (a distributed client when one is active); `reduce` None: pairwise sums."""
    import dask

    parts = [dask.delayed(per_partition, pure=True)(p) for p in ddf.to_delayed()]
    task = sum_tree(parts) if reduce is None else dask.delayed(reduce, pure=True)(parts)
    return task.compute()


def _checked_rows(scan, missing: str, columns) -> int:
    if scan.n_rows == 0:
        raise DesignError("The data frame is empty: there is nothing to fit.")
    if scan.n_missing_rows:
        report_missing(scan.n_missing_rows, scan.n_rows, scan.missing, missing)
    for name in columns:
        if name in scan.infinite:
            count, first = scan.infinite[name]
            raise infinite_error(name, count, first)
    return scan.n_rows - scan.n_missing_rows


def _categories(scan, meta: pd.DataFrame, categorical) -> dict:
    """Categorical predictor -> all its categories: a pandas category's own, else the distinct
    values sorted as pandas sorts them (as formulaic encodes a whole pandas column)."""
    out = {}
    for name in categorical:
        if isinstance(meta[name].dtype, pd.CategoricalDtype) and meta[name].cat.known:
            out[name] = meta[name].cat.categories
        else:
            out[name] = pd.Categorical(scan.categories[name].dropna()).categories
    return out


def _block_plans(parsed, sample, scan, n: int, check_nlevels):
    plans, levels, seen, offset = [], [], [], 0
    for term in parsed.random:
        mm = _model_matrix(term.expr, sample, parsed.text)
        if mm.shape[1] == 0:
            raise FormulaError(
                f"In {parsed.text!r}, {term.source!r} has no columns left of the bar."
            )
        terms = tuple(mm.columns)
        level_map, labels = _level_map(term.factors, scan.groups[term.factors])
        example = scan.non_integer.get(term.factors[0]) if len(term.factors) == 1 else None
        column = None if example is None else pd.Series([example], dtype=float)
        check_levels(term, labels, column, n, len(terms), True, check_nlevels)
        _check_overlap(seen, term, terms, parsed.text)
        seen.append(_Named(term.group, terms, term.source))
        plans.append(BlockPlan(mm.model_spec, level_map, len(labels), len(terms), offset))
        levels.append((terms, labels))
        offset += len(labels) * len(terms)
    return tuple(plans), levels


@dataclass(frozen=True)
class _Named:  # what `_check_overlap` reads of a block
    group: str
    terms: tuple[str, ...]
    source: str


def _level_map(factors: tuple[str, ...], combos: pd.DataFrame) -> tuple[LevelMap, list[str]]:
    """Levels in the documented order (`hierbayes.grouping`), from the distinct rows alone."""
    combos = combos.reset_index(drop=True)
    codes, labels = group_codes(combos, factors)
    uniques = tuple(pd.Index(combos[f].drop_duplicates()) for f in factors)
    key = np.zeros(len(combos), dtype=np.int64)
    for name, u in zip(factors, uniques, strict=True):
        key = key * len(u) + u.get_indexer(combos[name])
    order = np.argsort(key)
    return LevelMap(factors, uniques, key[order], np.asarray(codes)[order]), labels


def _design(parsed, family, plan, sums, levels, data, n: int, scan, response: str
            ) -> Design:
    full_names = list(plan.fixed_spec.column_names)
    if sums.bad_x.any():
        j = int(np.argmax(sums.bad_x > 0))
        raise nonfinite_error(full_names[j], int(sums.bad_x[j]), "fixed-effect")
    start = 0
    for term, (terms, _) in zip(parsed.random, levels, strict=True):
        bad = sums.bad_z[start:start + len(terms)]
        if bad.any():
            j = int(np.argmax(bad > 0))
            raise nonfinite_error(terms[j], int(bad[j]), f"group-level term {term.source}")
        start += len(terms)
    keep = independent_from_gram(sums.XtX, sums.x_min, sums.x_max, full_names)
    names = [full_names[j] for j in keep]
    check_fixed_count(len(keep), n, names)
    kept = sums.keep(keep)
    spans_one = bool(np.any((kept.x_min == kept.x_max) & (kept.x_min != 0)))
    moments = DesignMoments(kept, plan.shift, spans_one, tuple(b.offset for b in plan.blocks),
                            tuple((b.n_levels, b.k) for b in plan.blocks), plan.categories)
    _check_exact_fit(response, moments)
    blocks = _blocks(parsed, plan, levels, moments, n)
    check_within_exact(response, moments, blocks)
    return Design(
        formula=plan.formula, parsed=parsed, family=family,
        response=response,
        y=Rows((n,), "the response's values"), trials=None,
        X=Rows((n, len(keep)), "the fixed-effect matrix"), fixed_names=tuple(names),
        blocks=blocks, data=data, n_dropped=scan.n_missing_rows, fixed_spec=plan.fixed_spec,
        fixed_keep=tuple(keep), moments=moments,
    )


def _check_exact_fit(response: str, moments: DesignMoments) -> None:
    m = moments.sums
    centred = m.RtR[0, 0] - m.RtR[0, 1] ** 2 / m.n  # Σ(y − ȳ)²
    if centred <= 0:
        raise constant_response_error(response, moments.shift + m.RtR[0, 1] / m.n)
    total = m.RtR[0, 0] + 2 * moments.shift * m.RtR[0, 1] + m.n * moments.shift ** 2  # Σy²
    if moments.residuals.ete <= EXACT_TOL ** 2 * total:
        raise fixed_exact_error(response)


def _blocks(parsed, plan, levels, moments: DesignMoments, n: int) -> tuple[Block, ...]:
    out, seen, index = [], {}, {}
    rms = moments.z_rms()
    counts, start = moments.sums.counts, 0
    for b, (term, bp, (terms, labels)) in enumerate(zip(parsed.random, plan.blocks, levels,
                                                        strict=True)):
        count = seen.get(term.group, 0)
        seen[term.group] = count + 1
        out.append(PartitionedBlock(
            name=term.group if count == 0 else f"{term.group}.{count}", group=term.group,
            factors=term.factors, terms=terms, correlated=term.correlated, levels=tuple(labels),
            index=index.setdefault(term.factors, Rows((n,), "the group index of each row")),
            Z=Rows((n, len(terms)), f"the model matrix of {term.source}"), expr=term.expr,
            source=term.source, spec=bp.spec, level_counts=counts[start:start + bp.n_levels],
            rms=rms[b],
        ))
        start += bp.n_levels
    return tuple(out)
