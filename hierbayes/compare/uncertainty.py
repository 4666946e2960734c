"""How uncertain each group's coefficient is, on both sides, beyond the conditional SD.

REML's conditional SD of a group effect b_jt (lme4's ``condVar``, `RemlFit.condcov`) holds both
θ̂ and β̂ fixed. The posterior SD of b_jt carries the uncertainty of β as well: when the fixed
effect is poorly determined (few groups, large between-group SD), b_jt and β_t are strongly
negatively correlated in the posterior, and b_jt alone looks far more uncertain than the group's
coefficient β_t + b_jt. To tell that apart from the uncertainty in θ, the comparison measures
both sides on the group's total coefficient:

- REML: the prediction-error SD of β̂_t + b̂_jt given θ̂ (Henderson's mixed-model equations: the
  joint error covariance of (β̂, b̂) is the inverse of their coefficient matrix); for a term
  without a fixed effect, the prediction-error SD of b̂_jt alone, which still includes β's
  uncertainty through the other columns;
- posterior: the SD of the draws of β_t + b_jt (or b_jt).

With u = Λ⁻¹b spherical, M = ΛᵀZᵀWZΛ + I, the conditional covariance of b is ΛM⁻¹Λᵀ
(REML's condcov), S = XᵀWX − XᵀWZΛ M⁻¹ ΛᵀZᵀWX is the precision of β̂ and, with H = ΛM⁻¹ΛᵀZᵀWX,
Var(b̂ − b) = condcov + H S⁻¹ Hᵀ and Cov(β̂ − β, b̂ − b) = −S⁻¹Hᵀ. W is 1/σ̂² (Gaussian), the known
1/s_i², or the GLM working weights at the Laplace mode. Every block enters Z together, so crossed
and nested designs are exact too.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from ..reml.glmfamily import GlmFamily
from .draws import PosteriorDraws


def reml_total_sd(reml, design) -> list[np.ndarray]:
    """Per block, (levels, terms) prediction-error SDs of β̂_t + b̂_jt given θ̂ (of b̂_jt when
    term t has no fixed effect)."""
    w = _weights(reml, design)
    Z, lam, offsets = _random_matrices(reml, design)
    X = design.X
    wx = X * w[:, None]
    ltzwx = lam.T @ (Z.T @ wx)  # (q, p)
    m = (lam.T @ Z.T @ sparse.diags(w) @ Z @ lam + sparse.identity(lam.shape[0])).tocsc()
    solved = splu(m).solve(np.asarray(ltzwx)) if ltzwx.size else np.zeros_like(ltzwx)
    h = lam @ solved  # (q, p): ΛM⁻¹ΛᵀZᵀWX
    s_inv = np.linalg.pinv(X.T @ wx - ltzwx.T @ solved)
    hs = h @ s_inv  # (q, p)
    extra = np.einsum("qp,qp->q", hs, h)  # diag(H S⁻¹ Hᵀ)
    out = []
    for block, start in zip(design.blocks, offsets, strict=True):
        k, J = block.n_terms, block.n_levels
        rows = start + np.arange(J * k).reshape(J, k)  # level-major, as Λ is built
        cond = np.diagonal(reml.condcov[block.name], axis1=1, axis2=2)  # (J, k)
        var = cond + extra[rows]
        for t, term in enumerate(block.terms):
            if term in design.fixed_names:
                f = design.fixed_names.index(term)
                var[:, t] += s_inv[f, f] - 2 * hs[rows[:, t], f]
        out.append(np.sqrt(np.clip(var, 0, None)))
    return out


def posterior_total(draws: PosteriorDraws, design) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per block, (levels, terms) posterior SD of β_t + b_jt and posterior correlation of β_t
    with b_jt (SD of b_jt and NaN for a term without a fixed effect)."""
    out = []
    for block, effects in zip(design.blocks, draws.effects, strict=True):
        sd = effects.std(axis=0, ddof=1)
        corr = np.full(sd.shape, np.nan)
        for t, term in enumerate(block.terms):
            if term not in design.fixed_names:
                continue
            beta = draws.beta[:, design.fixed_names.index(term)]
            sd[:, t] = (beta[:, None] + effects[:, :, t]).std(axis=0, ddof=1)
            corr[:, t] = _correlation(beta, effects[:, :, t])
        out.append((sd, corr))
    return out


def _correlation(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Correlation of x (S,) with each column of ys (S, J); NaN where either is constant."""
    xc, yc = x - x.mean(), ys - ys.mean(axis=0)
    den = np.sqrt((xc**2).sum() * (yc**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, xc @ yc / np.where(den > 0, den, 1), np.nan)


def _weights(reml, design) -> np.ndarray:
    if design.family.response == "real":
        if design.known_sigma is not None:
            return 1.0 / design.known_sigma**2
        return np.full(design.n_obs, 1.0 / reml.sigma**2)
    eta = design.X @ reml.beta
    for block in design.blocks:
        eta = eta + np.einsum("nk,nk->n", block.Z, reml.modes[block.name][block.index])
    family = GlmFamily(design, reml.link)
    if getattr(reml, "dispersion", None) is not None:
        family.alpha = reml.dispersion
    return family.working(eta).weights


def _random_matrices(reml, design):
    """Sparse Z (n × q) and Λ (q × q, ΛΛᵀ = the blocks' covariances), level-major per block, and
    each block's first column."""
    z_parts, lam_parts, offsets, start = [], [], [], 0
    n = design.n_obs
    for block in design.blocks:
        k, J = block.n_terms, block.n_levels
        cols = block.index[:, None] * k + np.arange(k)[None, :]
        z_parts.append(sparse.csr_matrix((block.Z.ravel(), (np.repeat(np.arange(n), k),
                                                             cols.ravel())), shape=(n, J * k)))
        lam_parts.append(sparse.kron(sparse.identity(J), _root(reml.covariance[block.name])))
        offsets.append(start)
        start += J * k
    return sparse.hstack(z_parts).tocsr(), sparse.block_diag(lam_parts).tocsr(), offsets


def _root(cov: np.ndarray) -> np.ndarray:
    """T with T Tᵀ = cov for a positive semi-definite cov (singular at the boundary)."""
    values, vectors = np.linalg.eigh(np.atleast_2d(cov))
    return vectors * np.sqrt(np.clip(values, 0, None))
