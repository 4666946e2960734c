"""Formula + data frame -> `Design`, the one description of a model that both engines read.

A `Design` holds the response, the fixed-effect matrix ``X`` and one `Block` per covariance block
of group-level effects. A block stores its own small model matrix ``Z`` (n × k: the columns of the
bar's left-hand side) and an integer level index per row; the full sparse random-effects matrix is
never needed here: row i contributes ``Z[i] @ b[index[i]]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import ModelSpec
from formulaic.errors import DataMismatchWarning, FormulaicError

from . import naming
from .arguments import check_choice, keywords_checked
from .errors import DesignError, FamilyError, FormulaError
from .expressions import checked_columns, context, model_matrix, plain
from .families import Family, get_family
from .formula import ParsedFormula, RandomTerm, parse_formula
from .grouping import group_codes, labels_of, near_misses
from .identifiability import NLEVELS_CHOICES, check_exact_fit, check_fixed_count, check_levels
from .response import build_response, offsets
from .validation import (
    check_column_types,
    check_finite,
    check_matrix_finite,
    check_new_types,
    data_warning,
    drop_missing,
    independent_columns,
    predictor_names,
    string_columns,
    used_columns,
)


@dataclass(frozen=True, eq=False, repr=False)
class Block:
    """One covariance block: effects of `terms` varying over the levels of `group`."""

    name: str  # unique within the design: the group, or "group.1", "group.2" when repeated
    group: str  # grouping factor, e.g. "Subject" or "batch:cask"
    factors: tuple[str, ...]  # data columns making up the group
    terms: tuple[str, ...]  # column names of Z, e.g. ("Intercept", "Days")
    correlated: bool
    levels: tuple[str, ...]  # level labels, order documented in `hierbayes.grouping`
    index: np.ndarray  # (n,) level of each row
    Z: np.ndarray  # (n, k) the block's own model matrix
    expr: str  # formulaic formula of Z
    source: str  # the bar as written
    spec: ModelSpec = field(repr=False)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @property
    def counts(self) -> np.ndarray:
        """Observations per level."""
        return np.bincount(self.index, minlength=self.n_levels)

    def column_rms(self) -> np.ndarray:
        """(k,) root mean square of each column of Z (0 for a non-finite one)."""
        with np.errstate(over="ignore", under="ignore"):
            rms = np.sqrt(np.mean(self.Z ** 2, axis=0)) if self.Z.size else np.zeros(self.n_terms)
        return np.where(np.isfinite(rms), rms, 0.0)

    @property
    def level_dim(self) -> str:
        """The xarray/PyMC dimension of the levels: the group's name, unless that name is taken
        by another dimension or variable (`hierbayes.naming.RESERVED_DIMS`)."""
        return naming.level_dim(self.group)

    @property
    def term_dim(self) -> str:
        return naming.term_dim(self.name)

    def __repr__(self) -> str:
        kind = "correlated" if self.correlated and self.n_terms > 1 else "independent"
        return (
            f"Block({self.name!r}: {', '.join(self.terms)} | {self.group}; "
            f"{self.n_levels} levels, {kind})"
        )


@dataclass(frozen=True, eq=False, repr=False)
class NewData:
    """New data encoded like the training data, for prediction."""

    X: np.ndarray
    index: tuple[np.ndarray, ...]  # per block; -1 marks a level not seen in training
    Z: tuple[np.ndarray, ...]  # per block
    unseen_levels: dict[str, list[str]]  # group -> labels not seen in training
    row_labels: pd.Index
    offset: np.ndarray | None = None  # (n,) the formula's offset(...) terms, summed

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]


@dataclass(frozen=True, eq=False, repr=False)
class Design:
    """Everything both engines need about one model and one data set. Immutable."""

    formula: str
    parsed: ParsedFormula
    family: Family
    response: str
    y: np.ndarray  # (n,)
    trials: np.ndarray | None  # (n,) binomial only
    X: np.ndarray  # (n, p)
    fixed_names: tuple[str, ...]
    blocks: tuple[Block, ...]
    data: pd.DataFrame  # copy of the used columns of the used rows
    n_dropped: int  # rows dropped for missing values
    fixed_spec: ModelSpec = field(repr=False)
    fixed_keep: tuple[int, ...] = field(repr=False)
    known_sigma: np.ndarray | None = None  # (n,) known residual SDs, if given
    known_sigma_column: str | None = None
    offset: np.ndarray | None = None  # (n,) sum of the formula's offset(...) terms, added to η
    # Cross-products summed over the partitions of a Dask frame (hierbayes.bigdata.moments);
    # such a design holds no rows: y, X and each block's Z and index stand in for them.
    moments: object | None = None

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def dropped_fixed(self) -> tuple[str, ...]:
        """Collinear fixed-effect columns dropped (as lme4 does), in formula order."""
        names = self.fixed_spec.column_names
        return tuple(n for j, n in enumerate(names) if j not in self.fixed_keep)

    @property
    def row_labels(self) -> pd.Index:
        """Labels (index) of the rows of the caller's data frame that the design uses."""
        return self.data.index

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Grouping factor -> its levels (each factor once, in block order)."""
        out: dict[str, tuple[str, ...]] = {}
        for block in self.blocks:
            out.setdefault(block.group, block.levels)
        return out

    @property
    def coords(self) -> dict[str, list[str]]:
        """Coordinates for PyMC/xarray: fixed-effect names, group levels, block term names."""
        coords = {naming.FIXED_DIM: list(self.fixed_names)}
        coords.update({block.level_dim: list(block.levels) for block in self.blocks})
        coords.update({block.term_dim: list(block.terms) for block in self.blocks})
        return coords

    def evaluate(self, new_data: pd.DataFrame) -> NewData:
        """Encode `new_data` exactly as the training data; unseen group levels get index -1."""
        frame = _check_frame(new_data)
        columns = used_columns(self.parsed, frame, need_response=False)
        frame = frame.loc[:, columns].copy()
        isna = frame.isna()
        if isna.to_numpy().any():
            where = ", ".join(f"{c!r} ({n})" for c, n in isna.sum().items() if n)
            raise DesignError(
                f"New data have missing values in column(s) {where}; cannot predict them."
            )
        check_finite(frame)
        check_column_types(frame, predictor_names(self.parsed))
        check_new_types(self.data, frame)
        X = _encode(self.fixed_spec, frame, "fixed-effect")[:, list(self.fixed_keep)]
        check_matrix_finite(X, list(self.fixed_names), "fixed-effect")
        indices, Zs, unseen = [], [], {}
        for block in self.blocks:
            Zs.append(_encode(block.spec, frame, f"group-level term {block.source}"))
            labels = labels_of(frame, block.factors)
            position = {label: i for i, label in enumerate(block.levels)}
            index = np.array([position.get(label, -1) for label in labels], dtype=np.int64)
            indices.append(index)
            if (index < 0).any() and block.group not in unseen:
                unseen[block.group] = sorted(set(labels[index < 0]))
                _warn_near_misses(block, unseen[block.group])
        offset = offsets(self.parsed, frame)
        return NewData(X, tuple(indices), tuple(Zs), unseen, frame.index, offset)

    def __repr__(self) -> str:
        lines = [
            f"Design: {self.formula}",
            f"  family {self.family.name}; {self.n_obs} observations"
            + (f" ({self.n_dropped} dropped for missing values)" if self.n_dropped else ""),
            f"  fixed effects ({len(self.fixed_names)}): {', '.join(self.fixed_names)}",
        ]
        lines += [f"  {block!r}" for block in self.blocks]
        return "\n".join(lines)


@keywords_checked
def make_design(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    missing: str = "drop",
    known_sigma: str | None = None,
    check_nlevels: str = "error",
) -> Design:
    """Build the design of `formula` on `data`. The caller's data frame is never modified.

    `missing="drop"` drops rows with a missing value in a used column (with a warning that says how
    many); `missing="raise"` makes that an error. `known_sigma` names a column of known
    per-observation residual SDs (Gaussian only: meta-analysis, e.g. eight schools), which then
    replace the estimated residual SD. `check_nlevels` ("error", "warning" or "ignore") is what
    happens to a grouping factor with too many levels for the data (lme4's checkNlevels; see
    `hierbayes.identifiability`). Models the data cannot identify (a response the fixed effects
    or the group intercepts reproduce exactly) are refused there too.
    """
    parsed = parse_formula(formula)
    family = get_family(family)
    check_choice(check_nlevels, "check_nlevels", NLEVELS_CHOICES)
    frame = _check_frame(data)
    columns = used_columns(parsed, frame)
    if known_sigma is not None:
        columns = _with_known_sigma(columns, known_sigma, frame, family)
    frame, n_dropped = drop_missing(frame.loc[:, columns].copy(), missing)
    check_finite(frame)
    check_column_types(frame, predictor_names(parsed))
    response = build_response(parsed.response, frame, family, formula)
    X_full, spec = _fixed_matrix(parsed, frame)
    full_names = list(spec.column_names)
    check_matrix_finite(X_full, full_names, "fixed-effect")
    keep = independent_columns(X_full, full_names)
    residual = family.response == "real" and known_sigma is None  # a residual SD is estimated
    blocks = _blocks(parsed, frame, residual, check_nlevels)
    if residual:
        check_fixed_count(len(keep), len(frame), [full_names[j] for j in keep])
        check_exact_fit(response.name, response.y, X_full[:, keep], blocks)
    return Design(
        formula=formula,
        parsed=parsed,
        family=family,
        response=response.name,
        y=response.y,
        trials=response.trials,
        X=np.ascontiguousarray(X_full[:, keep]),
        fixed_names=tuple(full_names[j] for j in keep),
        blocks=blocks,
        data=frame,
        n_dropped=n_dropped,
        fixed_spec=spec,
        fixed_keep=tuple(keep),
        known_sigma=None if known_sigma is None else _known_sigma(frame[known_sigma], known_sigma),
        known_sigma_column=known_sigma,
        offset=offsets(parsed, frame),
    )


def _with_known_sigma(columns: list[str], name: str, frame: pd.DataFrame, family: Family):
    if family.name != "gaussian":
        raise FamilyError(
            f"known_sigma applies to the gaussian family only (got {family.name!r}): the other "
            "families have no residual SD."
        )
    if not isinstance(name, str):
        raise DesignError(f"known_sigma must name a column of the data, got {name!r}.")
    if name not in frame.columns:
        # Never evaluated, but code where a column name belongs is refused as code.
        checked_columns(name, f"known_sigma={name!r}")
        raise DesignError(
            f"known_sigma names column {name!r}, which is not in the data; available columns: "
            f"{', '.join(map(repr, map(str, frame.columns)))}."
        )
    return columns if name in columns else [*columns, name]


def _known_sigma(column: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise DesignError(
            f"The known_sigma column {name!r} must hold positive, finite SDs; found "
            f"{column[bad].iloc[0]} ({int(bad.sum())} such values)."
        )
    return values


def _check_frame(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DesignError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if len(data) == 0:
        raise DesignError("The data frame is empty: there is nothing to fit.")
    if not data.columns.is_unique:
        dup = data.columns[data.columns.duplicated()].tolist()
        raise DesignError(f"The data frame has duplicated column names {dup}; rename them.")
    return string_columns(data)


def _fixed_matrix(parsed: ParsedFormula, frame: pd.DataFrame) -> tuple[np.ndarray, ModelSpec]:
    mm = _model_matrix(parsed.fixed, frame, parsed.text)
    return mm.to_numpy(dtype=float), mm.model_spec


def _model_matrix(expr: str, frame: pd.DataFrame, formula: str):
    try:
        # Non-finite values from transforms (log of 0) are reported by name after this.
        with np.errstate(all="ignore"):
            return model_matrix(expr, frame, formula)
    except FormulaicError as err:
        raise FormulaError(
            f"In {formula!r}, the terms {expr!r} cannot be evaluated: {plain(err)}"
        ) from None


def _encode(spec: ModelSpec, frame: pd.DataFrame, what: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataMismatchWarning)
            return spec.get_model_matrix(frame, context=context(), output="pandas").to_numpy(
                dtype=float)
    except DataMismatchWarning as err:
        raise DesignError(
            f"New data for the {what} have category levels not seen in training: {err} "
            "Only the training categories can be predicted."
        ) from None
    except FormulaicError as err:
        raise DesignError(f"New data cannot be encoded for the {what}: {plain(err)}") from None


def _blocks(
    parsed: ParsedFormula, frame: pd.DataFrame, residual: bool, check_nlevels: str = "error"
) -> tuple[Block, ...]:
    """One `Block` per bar; `residual`: the model estimates a residual SD (see
    `hierbayes.identifiability.check_levels`)."""
    blocks: list[Block] = []
    seen: dict[str, int] = {}
    for term in parsed.random:
        index, levels = group_codes(frame, term.factors)
        mm = _model_matrix(term.expr, frame, parsed.text)
        Z = mm.to_numpy(dtype=float)
        check_matrix_finite(Z, list(mm.columns), f"group-level term {term.source}")
        column = frame[term.factors[0]] if len(term.factors) == 1 else None
        check_levels(term, levels, column, len(frame), Z.shape[1], residual, check_nlevels)
        if Z.shape[1] == 0:
            raise FormulaError(
                f"In {parsed.text!r}, {term.source!r} has no columns left of the bar."
            )
        _check_overlap(blocks, term, tuple(mm.columns), parsed.text)
        count = seen.get(term.group, 0)
        seen[term.group] = count + 1
        blocks.append(
            Block(
                name=term.group if count == 0 else f"{term.group}.{count}",
                group=term.group,
                factors=term.factors,
                terms=tuple(mm.columns),
                correlated=term.correlated,
                levels=tuple(levels),
                index=index,
                Z=np.ascontiguousarray(Z),
                expr=term.expr,
                source=term.source,
                spec=mm.model_spec,
            )
        )
    return tuple(blocks)


def _check_overlap(
    blocks: list[Block], term: RandomTerm, terms: tuple[str, ...], text: str
) -> None:
    for block in blocks:
        shared = set(block.terms) & set(terms)
        if block.group == term.group and shared:
            raise FormulaError(
                f"In {text!r}, {term.source!r} and {block.source!r} both give {term.group!r} a "
                f"varying {', '.join(sorted(shared))}: the two variances cannot be told apart. "
                "Keep one of them, e.g. '(0 + x | g)' beside '(1 | g)'."
            )


def _warn_near_misses(block: Block, unseen: list[str]) -> None:
    """New labels that differ from a fitted one only by whitespace, case or zeros are predicted
    as new groups, as asked; but they are most likely typos of the fitted group."""
    for label, fitted in near_misses(unseen, block.levels).items():
        data_warning(
            f"New data: level {label!r} of {block.group!r} was not seen in training; it "
            f"differs from the fitted level(s) {', '.join(map(repr, fitted))} only by whitespace, "
            "letter case or zeros, and is predicted as a new group. Write it as the fitted "
            "label to use that group's effect."
        )

