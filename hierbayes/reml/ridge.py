"""The ridge view of a mixed model: its conditional modes as the solution of an explicit ridge
(ℓ2-penalised) regression at the fitted variance components.

At θ̂ the group effects b of a linear mixed model, with the fixed effects β, minimise

    Σ_i w_i (y_i − x_iβ − z_ib)² + bᵀ P b,      P = σ² Σ⁻¹ = (Λ_θ Λ_θᵀ)⁻¹,

where Σ is the fitted covariance of b (block diagonal: one k×k block per level of each block)
and Λ_θ lme4's relative covariance factor; w_i are the prior weights (1 without; σ0²/s_i² with
known residual SDs s_i, σ then being σ0 = `fit.sd_scale`). β is not penalised. For one random
intercept P = λ·I with λ = σ²/τ²: the ridge penalty is the ratio of the within- to the
between-group variance, and a level with n_j rows keeps the share n_j/(n_j + λ) of its own mean
deviation — partial pooling is ridge regression with a penalty chosen by the data.

For a GLMM (Laplace) the same holds on the link scale with β held at β̂: the modes maximise
ℓ(y | η = Xβ̂ + Zb) − ½ bᵀΣ⁻¹b, a ridge-penalised GLM, solved here by Newton's method (Fisher
scoring with the family's working weights and scores, `hierbayes.families`).

This module solves that problem directly (a sparse normal-equations solve; no PLS, no Λ
factorisation), so that `RemlFit.ridge_equivalent()` is an independent check of the modes.
A singular fit has a Σ without an inverse: its effects are then restricted to the range of Σ
(the directions with zero variance get an infinite penalty, i.e. b = 0 along them), solved in
the coordinates of Σ's eigenvectors. numpy/scipy only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from ..errors import HierbayesError
from ..tidy import ranef_frame
from .deviance import known_sigma_weights

_NULL = 1e-12  # eigenvalues of Σ below this share of its largest are zero variance
_NEWTON_STEPS = 100


def ridge_equivalent(fit, scale: float = 1.0) -> pd.DataFrame:
    """The group effects of `fit` from the explicit ridge problem with penalty ``scale``·P.

    A frame shaped like ``fit.ranef()`` (group, level, term, estimate, block) with, in
    ``attrs``: ``penalty`` (block name -> the k×k matrix P = σ²Σ⁻¹ times `scale`; for a
    singular block σ² times the pseudo-inverse, the null directions being held at 0, and all
    infinite when Σ = 0), ``lambda`` (block name -> σ²/τ² × `scale` for one-term blocks, inf
    when τ = 0), ``beta`` (the unpenalised fixed effects of the same solve), ``scale`` and
    ``restricted`` (blocks of zero variance in some direction). `scale` = 1 reproduces the
    conditional modes; other values trace the ridge path (smaller: towards no pooling).
    """
    if not (np.isfinite(scale) and scale > 0):
        raise HierbayesError(f"The penalty scale must be a positive number, got {scale!r}.")
    design = fit.design
    bases = [_basis(fit, block, scale) for block in design.blocks]
    Z = _reduced_z(design, bases)
    D = np.concatenate([b["penalty"] for b in bases])
    if fit.method == "Laplace":
        beta = np.asarray(fit.beta, float)
        c = _penalised_glm(fit, Z, D, beta)
    else:
        beta, c = _penalised_ls(fit, Z, D)
    estimates, start = [], 0
    for block, basis in zip(design.blocks, bases, strict=True):
        r = basis["B"].shape[1]
        coef = c[start:start + r * block.n_levels].reshape(block.n_levels, r)
        estimates.append((coef @ basis["B"].T).ravel())  # (L, k), level-major
        start += r * block.n_levels
    return _frame(fit, np.concatenate(estimates) if estimates else np.array([]), bases, beta,
                  scale)


def ridge_path(fit, scales) -> pd.DataFrame:
    """`ridge_equivalent` for each penalty scale, stacked with a `scale` column (the path from
    little pooling, small scales, to complete pooling, large ones)."""
    frames = [ridge_equivalent(fit, float(s)).assign(scale=float(s)) for s in scales]
    return pd.concat(frames, ignore_index=True)


def _basis(fit, block, scale: float) -> dict:
    """Σ_block = U diag(ev) Uᵀ: the basis B = U over the non-zero eigenvalues and the penalty
    σ²/ev (× scale) of each coordinate, repeated per level."""
    cov = np.asarray(fit.covariance[block.name], float)
    ev, U = np.linalg.eigh(cov)
    top = ev.max(initial=0.0)
    keep = ev > _NULL * top if top > 0 else np.zeros(ev.shape, bool)
    s2 = _scale2(fit)
    weights = scale * s2 / ev[keep]
    matrix = scale * s2 * (U[:, keep] / ev[keep]) @ U[:, keep].T
    if not keep.any():
        matrix = np.full_like(cov, np.inf)  # no variance at all: every effect held at 0
    return {"B": U[:, keep], "penalty": np.tile(weights, block.n_levels), "matrix": matrix,
            "restricted": bool((~keep).any())}


def _scale2(fit) -> float:
    """σ² of the penalty: σ̂² (or σ0² with known SDs) for an LMM, 1 on a GLMM's link scale."""
    if fit.method == "Laplace":
        return 1.0
    return float(fit.sd_scale) ** 2


def _reduced_z(design, bases) -> sp.csr_matrix:
    """(n, Σ r_b·L_b): each block's Z in its basis, one column group per level (level-major)."""
    parts = []
    n = design.n_obs
    for block, basis in zip(design.blocks, bases, strict=True):
        r = basis["B"].shape[1]
        ZB = block.Z @ basis["B"]  # (n, r)
        cols = block.index[:, None] * r + np.arange(r)
        parts.append(sp.csr_matrix((ZB.ravel(), (np.repeat(np.arange(n), r), cols.ravel())),
                                   shape=(n, block.n_levels * r)))
    return sp.hstack(parts, format="csr") if parts else sp.csr_matrix((n, 0))


def _row_weights(fit) -> np.ndarray:
    design = fit.design
    weights = getattr(fit.deviance, "weights", None)
    row = known_sigma_weights(design, weights)[1]
    return np.ones(design.n_obs) if row is None else np.asarray(row, float)


def _penalised_ls(fit, Z: sp.csr_matrix, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations of weighted least squares in (β, c) with the penalty diag(D) on c."""
    design = fit.design
    w = _row_weights(fit)
    X, y = design.X, design.y
    A = sp.hstack([sp.csr_matrix(X), Z], format="csc")
    lhs = (A.T @ sp.diags(w) @ A).tocsc() + sp.diags(np.concatenate([np.zeros(X.shape[1]), D]))
    rhs = A.T @ (w * y)
    solution = np.atleast_1d(spsolve(lhs.tocsc(), rhs))
    p = X.shape[1]
    return solution[:p], solution[p:]


def _penalised_glm(fit, Z: sp.csr_matrix, D: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Newton's method on ℓ(y | Xβ + Zc) − ½ cᵀdiag(D)c with β fixed (Fisher scoring for a
    non-canonical link: the same fixed point)."""
    design = fit.design
    family, link = design.family, design.family.link(fit.link)
    kwargs = {"trials": design.trials, "alpha": fit.dispersion}
    offset = design.X @ beta
    c = np.zeros(Z.shape[1])
    for _ in range(_NEWTON_STEPS):
        eta = offset + Z @ c
        w = family.working_weight(eta, link, **kwargs)
        gradient = Z.T @ family.score(design.y, eta, link, **kwargs) - D * c
        hessian = (Z.T @ sp.diags(w) @ Z).tocsc() + sp.diags(D)
        step = np.atleast_1d(spsolve(hessian.tocsc(), gradient))
        c = c + step
        if np.max(np.abs(step), initial=0.0) < 1e-12 * (1 + np.max(np.abs(c), initial=0.0)):
            break
    return c


def _frame(fit, estimates: np.ndarray, bases, beta, scale: float) -> pd.DataFrame:
    design = fit.design
    groups, levels, terms, blocks = [], [], [], []
    for block in design.blocks:
        L, k = block.n_levels, block.n_terms
        groups += [block.group] * (L * k)
        levels += list(np.repeat(np.asarray(block.levels, object), k))
        terms += list(np.tile(np.asarray(block.terms, object), L))
        blocks += [block.name] * (L * k)
    nan = np.full(len(estimates), np.nan)
    frame = ranef_frame(groups, levels, terms, estimates, nan, nan, nan,
                        "none: the ridge solution is a point estimate")
    frame = frame.drop(columns=["std_error", "lower", "upper"])
    frame["block"] = blocks
    frame.attrs["penalty"] = {block.name: basis["matrix"]
                              for block, basis in zip(design.blocks, bases, strict=True)}
    frame.attrs["lambda"] = {block.name: float(basis["matrix"][0, 0])
                             for block, basis in zip(design.blocks, bases, strict=True)
                             if block.n_terms == 1}
    frame.attrs["beta"] = pd.Series(beta, index=list(design.fixed_names), name="estimate")
    frame.attrs["scale"] = scale
    frame.attrs["restricted"] = [block.name for block, basis in zip(design.blocks, bases,
                                                                     strict=True)
                                 if basis["restricted"]]
    return frame
