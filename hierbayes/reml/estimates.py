"""From the optimum to the estimates (lme4's `mkMerMod` stage): β, σ, covariances, modes.

`lmm_optimum` (here) and `glmm_estimates.glmm_optimum` each return an `Optimum`: everything
`results.RemlFit`'s one constructor stores, so LMM and GLMM fits are the same class with
different field values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .deviance import Deviance
from .layout import group_template
from .optimize import OptimResult
from .pls import PLSState, beta_covariance, sigma2, spherical_modes


@dataclass(frozen=True, eq=False)
class Estimates:
    beta: np.ndarray  # (p,)
    vcov: np.ndarray  # (p, p)
    sigma: float | None  # None without an estimated residual SD (GLMMs; known SDs)
    covariance: dict[str, np.ndarray]  # block name -> (k, k) covariance of its effects
    modes: dict[str, np.ndarray]  # block name -> (L, k) conditional modes b = Λu
    condcov: dict[str, np.ndarray]  # block name -> (L, k, k) conditional covariance of b
    group_condcov: dict[str, np.ndarray]  # grouping factor -> (L, K, K), all its blocks together


@dataclass(frozen=True, eq=False)
class Optimum:
    """What a fit is at its optimum, LMM or GLMM alike (see `results.RemlFit` for each field)."""

    state: object  # pls.PLSState (LMM) or pirls.PirlsState (GLMM) at the optimum
    criterion: float
    estimates: Estimates
    family: str
    link: str
    vcov_source: str  # "RX" or "Hessian"
    vcov_rx: np.ndarray
    sigma_known: bool
    sd_scale: float
    laplace: str | None = None  # GLMMs: "exact" or "lme4"
    dispersion: float | None = None  # negative binomial α
    separated: tuple[str, ...] = ()


def lmm_optimum(dev: Deviance, opt: OptimResult) -> Optimum:
    """The LMM at θ̂: β and its covariance σ̂²(XᵀV⁻¹X)⁻¹ ("RX", lmer's vcov), σ̂ (or the known
    scale σ0 with known residual SDs), the group effects' covariances and modes."""
    state = dev.state(opt.theta)
    est = estimates(dev, state)
    known = dev.sigma_fixed is not None
    return Optimum(state=state, criterion=float(state.criterion), estimates=est,
                   family=dev.design.family.name, link="identity", vcov_source="RX",
                   vcov_rx=est.vcov, sigma_known=known,
                   sd_scale=dev.sigma_fixed if known else est.sigma)


def estimates(dev: Deviance, state: PLSState) -> Estimates:
    layout, n, p = dev.layout, dev.layout.n, dev.layout.p
    s2 = sigma2(state, n, p, dev.method)  # the known σ0² when the residual SDs are known
    random = random_effects(dev.design, layout, dev.thetas.templates(state.theta),
                            spherical_modes(state), state.factor, s2)
    sigma = None if state.sigma2_fixed is not None else float(np.sqrt(s2))
    return Estimates(beta=layout.beta_ols + state.beta, vcov=s2 * beta_covariance(state),
                     sigma=sigma, **random)


def random_effects(design, layout, templates, u: np.ndarray, factor, s2: float) -> dict:
    """Covariances, modes b = Λu and conditional covariances s2·ΛM⁻¹Λᵀ of every block, from the
    spherical modes `u` and the factor of M at the optimum (s2 = σ², or 1 for a GLMM)."""
    inverse = factor.inverse_blocks(layout.groups)
    modes, condcov, group_condcov = {}, {}, {}
    for group, Minv in zip(layout.groups, inverse, strict=True):
        T = group_template(group, templates)
        L, K = group.n_levels, group.K
        b = u[group.offset:group.offset + group.q].reshape(L, K) @ T.T
        cov = s2 * np.einsum("ab,lbc,dc->lad", T, Minv, T, optimize=True)
        group_condcov[group.name] = cov
        for block_index, start, k in zip(group.blocks, group.term_offsets, group.sizes,
                                         strict=True):
            name = design.blocks[block_index].name
            modes[name] = b[:, start:start + k].copy()
            condcov[name] = cov[:, start:start + k, start:start + k].copy()
    covariance = {block.name: s2 * (T @ T.T) for block, T in zip(design.blocks, templates,
                                                                 strict=True)}
    return dict(covariance=covariance, modes=modes, condcov=condcov,
                group_condcov=group_condcov)
