"""The Schur layout of the marginal path: several grouping factors of any size (crossed, nested).

The largest factor (most effects) is eliminated level by level and the rest is factored densely,
as the REML engine's Schur backend does (`hierbayes.reml.schur`); the log-likelihood and its
analytic gradient are one PyTensor operation (`SchurLogp`) computed by the numba kernels of
`hierbayes.bayes.marginal.schur_gradient`, in nutpie's compiled code and in PyTensor's other
backends alike. Each evaluation costs O(q2³) for the q2 effects outside the largest factor, plus
the sums over the pairs of partner levels that the elimination creates (nothing of size n).

Layout of the effects: factor by factor (the largest first), level-major, the K_f terms of all
blocks of factor f side by side within a level; block b of factor f holds terms
``start:start + k_b`` of each level (`Segment.start`, `Segment.stride` = K_f).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp

from ...design import Design
from ..graphdata import shared
from . import schur_gradient
from .logp_op import LogpWithGradient, offset
from .schur_gradient import DATA, INDEX_DATA, value_and_gradient

# Effects outside the largest factor beyond which a dense Schur complement is refused: its
# factorization and inverse at every gradient cost ~q2³ (q2 = 3000: ~50 GFlop per step).
MAX_REST = 3000
_KERNELS = tuple(Path(schur_gradient.__file__).with_name(name) for name in (
    "schur_gradient.py", "schur_kernels.py", "schur_lapack.py"))
VERSION = hashlib.sha256(b"".join(p.read_bytes() for p in _KERNELS)).hexdigest()[:16]


def factors_of(design: Design) -> list[list]:
    """The blocks grouped by grouping factor, the factor with most effects first."""
    factors: dict[str, list] = {}
    for block in design.blocks:
        factors.setdefault(block.group, []).append(block)
    ordered = list(factors.values())
    size = [f[0].n_levels * sum(b.n_terms for b in f) for f in ordered]
    first = int(np.argmax(size))
    return [ordered[first], *ordered[:first], *ordered[first + 1:]]


def rest_size(design: Design) -> int:
    """q2: the effects outside the largest factor."""
    factors = factors_of(design)
    return sum(f[0].n_levels * sum(b.n_terms for b in f) for f in factors[1:])


def schur_layout(design: Design, segment_type) -> tuple[tuple, dict]:
    """The segments (one per block) and the index arrays of the Schur layout."""
    segments, K, J, off, offset = [], [], [], [], 0
    factor_of = []
    for f, blocks in enumerate(factors_of(design)):
        k = sum(b.n_terms for b in blocks)
        start = 0
        for block in blocks:
            segments.append(segment_type(block, offset, block.n_levels, start=start, stride=k))
            factor_of.append(f)
            start += block.n_terms
        K.append(k)
        J.append(blocks[0].n_levels)
        off.append(offset)
        offset += k * blocks[0].n_levels
    layout = {"K": np.array(K), "J": np.array(J), "off": np.array(off),
              "factor_of": tuple(factor_of), "kmax": max(K)}
    return tuple(segments), layout


def schur_stats(design: Design, segments, layout: dict, e: np.ndarray) -> dict:
    """ZᵀZ in pieces (A11 per level, partner blocks, dense A22), Zᵀe, ZᵀX."""
    Z = sparse_Z(design, segments).tocsc()
    A = (Z.T @ Z).tocsr()
    K1, J1 = int(layout["K"][0]), int(layout["J"][0])
    q1 = K1 * J1
    A11 = np.stack([A[j * K1:(j + 1) * K1, j * K1:(j + 1) * K1].toarray() for j in range(J1)])
    A12 = A[:q1, q1:].tocsr()
    partners = _partner_blocks(A12, layout, K1, J1)
    stats = {"A11": A11, "A22": A[q1:, q1:].toarray(), "Zte": Z.T @ e,
             "ZtX": np.asarray(Z.T @ design.X), **partners, **_level_classes(A11, A12, layout)}
    stats.update({k: layout[k] for k in ("K", "J", "off")})
    return stats


def _level_classes(A11: np.ndarray, A12: sp.csr_matrix, layout: dict) -> dict:
    """When every factor has one term, the levels of the largest grouped by their ZᵀZ value (a
    count, for intercepts): the Gram they subtract is then Σ_c w_c G_c over a few classes, each
    G_c = Σ a_l a_lᵀ formed once, cheaper per step than the pair loops when
    classes × q2² / 2 is below twice the pairs (dense sums beat scattered ones)."""
    q2 = A12.shape[1]
    empty = {"cval": np.zeros(0), "Gcls": np.zeros((0, q2, q2))}
    if max(layout["K"]) != 1:
        return empty
    values, which = np.unique(A11[:, 0, 0], return_inverse=True)
    pairs = sum(m * (m + 1) // 2 for m in np.diff(A12.indptr))
    if len(values) * q2 * q2 / 2 > 2 * pairs or len(values) * q2 * q2 * 8 > 256e6:
        return empty
    grams = [(A12[which == k].T @ A12[which == k]).toarray() for k in range(len(values))]
    return {"cval": values.astype(float), "Gcls": np.stack(grams)}


def _partner_blocks(A12: sp.csr_matrix, layout: dict, K1: int, J1: int) -> dict:
    """Level l of the largest factor: its partner level blocks in the rest (whole blocks of K_f
    columns, zeros kept), their columns and the K1 × m_l values of A12_l."""
    K, off = layout["K"], layout["off"]
    starts = off[1:] - K1 * J1  # of each other factor, in the rest's columns
    bptr, bfac, bpos, pptr, pcol, pval = [0], [], [], [0], [], []
    for level in range(J1):
        rows = A12[level * K1:(level + 1) * K1]
        columns = np.unique(rows.indices)
        f = np.searchsorted(starts, columns, side="right")  # 1-based factor of each column
        block_start = starts[f - 1] + (columns - starts[f - 1]) // K[f] * K[f]
        cols = []
        for fac, start in sorted(set(zip(f.tolist(), block_start.tolist(), strict=True)),
                                 key=lambda t: t[1]):
            bfac.append(fac)
            bpos.append(pptr[-1] + len(cols))
            cols.extend(range(start, start + int(K[fac])))
        bptr.append(len(bfac))
        pptr.append(pptr[-1] + len(cols))
        pcol.extend(cols)
        pval.append(rows[:, cols].toarray().ravel())  # (K1, m_l) row-major
    as_int = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
    return {"bptr": as_int(bptr), "bfac": as_int(bfac), "bpos": as_int(bpos),
            "pptr": as_int(pptr), "pcol": as_int(pcol),
            "pval": np.concatenate(pval) if pval else np.zeros(0)}


# --- the PyTensor operation -----------------------------------------------------------------


class SchurLogp(LogpWithGradient):
    """(log p(y | β, T, σ²), its gradient in δ, σ² and T) for the Schur layout.

    Inputs: δ = β − β̂ (p,), σ² (), T (factors, Kmax, Kmax), then the statistics of `DATA`.
    """

    T_TYPE = pt.dtensor3

    def __init__(self, version: str = VERSION):
        super().__init__(version)

    def evaluate(self, delta, var, T, *data):
        n, q, ete = (float(v) for v in data[:3])
        return value_and_gradient_cached(delta, float(var), T, n, q, ete, *data[3:7],
                                         tuple(data[7:]))


def _register_numba():
    from pytensor.link.numba.dispatch.basic import (
        numba_njit,
        register_funcify_default_op_cache_key,
    )

    @register_funcify_default_op_cache_key(SchurLogp)
    def numba_schur_logp(op, node=None, **kwargs):
        @numba_njit
        def schur_logp(delta, var, T, n, q, ete, Xte, XtX, Zte, ZtX, A11, K, J, off, A22, bptr,
                       bfac, bpos, pptr, pcol, pval, cval, Gcls):
            design = (A11, K, J, off, A22, bptr, bfac, bpos, pptr, pcol, pval, cval, Gcls)
            value, g_delta, g_var, gT = value_and_gradient(
                delta, var.item(), T, n.item(), q.item(), ete.item(), Xte, XtX, Zte, ZtX, design)
            return np.asarray(value), g_delta, np.asarray(g_var), gT

        return schur_logp


_register_numba()


def _cached(function, name: str):
    """`function` (numba, not cached itself) behind a wrapper numba caches on disk under a key
    with `VERSION`: numba's own cache would not see edits to the modules it calls."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    source = f"def {name}(*args):\n    return function(*args)\n"
    wrapper = compile_numba_function_src(source, name, {"__name__": __name__, "function": function},
                                         cache_key=f"hierbayes-{name}-{VERSION}")
    return numba.njit(cache=True, nogil=True)(wrapper)


value_and_gradient_cached = _cached(value_and_gradient, "schur_value_and_gradient")
draw_effects_cached = _cached(schur_gradient.draw_effects, "schur_draw_effects")


def factor_matrix(plan, scales):
    """T (factors, Kmax, Kmax): per factor the block diagonal of its blocks' factors."""
    layout = plan.stats
    T = pt.zeros((len(layout["K"]), layout["kmax"], layout["kmax"]))
    for seg, factor, (sd, chol) in zip(plan.segments, layout["factor_of"], scales, strict=True):
        a, b = seg.start, seg.start + seg.width
        block = pt.diag(sd) if chol is None else chol  # (k, k) lower triangular
        T = pt.set_subtensor(T[factor, a:b, a:b], block)
    return T


def schur_loglik(plan, beta, scales, sigma):
    """log p(y | β, T, σ) as a PyTensor scalar (one `SchurLogp`)."""
    data = {k: shared(f"marginal.{k}", plan.stats[k], np.int64 if k in INDEX_DATA else None)
            for k in (*DATA, "beta_hat")}
    delta = offset(beta, data["beta_hat"])
    value = SchurLogp()(delta, sigma**2, factor_matrix(plan, scales), *(data[k] for k in DATA))
    return value[0]


def sparse_Z(design: Design, segments) -> sp.csr_matrix:
    """The n × q group-effect matrix, columns block by block, level-major within a block."""
    n = design.n_obs
    rows, cols, vals = [], [], []
    for s in segments:
        for t in range(s.width):
            rows.append(np.arange(n))
            cols.append(s.offset + s.block.index * s.step + s.start + t)
            vals.append(s.block.Z[:, t])
    q = sum(s.repeat * s.width for s in segments)
    ij = (np.concatenate(rows), np.concatenate(cols))
    return sp.csr_matrix((np.concatenate(vals), ij), shape=(n, q))
