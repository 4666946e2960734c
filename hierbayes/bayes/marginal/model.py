"""Gaussian models with the group effects integrated out: NUTS on the hyperparameters only.

With a Gaussian response and the identity link, ``y = Xβ + Zb + ε``, ``b ~ N(0, TTᵀ)``,
``ε ~ N(0, σ²I)`` gives ``y ~ N(Xβ, σ²I + ZTTᵀZᵀ)``: the marginal model has only β, the group SDs
and correlations and σ as parameters, a handful of dimensions without the funnel between the
group effects and their SD. `.draws` then draws the group effects exactly from
their Gaussian conditional, draw by draw, so that the fit has every variable of the standard path.

T is block diagonal: per block ``<b>`` and per level, the Cholesky factor
``diag(sd_<b>) chol_<b>`` of the block's covariance (``chol_<b>``: of its correlation matrix;
``diag(sd_<b>)`` for an independent block). With ``P = σ²I + TᵀZᵀZT``
(q × q, q = the number of group effects), ``r = y - Xβ`` and ``c = TᵀZᵀr``, the matrix
determinant lemma and Woodbury's identity give

    log p(y) = -½ [n log 2π + (n - q) log σ² + log|P| + (rᵀr - cᵀP⁻¹c) / σ²],

the algebra of lme4's penalized least squares (Bates et al. 2015, eqs. 11-34 with Λ = T / σ).
Everything is computed from cross-products formed once (ZᵀZ, ZᵀX, XᵀX, Zᵀe, Xᵀe, eᵀe with
``e = y - Xβ̂`` for the least-squares β̂, so that only δ = β - β̂ enters and nothing of size y's
mean is subtracted from itself): no evaluation touches the n rows. Two layouts:

- ``"grouped"``: every block is on one grouping factor (``(x | g)``, ``(1 + x || g)``): P is block
  diagonal with one k × k block per level (k = the terms of all blocks, at most
  `linalg.MAX_UNROLLED`), the likelihood and its analytic gradient one numba operation
  (`hierbayes.bayes.marginal.grouped`);
- ``"dense"``: several grouping factors (crossed or nested) with at most `MAX_DENSE` group effects
  in all: P is factored as one dense q × q matrix;
- ``"schur"``: several grouping factors with more group effects: the largest factor is eliminated
  level by level and the Schur complement of the others (at most `schur.MAX_REST` effects) is
  factored densely, with an analytic gradient (`hierbayes.bayes.marginal.schur`). Larger designs
  keep the standard non-centred model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ... import naming
from ...design import Block, Design
from ...errors import HierbayesError
from ..builder import block_scale, fixed_effects, scalar_parameter
from ..graphdata import shared
from . import linalg as small
from . import schur
from .grouped import grouped_loglik
from .logp_op import offset
from .schur import sparse_Z

# A dense q × q factorization and its gradient at every NUTS step cost ~q³: crossed intercepts,
# 4 × 1000 draws, one BLAS thread (min bulk ESS / sampling s, marginal vs standard): q = 30
# 2070 vs 2640, q = 150 180 vs 109, q = 300 30 vs 41. The crossover is near 200.
MAX_DENSE = 200
POTENTIAL = "y_marginal"  # the marginal log-likelihood term of the model
# The statistics of the graph. They enter the model as named shared variables
# (`hierbayes.bayes.graphdata`), so that a compiled model takes new data without recompiling
# (`hierbayes.bayes.compiled`), e.g. a new response for simulation-based calibration.
GRAPH_STATS = ("beta_hat", "ete", "Xte", "Zte", "XtX", "A", "ZtX", "n", "q")


@dataclass(frozen=True)
class Segment:
    """One block's columns in the layout of P: `repeat` copies of its k × k factor from `offset`,
    one every `stride` columns (from `start` within each), or packed when `stride` is None."""

    block: Block
    offset: int
    repeat: int  # levels of the block on the dense layout; 1 on the grouped one (per level)
    start: int = 0  # the block's first term within a level (Schur layout: several blocks)
    stride: int | None = None  # columns per level (Schur layout: all terms of the factor)

    @property
    def width(self) -> int:
        return self.block.n_terms

    @property
    def step(self) -> int:
        return self.width if self.stride is None else self.stride


@dataclass(frozen=True, eq=False, repr=False)
class MarginalPlan:
    """Which path a fit takes and, when marginal, the cross-products its likelihood needs."""

    path: str  # "grouped", "dense" or "standard"
    reason: str  # plain words: why this path
    segments: tuple[Segment, ...] = ()
    stats: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.path != "standard"

    @property
    def size(self) -> int:
        """Columns of the layout: terms per level (grouped) or all group effects (dense)."""
        return sum(s.repeat * s.width for s in self.segments)

    @property
    def n_effects(self) -> int:
        """q, the number of group effects integrated out."""
        return sum(s.block.n_levels * s.width for s in self.segments)

    def describe(self) -> str:
        if not self.active:
            return f"standard (group effects sampled by NUTS, non-centred): {self.reason}"
        return (
            f"marginal ({self.path}: group effects integrated out of the likelihood, then drawn "
            f"exactly from their conditional per posterior draw): {self.reason}"
        )

    def settings(self) -> dict:
        return {"marginalize": self.active, "marginal_path": self.path}


def plan_for(spec, marginalize: bool | None) -> MarginalPlan:
    """The plan for `spec` (a `BayesModel`): `marginalize` None = whenever it applies."""
    if marginalize not in (None, True, False):
        raise HierbayesError(f"marginalize must be None, True or False; got {marginalize!r}.")
    if marginalize is False and spec.design.moments is None:
        return MarginalPlan("standard", "marginalize=False")
    path, reason = _which_path(spec)
    if spec.design.moments is not None:
        from ...bigdata.marginal import check_path

        check_path(path, reason, marginalize)
    if path == "standard":
        if marginalize:
            raise HierbayesError(f"marginalize=True is not possible here: {reason}.")
        return MarginalPlan(path, reason)
    design = spec.design
    if design.moments is not None:  # from a Dask frame: the sums stand in for the rows
        from ...bigdata.marginal import moment_stats

        segments = (_grouped_segments if path == "grouped" else _dense_segments)(design.blocks)
        stats = moment_stats(design, path)
    elif path == "grouped":
        fixed = _fixed_stats(design)
        segments = _grouped_segments(design.blocks)
        stats = {**fixed, **_grouped_stats(design, segments, fixed["e"])}
    elif path == "dense":
        fixed = _fixed_stats(design)
        segments = _dense_segments(design.blocks)
        stats = {**fixed, **_dense_stats(design, segments, fixed["e"])}
    else:
        fixed = _fixed_stats(design)
        segments, layout = schur.schur_layout(design, Segment)
        stats = {**fixed, **layout, **schur.schur_stats(design, segments, layout, fixed["e"])}
    stats["q"] = sum(s.block.n_levels * s.width for s in segments)
    return MarginalPlan(path, reason, segments, stats)


def _which_path(spec) -> tuple[str, str]:
    design = spec.design
    if design.family.name != "gaussian" or spec.link != "identity":
        return "standard", (
            f"only a gaussian response with the identity link can be integrated in closed form "
            f"(this model: {design.family.name}, link {spec.link})"
        )
    if not design.blocks:
        return "standard", "the model has no group effects to integrate out"
    if design.offset is not None:
        return "standard", "an offset(...) term is not folded into the integrated model"
    if design.known_sigma is not None:
        return "standard", "the residual SDs are known per observation (the marginal has one σ)"
    if tuple(spec.model.named_vars) != spec.built_vars:
        return "standard", "the model was extended by the user (variables added to spec.model)"
    first = design.blocks[0]
    shared = all(
        b.group == first.group and (b.index is first.index or np.array_equal(b.index, first.index))
        for b in design.blocks
    )
    k = sum(b.n_terms for b in design.blocks)
    if shared and k <= small.MAX_UNROLLED:
        return "grouped", f"one grouping factor ({first.group}), {k} effect(s) per level"
    q = sum(b.n_levels * b.n_terms for b in design.blocks)
    if q <= MAX_DENSE:
        return "dense", f"{q} group effects in all, factored densely"
    rest, largest = schur.rest_size(design), schur.factors_of(design)[0][0].group
    if rest <= schur.MAX_REST:
        return "schur", (
            f"{q} group effects on several grouping factors: {largest} eliminated level by "
            f"level, the other {rest} factored densely"
        )
    return "standard", (
        f"{q} group effects on several grouping factors, {rest} of them outside the largest "
        f"factor ({largest}): more than the {schur.MAX_REST} that a dense Schur complement "
        "handles"
    )


# --- cross-products, once per fit ----------------------------------------------------------


def _fixed_stats(design: Design) -> dict:
    X, y = design.X, design.y  # (n, p), (n,)
    beta_hat = np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else np.zeros(0)  # (p,)
    e = y - X @ beta_hat  # (n,) least-squares residuals: small numbers, little cancellation
    stats = {"n": len(y), "beta_hat": beta_hat, "e": e, "ete": float(e @ e)}
    return {**stats, "Xte": X.T @ e, "XtX": X.T @ X}  # (p,), (p, p)


def _grouped_segments(blocks) -> tuple[Segment, ...]:
    offsets = np.cumsum([0] + [b.n_terms for b in blocks])
    return tuple(Segment(b, int(o), 1) for b, o in zip(blocks, offsets, strict=False))


def _grouped_stats(design: Design, segments, e: np.ndarray) -> dict:
    """Per-level sums: A_j = Z_jᵀZ_j (J, k, k), Z_jᵀX_j (J·k, p), Z_jᵀe_j (J, k)."""
    index, J = segments[0].block.index, segments[0].block.n_levels
    Z = np.hstack([s.block.Z for s in segments])  # (n, k): all terms of the factor side by side
    X = design.X
    k, p = Z.shape[1], X.shape[1]

    def per_level(weights):  # (n,) -> (J,): Σ over each level's rows
        return np.bincount(index, weights=weights, minlength=J)

    A, ZtX = np.empty((J, k, k)), np.empty((J, k, p))
    for a in range(k):  # k² + k·p passes over the rows, once per fit
        for b in range(k):
            A[:, a, b] = per_level(Z[:, a] * Z[:, b])
        for c in range(p):
            ZtX[:, a, c] = per_level(Z[:, a] * X[:, c])
    Zte = np.stack([per_level(Z[:, a] * e) for a in range(k)], axis=1)  # (J, k)
    # ZtX by term first: (k, J, p), so each term's Z_jᵀX_j δ is one matrix-vector product.
    return {"A": A, "ZtX": ZtX.transpose(1, 0, 2).copy(), "Zte": Zte, "levels": J}


def _dense_segments(blocks) -> tuple[Segment, ...]:
    segments, offset = [], 0
    for b in blocks:
        segments.append(Segment(b, offset, b.n_levels))
        offset += b.n_levels * b.n_terms
    return tuple(segments)


def _dense_stats(design: Design, segments, e: np.ndarray) -> dict:
    Z = sparse_Z(design, segments)  # (n, q)
    return {"A": (Z.T @ Z).toarray(), "ZtX": np.asarray(Z.T @ design.X), "Zte": Z.T @ e}


# --- the PyMC model -------------------------------------------------------------------------


def marginal_coords(design: Design) -> dict[str, list]:
    """Coordinates of the marginal model: no group levels or rows (no variable has them)."""
    coords = {naming.FIXED_DIM: list(design.fixed_names)}
    for block in design.blocks:
        coords[block.term_dim] = list(block.terms)
        if block.correlated and block.n_terms > 1:
            coords[naming.corr_dim(block)] = list(block.terms)
    return coords


def build_marginal_model(design: Design, priors, plan: MarginalPlan) -> pm.Model:
    """β, ``sd_<b>``, ``chol_<b>``/``corr_<b>`` and σ with the same priors and names as the
    standard model (`hierbayes.bayes.builder`), and the marginal likelihood as a potential."""
    with pm.Model(coords=marginal_coords(design)) as model:
        names = design.fixed_names
        beta = fixed_effects(names, [priors[n] for n in names]) if names else None  # (p,)
        scales = [block_scale(s.block, priors) for s in plan.segments]  # [(sd, chol | None)]
        sigma = scalar_parameter(priors, naming.SIGMA)
        pm.Potential(POTENTIAL, marginal_loglik(plan, beta, scales, sigma))
    return model


def marginal_loglik(plan: MarginalPlan, beta, scales, sigma):
    """log p(y | β, T, σ) as a PyTensor scalar (see the module docstring)."""
    if plan.path == "schur":
        return schur.schur_loglik(plan, beta, scales, sigma)
    s = {k: shared(f"marginal.{k}", plan.stats[k]) for k in GRAPH_STATS}
    var = sigma**2
    if plan.path == "grouped":
        return grouped_loglik(s, offset(beta, s["beta_hat"]), _factor_matrix(plan, scales), var)
    delta = None if beta is None else beta - s["beta_hat"]  # (p,)
    log_det, quad = _dense_terms(plan, s, delta, scales, var)
    n, q = s["n"], s["q"]
    rr = _residual_ss(s, delta)
    return -0.5 * (n * np.log(2 * np.pi) + (n - q) * pt.log(var) + log_det + (rr - quad) / var)


def _residual_ss(s: dict, delta):
    """rᵀr for r = y - Xβ = e - Xδ, δ = β - β̂, from the cross-products."""
    if delta is None:
        return s["ete"]
    return s["ete"] - 2.0 * pt.dot(s["Xte"], delta) + pt.dot(delta, pt.dot(s["XtX"], delta))


def factor_entries(segments, scales, k: int) -> list[list]:
    """The k × k block-diagonal T of the grouped layout as entries, None where T is zero by
    construction. `scales` are (sd, chol | None) with ``sd[i]`` and ``chol[i, j]`` the entries:
    scalars in the model, (S, 1) columns of draws afterwards."""
    T: list[list] = [[None] * k for _ in range(k)]
    for seg, (sd, chol) in zip(segments, scales, strict=True):
        o = seg.offset
        for i in range(seg.width):
            if chol is None:
                T[o + i][o + i] = sd[i]
                continue
            for j in range(i + 1):
                T[o + i][o + j] = chol[i, j]
    return T


def grouped_system(A: np.ndarray, w: list, T: list, var):
    """Entries of P_j = σ²I + TᵀA_jT (lower triangle) and c_j = Tᵀw_j for all levels j.

    A: (J, k, k) per-level ZᵀZ; w: k arrays over the levels (Z_jᵀr_j by term)."""
    k = len(T)
    G = small.congruence([[A[:, a, b] for b in range(k)] for a in range(k)], T)  # (J,) each
    P = [[G[a][b] + var if a == b else G[a][b] for b in range(a + 1)] for a in range(k)]
    return P, small.transpose_times(T, w)


def _factor_matrix(plan: MarginalPlan, scales):
    """The grouped layout's k × k T as one tensor, zeros where T is zero by construction."""
    zero = pt.as_tensor(np.float64(0.0))
    T = factor_entries(plan.segments, scales, plan.size)
    return pt.stack([pt.stack([zero if t is None else t for t in row]) for row in T])


def right_times_T(M, segments, scales, lib=pt):
    """M T for the block-diagonal T (M: (m, columns of P)), one segment at a time.

    Each segment holds `repeat` consecutive copies of its block's k × k factor, so its columns
    reshape to (m · repeat, k) rows that all meet the same factor."""
    m, parts = M.shape[0], []
    for seg, (sd, chol) in zip(segments, scales, strict=True):
        cols = M[:, seg.offset : seg.offset + seg.repeat * seg.width]  # (m, repeat·k)
        rows = cols.reshape((m * seg.repeat, seg.width))  # (m·repeat, k)
        rows = rows * sd if chol is None else lib.dot(rows, chol)  # (m·repeat, k): diag or L
        parts.append(rows.reshape((m, seg.repeat * seg.width)))
    return parts[0] if len(parts) == 1 else lib.concatenate(parts, axis=1)


def _dense_terms(plan: MarginalPlan, s: dict, delta, scales, var):
    """log|P| and cᵀP⁻¹c for the dense q × q P = σ²I + TᵀAT."""
    A, segments = s["A"], plan.segments
    q = A.shape[0]  # symbolic: the sizes are data
    w = s["Zte"] if delta is None else s["Zte"] - pt.dot(s["ZtX"], delta)  # (q,): Zᵀr
    c = right_times_T(w[None, :], segments, scales)[0]  # (q,): Tᵀ Zᵀ r
    AT = right_times_T(A, segments, scales)  # (q, q)
    G = right_times_T(AT.T, segments, scales)  # (q, q): (AT)ᵀT = TᵀAT
    L = pt.linalg.cholesky(G + var * pt.eye(q))  # (q, q) lower
    x = pt.linalg.solve_triangular(L, c, lower=True)  # (q,)
    return 2.0 * pt.log(pt.diag(L)).sum(), pt.dot(x, x)
