"""After marginal NUTS: the group effects, drawn exactly, and the pointwise log-likelihood.

Given one posterior draw of β, T (the block factors) and σ, the group effects of a Gaussian model
are Gaussian. In the standard path's non-centred units ``z`` (``b = T z``, prior ``z ~ N(0, I)``)
their conditional is

    z | β, T, σ, y ~ N(P⁻¹c, σ² P⁻¹),    P = σ²I + TᵀZᵀZT,   c = TᵀZᵀ(y - Xβ),

(see `.model`), drawn as ``z = L⁻ᵀ(L⁻¹c + σξ)`` with ``P = LLᵀ`` and ``ξ ~ N(0, I)``.
One such draw per posterior draw makes (θ, z) an exact draw from the joint posterior, so the
posterior gets ``z_<b>`` and ``r_<b>`` (= T z per level) with the dims and coordinates of the
standard path, and everything that reads them (ranef, predict, posterior predictive, compare)
works unchanged. Draws are vectorized over posterior draws and levels, in chunks that bound the
memory, from a generator seeded by the fit's seed.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg as sla
import xarray as xr

from ... import naming
from ...blas import one_blas_thread
from ...design import Design
from ..builder import obs_labels
from ..posterior import SAMPLE_DIMS, fixef_draws
from . import linalg as small
from .model import MarginalPlan, Segment, factor_entries, grouped_system
from .schur import draw_effects_cached
from .schur_gradient import DESIGN

_CHUNK_VALUES = 4_000_000  # floats per chunk of draws for the k × k (or q × q) matrices
ATTR = "hierbayes_marginalize"  # posterior attribute that says which path a fit took


def complete_posterior(idata: xr.DataTree, design: Design, plan: MarginalPlan, seed: int):
    """Add ``z_<b>``, ``r_<b>`` to the posterior and the observed data, in place (the pointwise
    log-likelihood is `pointwise_log_likelihood`, computed on demand by the fit)."""
    posterior = idata["posterior"].to_dataset()
    rng = np.random.default_rng([seed, 0x6D61])  # its own stream, derived from the fit's seed
    with one_blas_thread():
        effects = draw_group_effects(plan, design, posterior, rng)
    for name, (values, block) in effects.items():
        posterior[name] = xr.DataArray(
            values,
            dims=(*SAMPLE_DIMS, block.level_dim, block.term_dim),
            coords={block.level_dim: list(block.levels), block.term_dim: list(block.terms)},
        )
    posterior.attrs[ATTR] = plan.describe()
    idata["posterior"] = xr.DataTree(posterior)
    if design.moments is not None:  # from a Dask frame: no rows for pointwise terms or y
        return idata
    # The marginal model observes no variable: record y as the standard model does.
    observed = xr.Dataset({naming.RESPONSE: (naming.OBS_DIM, design.y)},
                          coords={naming.OBS_DIM: obs_labels(design)})
    idata["observed_data"] = xr.DataTree(observed)
    return idata


def draw_group_effects(plan: MarginalPlan, design: Design, posterior: xr.Dataset, rng) -> dict:
    """``z_<b>`` and ``r_<b>`` as (chain, draw, levels, k) arrays, each with its block."""
    shape = tuple(posterior.sizes[d] for d in SAMPLE_DIMS)
    params = _parameters(plan, posterior)  # (S, ...) arrays
    S = shape[0] * shape[1]
    per_draw = plan.size if plan.path == "schur" else plan.size**2 * plan.stats.get("levels", 1)
    step = max(1, _CHUNK_VALUES // max(per_draw, 1))
    draw = {"grouped": _grouped_draw, "dense": _dense_draw, "schur": _schur_draw}[plan.path]
    chunks = [draw(plan, _take(params, slice(i, i + step)), rng) for i in range(0, S, step)]
    u = np.concatenate(chunks, axis=0)  # (S, J, k) grouped; (S, q) dense
    out = {}
    for seg, (sd, chol) in zip(plan.segments, params["scales"], strict=True):
        z = _segment_values(u, seg)  # (S, levels, k)
        r = z * sd[:, None, :] if chol is None else np.matmul(z, chol.swapaxes(-1, -2))
        out[naming.z(seg.block)] = (z.reshape(*shape, *z.shape[1:]), seg.block)
        out[naming.r(seg.block)] = (r.reshape(*shape, *r.shape[1:]), seg.block)
    return out


def _segment_values(u: np.ndarray, seg: Segment) -> np.ndarray:
    """One block's (S, levels, k) effects out of the grouped (S, J, k) or dense (S, q) draws."""
    if u.ndim == 3:
        return u[:, :, seg.offset : seg.offset + seg.width]
    cols = u[:, seg.offset : seg.offset + seg.repeat * seg.step]  # (S, levels·step), level-major
    return cols.reshape(u.shape[0], seg.repeat, seg.step)[:, :, seg.start : seg.start + seg.width]


def _parameters(plan: MarginalPlan, posterior: xr.Dataset) -> dict:
    """Flattened (S, ...) draws of δ = β - β̂, σ and each block's (sd, chol or None)."""
    beta = _flat(fixef_draws(posterior), "term")  # (S, p)
    scales = []
    for seg in plan.segments:
        block = seg.block
        sd = _flat(posterior[naming.sd(block)], block.term_dim)  # (S, k)
        chol = None
        if naming.corr(block) in posterior:
            corr = _flat(posterior[naming.corr(block)], block.term_dim, naming.corr_dim(block))
            # chol(diag(sd) C diag(sd)) = diag(sd) chol(C): the factor the model used.
            chol = sd[:, :, None] * np.linalg.cholesky(corr)  # (S, k, k)
        scales.append((sd, chol))
    sigma = _flat(posterior[naming.SIGMA])  # (S,)
    return {"delta": beta - plan.stats["beta_hat"], "sigma": sigma, "scales": scales}


def _take(params: dict, rows: slice) -> dict:
    scales = [(sd[rows], None if chol is None else chol[rows]) for sd, chol in params["scales"]]
    return {"delta": params["delta"][rows], "sigma": params["sigma"][rows], "scales": scales}


def _flat(array: xr.DataArray, *dims: str) -> np.ndarray:
    values = array.transpose(*SAMPLE_DIMS, *dims).to_numpy()
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])


def _grouped_draw(plan: MarginalPlan, params: dict, rng) -> np.ndarray:
    """(S, J, k) draws of z for one chunk of posterior draws, all levels at once."""
    s, k = plan.stats, plan.size
    delta, sigma = params["delta"], params["sigma"][:, None]  # (S, p), (S, 1)
    # Entries of T as (S, 1) columns, so that they broadcast against the levels.
    scales = [
        (sd.T[..., None], None if chol is None else chol.transpose(1, 2, 0)[..., None])
        for sd, chol in params["scales"]
    ]
    w = [s["Zte"][:, a] - delta @ s["ZtX"][a].T for a in range(k)]  # (S, J) each: Z_jᵀr_j
    P, c = grouped_system(s["A"], w, factor_entries(plan.segments, scales, k), sigma**2)
    L = small.cholesky(P)  # entries (S, J)
    x = small.forward(L, c)
    noise = rng.standard_normal((k, *x[0].shape))  # (k, S, J)
    u = small.backward(L, [x[a] + sigma * noise[a] for a in range(k)])
    return np.stack(u, axis=-1)  # (S, J, k)


def _dense_draw(plan: MarginalPlan, params: dict, rng) -> np.ndarray:
    """(S, q) draws of z for one chunk of posterior draws (several grouping factors)."""
    s, q = plan.stats, plan.size
    delta, sigma = params["delta"], params["sigma"]  # (S, p), (S,)
    Ztr = s["Zte"][None] - delta @ s["ZtX"].T  # (S, q)
    scales = params["scales"]
    c = _times_T(Ztr[:, None, :], plan.segments, scales)[:, 0]  # (S, q)
    AT = _times_T(np.broadcast_to(s["A"], (len(sigma), q, q)), plan.segments, scales)
    G = _times_T(AT.swapaxes(-1, -2), plan.segments, scales)  # (S, q, q): TᵀAT
    L = np.linalg.cholesky(G + (sigma**2)[:, None, None] * np.eye(q))  # (S, q, q)
    x = sla.solve_triangular(L, c[..., None], lower=True)  # (S, q, 1)
    noise = rng.standard_normal((len(sigma), q, 1))
    u = sla.solve_triangular(L, x + sigma[:, None, None] * noise, lower=True, trans="T")
    return u[..., 0]  # (S, q)


def _schur_draw(plan: MarginalPlan, params: dict, rng) -> np.ndarray:
    """(S, q) draws of z, one factorization per posterior draw (numba, `.schur_gradient`)."""
    s = plan.stats
    delta, var = params["delta"], params["sigma"] ** 2  # (S, p), (S,)
    T = np.zeros((len(var), len(s["K"]), s["kmax"], s["kmax"]))  # (S, factors, Kmax, Kmax)
    for seg, f, (sd, chol) in zip(plan.segments, s["factor_of"], params["scales"], strict=True):
        a, b = seg.start, seg.start + seg.width
        T[:, f, a:b, a:b] = chol if chol is not None else sd[:, :, None] * np.eye(seg.width)
    noise = rng.standard_normal((len(var), plan.n_effects))
    data = [float(s["ete"]), *(s[k] for k in ("Xte", "XtX", "Zte", "ZtX"))]
    design = tuple(s[k] for k in DESIGN)

    def one(i: int) -> np.ndarray:  # the kernel releases the GIL: draws run on all cores
        return draw_effects_cached(delta[i], float(var[i]), T[i], noise[i], *data, design)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return np.stack(list(pool.map(one, range(len(var)))))


def _times_T(M: np.ndarray, segments, scales) -> np.ndarray:
    """M T per draw for the dense layout: M (S, m, q), T block diagonal from per-draw factors."""
    S, m, _ = M.shape
    parts = []
    for seg, (sd, chol) in zip(segments, scales, strict=True):
        cols = M[:, :, seg.offset : seg.offset + seg.repeat * seg.width]  # (S, m, levels·k)
        rows = cols.reshape(S, m * seg.repeat, seg.width)  # (S, m·levels, k)
        rows = rows * sd[:, None, :] if chol is None else np.matmul(rows, chol)
        parts.append(rows.reshape(S, m, seg.repeat * seg.width))
    return np.concatenate(parts, axis=-1)  # (S, m, q)


def pointwise_log_likelihood(design: Design, posterior: xr.Dataset) -> xr.Dataset:
    """log N(y_i | X_iβ + offset_i + Σ_b Z_b,i r_b[level_i], σ) per draw and row, (chain, draw,
    obs).

    Conditional on the drawn group effects, as the standard path's ``log_likelihood`` is (which
    PyMC computes from the same conditional Gaussian), so LOO compares like with like.
    """
    shape = tuple(posterior.sizes[d] for d in SAMPLE_DIMS)
    beta = _flat(fixef_draws(posterior), "term")  # (S, p)
    sigma = _flat(posterior[naming.SIGMA])[:, None]  # (S, 1)
    effects = [
        _flat(posterior[naming.r(b)], b.level_dim, b.term_dim) for b in design.blocks
    ]  # (S, L, k) each
    out = np.empty((beta.shape[0], design.n_obs))
    step = max(1, _CHUNK_VALUES // max(design.n_obs, 1))
    for i in range(0, beta.shape[0], step):
        rows = slice(i, i + step)
        eta = beta[rows] @ design.X.T  # (s, n)
        if design.offset is not None:
            eta += design.offset
        for block, r in zip(design.blocks, effects, strict=True):
            for t in range(block.n_terms):  # one term at a time keeps memory at s × n
                eta += r[rows, block.index, t] * block.Z[:, t]
        z = (design.y - eta) / sigma[rows]  # (s, n)
        out[rows] = -0.5 * np.log(2 * np.pi) - np.log(sigma[rows]) - 0.5 * z**2
    values = out.reshape(*shape, design.n_obs)
    coords = {d: posterior[d].values for d in SAMPLE_DIMS}
    coords[naming.OBS_DIM] = obs_labels(design)
    return xr.Dataset({naming.RESPONSE: ((*SAMPLE_DIMS, naming.OBS_DIM), values)}, coords=coords)
