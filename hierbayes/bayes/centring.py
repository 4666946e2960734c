"""Centred or non-centred group effects, chosen per block from how informative its levels' data are.

A level's effect r_j has prior N(0, Σ) and, near the posterior mode, a conditional covariance C_j
(the Laplace/REML conditional covariance of its mode). The share of the data in its precision,

    κ_j = 1 − tr(Σ⁻¹ C_j) / k      (one term: κ_j = n_j I σ_b² / (1 + n_j I σ_b²)),

is near 0 for a level with little data (its effect is pinned by the prior: r_j and σ_b form a
funnel, which the non-centred form ``r = T z`` removes) and near 1 for a level with much data (its
effect is pinned by the data, so ``r = T z`` ties z to σ_b instead; the centred form r ~ N(0, Σ)
then mixes far better — Papaspiliopoulos, Roberts and Sköld 2007; Betancourt and Girolami 2015).
A block is centred when the median κ_j of its levels exceeds `THRESHOLD`, κ_j taken at the low
end of the SDs' plausible range: Σ shrunk by two standard errors of a log SD, 1/√(2(J − 1)) for
J levels, with each level's data precision C_j⁻¹ − Σ⁻¹ kept. A block of few levels has a wide
posterior for its SD, down to values where its data no longer dominate and the centred form
funnels (cbpp's 15 herds: κ 0.68 at the estimate, 0.49 at the low end).

Σ and C_j come from the REML engine's fit of the same design (Laplace for GLMMs): a fraction of a
second, a small share of a NUTS run. Where it cannot fit (a family it lacks, a failed fit) every
block stays non-centred, the standard choice.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..design import Design

THRESHOLD = 0.5


def data_share(design: Design, link: str) -> dict[str, float]:
    """Block name -> median over its levels of κ_j; empty when the REML fit is unavailable."""
    fit = _reml_fit(design, link)
    if fit is None:
        return {}
    shares = {}
    for block in design.blocks:
        cov, cond = fit.covariance.get(block.name), fit.condcov.get(block.name)
        if cov is None or cond is None:
            continue
        shrink = np.exp(-2.0 / np.sqrt(2.0 * max(block.n_levels - 1, 1)))  # on the SDs
        low = _level_shares(np.asarray(cov), np.asarray(cond), shrink**2)
        shares[block.name] = float(np.median(low))
    return shares


def _level_shares(cov: np.ndarray, cond: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """κ_j for every level, (levels,), from Σ (k, k) and C (levels, k, k), at ``factor · Σ``
    with each level's data precision C_j⁻¹ − Σ⁻¹ unchanged."""
    k = cov.shape[0]
    scale = np.sqrt(np.diag(cov))
    if not np.all(scale > 1e-8 * max(1.0, float(scale.max(initial=0.0)))):
        return np.zeros(cond.shape[0])  # a vanishing SD: the prior pins every level
    try:
        prior = np.linalg.inv(cov)  # Σ⁻¹
        data = np.linalg.inv(cond) - prior  # C_j⁻¹ − Σ⁻¹, (levels, k, k)
        moved = np.linalg.inv(prior / factor + data)  # C_j at factor · Σ
    except np.linalg.LinAlgError:
        return np.zeros(cond.shape[0])
    ratio = np.einsum("ab,lbc->lac", prior / factor, moved)
    return np.clip(1.0 - np.trace(ratio, axis1=1, axis2=2) / k, 0.0, 1.0)


def _reml_fit(design: Design, link: str):
    from ..reml import fit_reml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular or unconverged fits still say which way
        try:
            return fit_reml(design, link=link)
        except Exception:  # any failure: keep the non-centred default
            return None


def choose(design: Design, link: str, centred=None) -> tuple[str, ...]:
    """Names of the blocks to centre. `centred`: None (choose from the data), True or False (all
    blocks), or block names."""
    names = [b.name for b in design.blocks]
    if centred is None:
        shares = data_share(design, link) if design.blocks else {}
        return tuple(n for n in names if shares.get(n, 0.0) > THRESHOLD)
    if centred is True or centred is False:
        return tuple(names) if centred else ()
    unknown = [n for n in centred if n not in names]
    if isinstance(centred, str) or unknown:
        from ..errors import HierbayesError

        raise HierbayesError(
            f"centred takes None, True, False or block names ({', '.join(names) or 'none'}); "
            f"got {centred!r}."
        )
    return tuple(n for n in names if n in set(centred))
