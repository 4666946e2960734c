"""The second pass: per partition, the cross-products of the design; summed over partitions.

Columns of Z in "moment order": the design's blocks one after another, and within a block level
by level, its k terms per level (column of block b, level l, term t = offset_b + l·k_b + t).
The response enters as two columns R = [y − shift, 1]: the shift (a typical value of y) keeps
the squares small, and the column of ones lets the engines recover the residuals of the plain
least-squares fit, e = y − Xβ̂, whose cross-products (Xᵀe ≈ 0, Zᵀe, eᵀe) are what the REML layout
and the marginal likelihood start from (`residual_products`).

Numpy, pandas and scipy only: partitions are pandas frames; Dask only schedules (`build`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import ModelSpec
from formulaic.errors import DataMismatchWarning, FormulaicError

from ..errors import DesignError
from ..expressions import context, plain
from ..families import Family
from ..formula import ParsedFormula
from ..response import build_response
from ..validation import string_columns


@dataclass(frozen=True, eq=False)
class LevelMap:
    """Raw values of a grouping factor's columns -> level codes, for any partition."""

    factors: tuple[str, ...]
    uniques: tuple[pd.Index, ...]  # per column, its distinct values (all partitions)
    keys: np.ndarray  # sorted combination keys (one column: positions in uniques[0])
    codes: np.ndarray  # level code of each key

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        key = np.zeros(len(frame), dtype=np.int64)
        for name, uniques in zip(self.factors, self.uniques, strict=True):
            key = key * len(uniques) + uniques.get_indexer(frame[name])
        return self.codes[np.searchsorted(self.keys, key)]


@dataclass(frozen=True, eq=False)
class BlockPlan:
    spec: ModelSpec  # the block's Z, fixed on the sample rows
    levels: LevelMap
    n_levels: int
    k: int
    offset: int  # first column in moment order


@dataclass(frozen=True, eq=False)
class PartitionPlan:
    """Everything a partition needs to compute its cross-products (pickled to the workers)."""

    formula: str
    parsed: ParsedFormula
    family: Family
    columns: tuple[str, ...]
    fixed_spec: ModelSpec  # all columns, before collinear ones are dropped
    blocks: tuple[BlockPlan, ...]
    shift: float
    categories: dict  # categorical predictor -> its categories (all partitions)

    @property
    def q(self) -> int:
        return sum(b.n_levels * b.k for b in self.blocks)

    @property
    def p(self) -> int:
        return len(self.fixed_spec.column_names)


@dataclass(frozen=True, eq=False)
class Moments:
    """Sums over rows (p: all fixed-effect columns; q: moment order; R = [y − shift, 1])."""

    n: int
    XtX: np.ndarray  # (p, p)
    XtR: np.ndarray  # (p, 2)
    RtR: np.ndarray  # (2, 2)
    ZtZ: sp.csr_matrix  # (q, q)
    ZtX: np.ndarray  # (q, p)
    ZtR: np.ndarray  # (q, 2)
    bad_x: np.ndarray  # (p,) non-finite values per fixed-effect column
    bad_z: np.ndarray  # (Σk,) non-finite values per column of the blocks' Z
    x_min: np.ndarray  # (p,)
    x_max: np.ndarray  # (p,)
    counts: np.ndarray  # (Σ levels,) rows per level, block after block

    def __add__(self, other: Moments) -> Moments:
        out = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            out[f.name] = (np.minimum(a, b) if f.name == "x_min" else
                           np.maximum(a, b) if f.name == "x_max" else a + b)
        return Moments(**out)

    def keep(self, columns: list[int]) -> Moments:
        """Only the fixed-effect columns `columns` (the linearly independent ones)."""
        c = np.asarray(columns, dtype=np.int64)
        return Moments(self.n, self.XtX[np.ix_(c, c)], self.XtR[c], self.RtR, self.ZtZ,
                       self.ZtX[:, c], self.ZtR, self.bad_x[c], self.bad_z, self.x_min[c],
                       self.x_max[c], self.counts)


def empty_moments(plan: PartitionPlan) -> Moments:
    p, q, kz = plan.p, plan.q, sum(b.k for b in plan.blocks)
    return Moments(0, np.zeros((p, p)), np.zeros((p, 2)), np.zeros((2, 2)),
                   sp.csr_matrix((q, q)), np.zeros((q, p)), np.zeros((q, 2)),
                   np.zeros(p, np.int64), np.zeros(kz, np.int64), np.full(p, np.inf),
                   np.full(p, -np.inf), np.zeros(sum(b.n_levels for b in plan.blocks), np.int64))


def used_rows(part: pd.DataFrame, columns) -> pd.DataFrame:
    """The used columns of the rows without a missing value in any of them."""
    frame = string_columns(part).loc[:, list(columns)]
    return frame.loc[~frame.isna().any(axis=1).to_numpy()]


def with_categories(frame: pd.DataFrame, categories: dict) -> pd.DataFrame:
    """`frame` with each categorical predictor holding all its categories, as the sample rows
    that fixed the encoding did (a partition may lack some; Dask may hold strings as Arrow)."""
    if not categories:
        return frame
    return frame.assign(**{name: pd.Categorical(frame[name], categories=c)
                           for name, c in categories.items()})


def partition_moments(part: pd.DataFrame, plan: PartitionPlan) -> Moments:
    """The cross-products of one partition (rows with missing values dropped, as the design
    drops them)."""
    frame = with_categories(used_rows(part, plan.columns), plan.categories)
    n = len(frame)
    if n == 0:
        return empty_moments(plan)
    y = build_response(plan.parsed.response, frame, plan.family, plan.formula).y
    R = np.column_stack([np.asarray(y, float) - plan.shift, np.ones(n)])  # (n, 2)
    X = encode(plan.fixed_spec, frame, "fixed-effect")  # (n, p)
    Zs = [encode(b.spec, frame, "group-level") for b in plan.blocks]  # (n, k) each
    bad_x = (~np.isfinite(X)).sum(axis=0)
    bad_z = np.concatenate([(~np.isfinite(Z)).sum(axis=0) for Z in Zs])
    codes = [b.levels(frame) for b in plan.blocks]  # (n,) each
    Zt = _sparse_zt(plan, codes, Zs, n)  # (q, n)
    counts = np.concatenate([np.bincount(c, minlength=b.n_levels)
                             for b, c in zip(plan.blocks, codes, strict=True)])
    return Moments(
        n=n, XtX=X.T @ X, XtR=X.T @ R, RtR=R.T @ R, ZtZ=(Zt @ Zt.T).tocsr(),
        ZtX=np.asarray(Zt @ X), ZtR=np.asarray(Zt @ R), bad_x=bad_x, bad_z=bad_z,
        x_min=X.min(axis=0), x_max=X.max(axis=0), counts=counts,
    )


def _sparse_zt(plan: PartitionPlan, codes, Zs, n: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for block, index, Z in zip(plan.blocks, codes, Zs, strict=True):
        for t in range(block.k):
            rows.append(np.arange(n))
            cols.append(block.offset + index * block.k + t)
            vals.append(Z[:, t])
    Z = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, plan.q))
    return Z.T.tocsr()


def encode(spec: ModelSpec, frame: pd.DataFrame, what: str) -> np.ndarray:
    """`frame` encoded by `spec` (fixed on the sample rows, whose categories are global)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("error", DataMismatchWarning)
            mm = spec.get_model_matrix(frame, context=context(), output="pandas")
    except (DataMismatchWarning, FormulaicError) as err:
        raise DesignError(f"The {what} terms cannot be evaluated: {plain(err)}") from None
    return mm.to_numpy(dtype=float)


def sum_tree(parts: list):
    """Pairwise sums of `parts` (Dask delayed objects or values): depth log2(len)."""
    from dask import delayed

    add = delayed(_add, pure=True)
    while len(parts) > 1:
        pairs = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def _add(a, b):
    return a + b


@dataclass(frozen=True, eq=False)
class Residuals:
    """The cross-products of e = y − Xβ̂ (β̂ the least-squares fit of y on X)."""

    beta_ols: np.ndarray  # (p,)
    ete: float
    Xte: np.ndarray  # (p,) ≈ 0
    Zte: np.ndarray  # (q,) moment order


def residual_products(m: Moments, shift: float, spans_one: bool) -> Residuals:
    """From R = [y − shift, 1]: E = R − XB, B = (XᵀX)⁻¹XᵀR, and e = E·(1, shift).

    `spans_one`: X has a constant column, so the column of ones is fitted exactly and its
    residual is 0 (set so, not left to rounding)."""
    p = m.XtX.shape[0]
    B = np.linalg.solve(m.XtX, m.XtR) if p else np.zeros((0, 2))  # (p, 2)
    c = np.array([1.0, 0.0 if spans_one else shift])
    EtE = m.RtR - m.XtR.T @ B  # (2, 2)
    if spans_one:
        EtE[1, :] = EtE[:, 1] = 0.0
    ete = max(float(c @ EtE @ c), 0.0)
    Xte = (m.XtR - m.XtX @ B) @ c
    Zte = (m.ZtR - m.ZtX @ B) @ c
    return Residuals(B @ np.array([1.0, shift]), ete, Xte, Zte)


@dataclass(frozen=True, eq=False)
class DesignMoments:
    """What a design built from a Dask frame keeps of its rows (`hierbayes.design.Design`'s
    `moments`): the sums of the kept fixed-effect columns, and how to read them."""

    sums: Moments
    shift: float
    spans_one: bool  # X has a constant column
    offsets: tuple[int, ...]  # first column of each block, moment order
    sizes: tuple[tuple[int, int], ...]  # (levels, k) of each block
    categories: dict = field(default_factory=dict)  # categorical predictor -> categories

    @cached_property
    def residuals(self) -> Residuals:
        return residual_products(self.sums, self.shift, self.spans_one)

    def block_columns(self, b: int) -> np.ndarray:
        """(L, k) moment-order columns of block `b`."""
        L, k = self.sizes[b]
        return self.offsets[b] + np.arange(L)[:, None] * k + np.arange(k)

    def column_summary(self) -> dict:
        """Means and SDs (population, ddof 0) of y and of the columns of X and each Z; y's SD
        with ddof 1 as `y_sd`."""
        m, n = self.sums, self.sums.n
        y_sum, y_ss = m.RtR[0, 1], m.RtR[0, 0]  # Σ(y − shift), Σ(y − shift)²
        y_var = max(y_ss - y_sum ** 2 / n, 0.0) / max(n - 1, 1)
        x_mean = m.XtR[:, 1] / n
        x_sd = np.sqrt(np.maximum(np.diag(m.XtX) / n - x_mean ** 2, 0.0))
        x_sd = np.where(m.x_min == m.x_max, 0.0, x_sd)
        diag, ones = m.ZtZ.diagonal(), m.ZtR[:, 1]
        z_sd = []
        for b in range(len(self.sizes)):
            cols = self.block_columns(b)
            mean, square = ones[cols].sum(axis=0) / n, diag[cols].sum(axis=0) / n
            z_sd.append(np.sqrt(np.maximum(square - mean ** 2, 0.0)))
        return {"y_mean": self.shift + y_sum / n, "y_sd": float(np.sqrt(y_var)),
                "x_mean": x_mean, "x_sd": x_sd, "z_sd": z_sd, "z_rms": self.z_rms()}

    def z_rms(self) -> list[np.ndarray]:
        diag, n = self.sums.ZtZ.diagonal(), self.sums.n
        return [np.sqrt(diag[self.block_columns(b)].sum(axis=0) / n)
                for b in range(len(self.sizes))]
