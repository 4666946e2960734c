"""No-pooling estimates: each group's own fit of its block's effects, as deviations from the
population (fixed-effect) prediction.

For group j of a block with columns Z_j, the no-pooling estimate maximises the group's own
likelihood with the fixed part held at the REML/Laplace estimate as an offset:
Gaussian (identity link): least squares of the residual y - Xβ̂ on Z_j (for a random intercept,
the group mean of the residual); other families and links: Fisher scoring on the group's own GLM
with offset Xβ̂, with the family's working weights and scores (`hierbayes.families`) under the
model's link, and the negative binomial's α given (without it, the α → ∞ limit: the Poisson
score). Other blocks' effects are not subtracted (for crossed designs this is a marginal
summary). A group with fewer observations than columns, a singular Z_jᵀWZ_j, or a separated GLM
(no finite maximum) gets NaN.
"""

from __future__ import annotations

import numpy as np

from ..design import Block, Design
from ..families import FAMILIES

_MAX_ITER = 50


def no_pooling(design: Design, beta: np.ndarray, block: Block, link: str | None = None,
               alpha: float | None = None):
    """(levels, terms) array of each group's own estimate, on the scale of the model's link
    (default: the family's); `alpha` is the negative binomial's α (the REML estimate)."""
    offset = design.X @ beta  # (n,) the fixed part, held; plus the formula's own offset
    if design.offset is not None:
        offset = offset + design.offset
    if design.family.response == "real" and design.family.link(link).name == "identity":
        known = design.known_sigma
        weights = np.ones(design.n_obs) if known is None else 1.0 / known**2
        return _weighted_ls(block, design.y - offset, weights)
    return _glm(design, block, offset, link, alpha)


def _group_sums(block: Block, weights: np.ndarray, target: np.ndarray):
    """Per group: Zᵀ W Z (J, k, k) and Zᵀ W target (J, k)."""
    J, k = block.n_levels, block.n_terms
    ztwz = np.zeros((J, k, k))
    np.add.at(ztwz, block.index, block.Z[:, :, None] * block.Z[:, None, :] * weights[:, None, None])
    ztwr = np.zeros((J, k))
    np.add.at(ztwr, block.index, block.Z * (weights * target)[:, None])
    return ztwz, ztwr


def _solve(ztwz: np.ndarray, ztwr: np.ndarray, counts: np.ndarray) -> np.ndarray:
    k = ztwz.shape[-1]
    out = np.full(ztwr.shape, np.nan)
    cond = np.linalg.cond(ztwz) if ztwz.size else np.array([])
    ok = (counts >= k) & np.isfinite(cond) & (cond < 1e10)
    if ok.any():
        out[ok] = np.linalg.solve(ztwz[ok], ztwr[ok][..., None])[..., 0]
    return out


def _weighted_ls(block: Block, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    ztwz, ztwr = _group_sums(block, weights, target)
    return _solve(ztwz, ztwr, block.counts)


def _glm(design: Design, block: Block, offset: np.ndarray, link, alpha) -> np.ndarray:
    family = design.family
    if family.name == "negative_binomial" and alpha is None:
        family = FAMILIES["poisson"]
    link = family.link(link)
    kwargs = {"trials": design.trials, "alpha": alpha}
    b = np.zeros((block.n_levels, block.n_terms))
    for _ in range(_MAX_ITER):
        eta = offset + np.einsum("nk,nk->n", block.Z, b[block.index])
        weight = family.working_weight(eta, link, **kwargs)
        score = family.score(design.y, eta, link, **kwargs)
        step = _weighted_ls(block, score / np.maximum(weight, 1e-300), weight)
        step = np.where(np.isfinite(step), step, 0.0)
        b = b + np.clip(step, -5, 5)  # damped scoring: separated groups drift, and are caught below
        if np.max(np.abs(step), initial=0) < 1e-10:
            break
    b[np.any(np.abs(b) > 30, axis=1)] = np.nan  # no finite maximum (e.g. all successes)
    b[block.counts < block.n_terms] = np.nan
    return b
