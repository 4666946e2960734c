"""The shrinkage factor λ of each group, draw by draw.

Given the hyperparameters of one draw, group j's effects have conditional covariance
V_j = (Z_jᵀ W Z_j + Σ⁻¹)⁻¹ and λ = 1 − diag(V_j)/diag(Σ): the weight of the group's own data
(1 = no pooling, 0 = complete pooling). W is 1/σ² for a Gaussian identity-link model (then λ of a
random intercept is τ²/(τ² + σ²/n_j)); with known residual SDs s_i, W = diag(1/s_i²). Otherwise W
is the GLM working weight m·μ'²/(V(μ)·φ) of the model's own family and link (`draws.link`) at
the draw's linear predictor, with the draw's α for the negative binomial: the Laplace
approximation of the same quantity.
The REML λ̂ is the same formula at θ̂.
Other blocks' effects enter only through W, i.e. each block is treated given the rest.
"""

from __future__ import annotations

import numpy as np

from .draws import PosteriorDraws


def posterior_lambda(draws: PosteriorDraws, design, i: int) -> np.ndarray:
    """(S, J, k) draws of λ for every level and term of block `i`."""
    block, cov = design.blocks[i], draws.cov[i]
    ztwz = _ztwz(draws, design, block)  # (S, J, k, k)
    jitter = 1e-12 * np.eye(block.n_terms)
    precision = ztwz + np.linalg.inv(cov + jitter)[:, None]
    cond = np.linalg.inv(precision)
    cond_var = np.diagonal(cond, axis1=2, axis2=3)
    prior_var = np.diagonal(cov, axis1=1, axis2=2)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(prior_var > 0, 1 - cond_var / prior_var, 0.0)


def _ztwz(draws: PosteriorDraws, design, block) -> np.ndarray:
    k, J = block.n_terms, block.n_levels
    link = design.family.link(draws.link)
    if design.family.response == "real" and link.name == "identity":
        known = design.known_sigma
        w = np.ones(design.n_obs) if known is None else 1.0 / known**2
        ztwz = np.zeros((J, k, k))
        np.add.at(ztwz, block.index, block.Z[:, :, None] * block.Z[:, None, :] * w[:, None, None])
        if known is not None:  # W = diag(1/s_i²): the same for every draw
            return np.broadcast_to(ztwz, (draws.beta.shape[0], J, k, k))
        return ztwz[None] / draws.sigma[:, None, None, None] ** 2
    weights = _glm_weights(draws, design, link)  # (S, n)
    out = np.zeros((weights.shape[0], J, k, k))
    for a in range(k):
        for b in range(a, k):
            zz = block.Z[:, a] * block.Z[:, b]
            for s in range(weights.shape[0]):
                out[s, :, a, b] = np.bincount(block.index, zz * weights[s], minlength=J)
            out[:, :, b, a] = out[:, :, a, b]
    return out


def _glm_weights(draws: PosteriorDraws, design, link) -> np.ndarray:
    """(S, n) working weights at each draw's linear predictor."""
    eta = draws.beta @ design.X.T
    for block, effects in zip(design.blocks, draws.effects, strict=True):
        eta = eta + np.einsum("nk,snk->sn", block.Z, effects[:, block.index, :])
    alpha = None if draws.alpha is None else draws.alpha[:, None]  # (S, 1)
    sigma = design.known_sigma
    if sigma is None and draws.sigma is not None:
        sigma = draws.sigma[:, None]  # (S, 1)
    return design.family.working_weight(eta, link, trials=design.trials, alpha=alpha,
                                        sigma=sigma)
