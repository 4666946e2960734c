"""`Design` + `Priors` -> `pymc.Model`. Pure: builds the graph, never samples.

Variables of the model (the names `BayesFit` and the comparison rely on):

- ``beta`` (``fixed``): fixed effects, coordinate = term names (``Intercept``, ``Days``...).
  If the fixed-effect priors are not all of one distribution, each term gets its own free
  variable ``beta__<term>`` and ``beta`` is a deterministic stack of them.
- per block ``<b>`` (``Block.name``: the grouping factor, e.g. ``Subject``, ``batch:cask``, or
  ``g.1`` for a second block on ``g``), with dims ``<group>`` (levels) and ``<b>__term``:

  - ``sd_<b>`` (``<b>__term``): SDs of the block's effects;
  - ``corr_<b>`` (``<b>__term``, ``<b>__term2``): correlation matrix, correlated blocks with
    more than one term only; its free variable is ``chol_<b>`` (same dims), the Cholesky factor
    of the correlation matrix under LKJ(η), beside the free ``sd_<b>`` (as brms and Stan
    parametrise it: see `block_scale`);
  - ``z_<b>`` (``<group>``, ``<b>__term``): standard-normal raw effects (non-centred);
  - ``r_<b>`` (``<group>``, ``<b>__term``): the group effects themselves, deviations from the
    fixed effects, as lme4's ``ranef``: ``r = z * sd`` or, correlated, ``r_l = L z_l``.

  A block named in `centred` (`hierbayes.bayes.centring` chooses them) is hierarchically
  centred (Gelfand, Sahu and Carlin 1995): its free variable is ``c_<b>``, the group coefficients
  ``c_l ~ N(m, L Lᵀ)`` centred on the fixed effects of the same terms (``m_t = β_t`` for a term
  that is also a fixed effect, taken by the first centred block that has it; 0 otherwise), and
  ``r_<b> = c − m``, ``z_<b> = L⁻¹ r`` are deterministic: same posterior, same variables, another
  geometry for NUTS, in which β meets the data only through the groups.

- ``sigma`` (gaussian, student_t), ``nu`` (student_t), ``alpha`` (negative_binomial);
- ``y`` (``obs``): the observed response (successes for binomial); ``obs`` is labelled with the
  row labels of the caller's data frame.

Group effects are gathered by index: row ``i`` adds ``Z[i] · r[index[i]]``; no dense Z is built.
The data (response, predictors, level indices, trials, known SDs) and the numbers of the priors
enter as named shared variables (`hierbayes.bayes.graphdata`), so that models of one structure
share one graph and one compiled sampler (`hierbayes.bayes.compiled`). They are not ``pm.Data``
(nothing lands in ``constant_data``): prediction for new data is done in numpy from the posterior
draws (`hierbayes.bayes.predict`), which also lets unseen levels draw new effects.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .. import naming
from ..design import Block, Design
from ..errors import FamilyError
from ..families import check_link, get_link
from .graphdata import prior_params, shared
from .priors import Prior, Priors

OBS_DIM = naming.OBS_DIM


def model_coords(design: Design) -> dict[str, list]:
    coords: dict[str, list] = dict(design.coords)
    for block in design.blocks:
        if _is_correlated(block):
            coords[naming.corr_dim(block)] = list(block.terms)
    coords[OBS_DIM] = obs_labels(design)
    return coords


def obs_labels(design: Design) -> list:
    labels = np.asarray(design.row_labels)
    # netCDF stores numbers and strings, not arbitrary Python objects.
    if labels.dtype == object:
        labels = labels.astype(str)
    return labels.tolist()


def build_model(design: Design, priors: Priors, link: str | None = None,
                centred: tuple[str, ...] = ()) -> pm.Model:
    """The PyMC model of `design` under `priors` (see the module docstring for its variables);
    the blocks named in `centred` are centred."""
    link = check_link(design.family, link)
    located: set[str] = set()  # fixed effects already a centred block's location
    with pm.Model(coords=model_coords(design)) as model:
        eta = _fixed_part(design, priors)  # (n,)
        if design.offset is not None:  # offset(...) terms: known, no coefficient
            eta = eta + shared("offset", design.offset)  # (n,)
        for block in design.blocks:
            location = None
            if block.name in centred:
                location = _location(design, block, model, located)  # (k,)
            r = _block_effects(block, priors, location)  # (levels, terms)
            index = shared(f"index.{block.name}", block.index, np.int64)  # (n,)
            if block.n_terms == 1 and np.all(block.Z == 1.0):  # (1 | g): a gather, half the work
                eta = eta + r[:, 0][index]  # (n,)
                continue
            Z = shared(f"Z.{block.name}", block.Z)  # (n, k)
            # Row i adds Z[i] · r[index[i]]: gather by index, multiply row-wise, sum over terms.
            eta = eta + (r[index] * Z).sum(axis=1)  # (n,)
        _likelihood(_as_graph_data(design), priors, link, eta)
    return model


def _as_graph_data(design: Design) -> Design:
    """`design` with the response, trials and known SDs as shared variables (the likelihood reads
    these three fields)."""
    y = design.y
    if design.family.response in ("binary", "binomial", "count"):
        y = np.rint(y).astype(np.int64)  # counts: the observed variable's own dtype
    return dataclasses.replace(
        design,
        y=shared("y", y, y.dtype),
        trials=None if design.trials is None else shared("trials", design.trials, np.int64),
        known_sigma=None if design.known_sigma is None else shared("known_sigma",
                                                                   design.known_sigma),
    )


def _is_correlated(block: Block) -> bool:
    return block.correlated and block.n_terms > 1


def _fixed_part(design: Design, priors: Priors):
    names = design.fixed_names
    if not names:
        return pt.zeros(design.n_obs)
    beta = fixed_effects(names, [priors[name] for name in names])  # (p,)
    return pt.dot(shared("X", design.X), beta)  # (n, p) @ (p,) -> (n,)


def fixed_effects(names, priors: list[Prior]):
    first = priors[0]
    alike = all(
        p.distribution == first.distribution and p.params.keys() == first.params.keys()
        for p in priors
    )
    if alike:
        # One vector variable: parameters stacked along the `fixed` dimension.
        params = {k: np.array([p.params[k] for p in priors], dtype=float) for k in first.params}
        params = prior_params(naming.BETA, params)
        return first.pymc_class()(naming.BETA, **params, dims=naming.FIXED_DIM)
    parts = [
        p.pymc_class()(naming.beta_term(name), **prior_params(naming.beta_term(name), p.params))
        for name, p in zip(names, priors, strict=True)
    ]
    return pm.Deterministic(naming.BETA, pt.stack(parts), dims=naming.FIXED_DIM)


def _location(design: Design, block: Block, model, located: set) -> pt.TensorVariable:
    """(k,) the fixed effects a centred block's coefficients are centred on (0 for its terms
    that are no fixed effect, or are already the location of an earlier centred block)."""
    names = list(design.fixed_names)
    parts = []
    for term in block.terms:
        if term in names and term not in located:
            located.add(term)
            parts.append(model[naming.BETA][names.index(term)])
        else:
            parts.append(pt.constant(0.0, dtype="float64"))
    return pt.stack(parts)


def _block_effects(block: Block, priors: Priors, location=None):
    """``r_<b>`` (levels, terms) for one block: deterministic (non-centred), or deviations of the
    free coefficients from `location` (centred)."""
    levels, terms = block.level_dim, block.term_dim
    if location is not None:
        return _centred_effects(block, priors, location)
    z = pm.Normal(naming.z(block), 0.0, 1.0, dims=(levels, terms))  # (L, k)
    sd, chol = block_scale(block, priors)
    if chol is not None:
        # r_l = L z_l for every level l: (L, k) @ (k, k)^T -> (L, k).
        return pm.Deterministic(naming.r(block), pt.dot(z, chol.T), dims=(levels, terms))
    return pm.Deterministic(naming.r(block), z * sd, dims=(levels, terms))  # (L, k) * (k,)


def _centred_effects(block: Block, priors: Priors, location):
    """Free ``c_<b>`` ~ N(location, Σ) per level; ``r_<b>`` = c − location and ``z_<b>`` = L⁻¹ r
    recorded beside it."""
    dims = (block.level_dim, block.term_dim)
    sd, chol = block_scale(block, priors)
    if chol is None:
        c = pm.Normal(naming.coefficients(block), location, sd, dims=dims)  # (L, k)
        r = pm.Deterministic(naming.r(block), c - location, dims=dims)  # (L, k) - (k,)
        pm.Deterministic(naming.z(block), r / sd, dims=dims)
        return r
    c = pm.MvNormal(naming.coefficients(block), mu=location, chol=chol, dims=dims)  # (L, k)
    r = pm.Deterministic(naming.r(block), c - location, dims=dims)
    # z_l = L⁻¹ r_l for every level: solve L Zᵀ = Rᵀ, (k, k) \ (k, L) -> (k, L).
    z = pt.linalg.solve_triangular(chol, r.T, lower=True).T
    pm.Deterministic(naming.z(block), z, dims=dims)
    return r


def block_scale(block: Block, priors: Priors):
    """``sd_<b>`` (k,) and, for a correlated block, the Cholesky factor (k, k) of its covariance
    (else None); creates ``sd_<b>``, ``chol_<b>`` and ``corr_<b>`` (shared with the marginal
    model, `hierbayes.bayes.marginal`, so that both paths have the same priors and names).

    A correlated block's SDs and correlations are separate free variables: the covariance factor
    is diag(sd) L with L the Cholesky factor of the correlation matrix (LKJ). The same prior as
    PyMC's ``LKJCholeskyCov(sd_dist=...)``, whose sampler sees the covariance factor itself; there
    an SD near 0 narrows the scale of the factor's other entries of its row, a funnel: radon's
    ``(1 + floor | county)``, 4 × 1000 draws, seeds 1-15: min bulk ESS 267-1,197 and R-hat up
    to 1.02 that way, 819-1,557 and ≤ 1.006 this way."""
    terms = block.term_dim
    sd_name = naming.sd(block)
    sd_prior = priors[sd_name]
    sd = sd_prior.pymc_class()(sd_name, **prior_params(sd_name, sd_prior.params), dims=terms)
    if not _is_correlated(block):
        return sd, None  # (k,)
    eta = prior_params(naming.corr(block), priors[naming.corr(block)].params)["eta"]
    dims = (terms, naming.corr_dim(block))
    L = pm.LKJCorr(naming.chol(block), n=block.n_terms, eta=eta, dims=dims)  # (k, k) lower
    pm.Deterministic(naming.corr(block), pt.dot(L, L.T), dims=dims)
    return sd, sd[:, None] * L


def _likelihood(design: Design, priors: Priors, link_name: str, eta) -> None:
    family, y = design.family.name, design.y
    link = get_link(link_name)
    if family in ("gaussian", "student_t"):
        mu = link.inverse_tensor(eta, pt)
        # Known residual SDs (meta-analysis) are data, not a parameter.
        known = design.known_sigma
        sigma = known if known is not None else scalar_parameter(priors, naming.SIGMA)
        if family == "gaussian":
            pm.Normal("y", mu=mu, sigma=sigma, observed=y, dims=OBS_DIM)
        else:
            nu = scalar_parameter(priors, naming.NU)
            pm.StudentT("y", nu=nu, mu=mu, sigma=sigma, observed=y, dims=OBS_DIM)
    elif family in ("bernoulli", "binomial"):
        # PyMC's stable form for the logit. For probit and cloglog PyTensor's rewrites keep
        # log μ stable, and cloglog's log(1 − μ); probit's log(1 − μ) is −inf beyond η ≈ 8.3,
        # where μ rounds to 1.
        prob = {"logit_p": eta} if link.name == "logit" else {"p": link.inverse_tensor(eta, pt)}
        if family == "bernoulli":
            pm.Bernoulli("y", **prob, observed=y, dims=OBS_DIM)
        else:
            n = design.trials.astype("int64")
            pm.Binomial("y", n=n, **prob, observed=y, dims=OBS_DIM)
    elif family == "poisson":
        pm.Poisson("y", mu=link.inverse_tensor(eta, pt), observed=y, dims=OBS_DIM)
    elif family == "negative_binomial":
        alpha = scalar_parameter(priors, naming.ALPHA)
        mu = link.inverse_tensor(eta, pt)
        pm.NegativeBinomial("y", mu=mu, alpha=alpha, observed=y, dims=OBS_DIM)
    elif family == "gamma":  # shape α, mean μ: rate α/μ, variance μ²/α
        alpha = scalar_parameter(priors, naming.ALPHA)
        mu = link.inverse_tensor(eta, pt)
        pm.Gamma("y", alpha=alpha, beta=alpha / mu, observed=y, dims=OBS_DIM)
    else:
        raise FamilyError(f"The Bayesian engine has no likelihood for family {family!r}.")


def scalar_parameter(priors: Priors, name: str):
    prior = priors[name]
    return prior.pymc_class()(name, **prior_params(name, prior.params))
