"""Posterior (or prior) draws in the layout the comparison needs, taken from a `BayesFit`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import naming

_DRAW = "__hierbayes_draw__"


@dataclass(frozen=True)
class PosteriorDraws:
    """S draws of every parameter the comparison uses (chains stacked, thinned to at most S)."""

    beta: np.ndarray  # (S, p) fixed effects
    sigma: np.ndarray | None  # (S,) residual SD, Gaussian families only
    cov: tuple[np.ndarray, ...]  # per block (S, k, k) covariance of the group effects
    effects: tuple[np.ndarray, ...]  # per block (S, J, k) group effects (deviations)
    alpha: np.ndarray | None = None  # (S,) negative binomial dispersion
    link: str | None = None  # the model's link (None: the family's default)


def varcorr_draws(draws: PosteriorDraws, design) -> dict[tuple, np.ndarray]:
    """(group, term1, term2) -> draws, with the row keys of ``varcorr()``."""
    out: dict[tuple, np.ndarray] = {}
    for block, cov in zip(design.blocks, draws.cov, strict=True):
        sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0, None))
        for a, term in enumerate(block.terms):
            out[(block.group, term, None)] = sd[:, a]
        for a in range(block.n_terms):
            for b in range(a + 1, block.n_terms):
                with np.errstate(invalid="ignore", divide="ignore"):
                    corr = cov[:, a, b] / (sd[:, a] * sd[:, b])
                out[(block.group, block.terms[a], block.terms[b])] = corr
    if draws.sigma is not None:
        out[("Residual", None, None)] = draws.sigma
    return out


def from_fit(bayes, max_draws: int = 1000, prior: bool = False) -> PosteriorDraws:
    """Draws of a `BayesFit`'s posterior, or of its prior (sampled from the model afresh).

    Uses the variable names of `hierbayes.bayes.builder`: ``beta``, ``sd_<b>``, ``corr_<b>``,
    ``r_<b>``, ``sigma`` and ``alpha``.
    """
    design = bayes.design
    names = _names(design)
    if prior:
        values = _prior_values(bayes.model, names, max_draws)
    else:
        values = _posterior_values(bayes.idata["posterior"].to_dataset(), names, max_draws)
    covs, effects = [], []
    for block in design.blocks:
        sd = values[naming.sd(block)].reshape(-1, block.n_terms)
        corr = values.get(naming.corr(block))
        if corr is None:
            corr = np.broadcast_to(np.eye(block.n_terms), (*sd.shape, block.n_terms))
        covs.append(sd[:, :, None] * corr * sd[:, None, :])
        effects.append(values[naming.r(block)])
    beta = values.get(naming.BETA, np.zeros((len(covs[0]) if covs else 1, 0)))
    return PosteriorDraws(
        beta=beta, sigma=values.get(naming.SIGMA), cov=tuple(covs), effects=tuple(effects),
        alpha=values.get(naming.ALPHA), link=getattr(bayes, "link", None),
    )


def _names(design) -> list[str]:
    names = [naming.BETA] if design.fixed_names else []
    for block in design.blocks:
        names += [naming.sd(block), naming.r(block)]
        if block.correlated and block.n_terms > 1:
            names.append(naming.corr(block))
    if design.family.name in ("gaussian", "student_t") and design.known_sigma is None:
        names.append(naming.SIGMA)
    if design.family.name == "negative_binomial":
        names.append(naming.ALPHA)
    return names


def _posterior_values(posterior, names: list[str], max_draws: int) -> dict[str, np.ndarray]:
    # A private name: a grouping factor may itself be called "sample".
    stacked = posterior[names].stack({_DRAW: ("chain", "draw")})
    n = stacked.sizes[_DRAW]
    keep = np.unique(np.linspace(0, n - 1, min(n, max_draws)).astype(int))
    stacked = stacked.isel({_DRAW: keep})
    return {name: np.moveaxis(stacked[name].to_numpy(), -1, 0) for name in names}


def _prior_values(model, names: list[str], draws: int) -> dict[str, np.ndarray]:
    import pymc as pm

    # Group effects under the prior are not needed (λ uses only hyperparameters and, for GLMs,
    # the posterior linear predictor); skip them to keep this cheap.
    wanted = [n for n in names if not n.startswith("r_")]
    values = pm.draw([model[n] for n in wanted], draws=draws, random_seed=20261126)
    out = dict(zip(wanted, (np.asarray(v) for v in values), strict=True))
    for n in names:
        out.setdefault(n, None)
    return out
