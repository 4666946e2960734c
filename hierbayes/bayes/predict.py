"""Predictions from posterior draws, computed in numpy (not by re-running the PyMC graph).

For each posterior draw s and new row i: ``eta = X_i · beta_s + Σ_blocks Z_i · r_s[level_i]``
(+ the formula's offset).

Group effects (``group_effects=``):

- ``"sample_new"`` (default): a level seen in training uses its posterior effect; a level not seen
  gets, for each draw, a fresh effect drawn from that draw's fitted population distribution,
  ``N(0, Σ_s)`` (Σ from ``sd_<b>`` and ``corr_<b>``), shared by all rows of that level. This
  carries the between-group uncertainty into the prediction (brms' ``"uncertainty"``, rstanarm's
  new-level sampling);
- ``"zero_new"``: seen levels as above, unseen levels get effect 0 (lme4's
  ``allow.new.levels = TRUE``): a prediction for a typical new group, without its spread;
- ``"population"``: no group effects at all (lme4's ``re.form = NA``).

``kind``: ``"link"`` (the linear predictor), ``"mean"`` (the expected response; for binomial the
probability per trial, as lme4's ``type = "response"``) or ``"response"`` (a draw of the response
itself, i.e. the posterior predictive; binomial new data must then hold the ``cbind`` columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .. import naming
from ..design import Design
from ..errors import DesignError, HierbayesError
from ..families import get_link
from ..grouping import labels_of
from ..response import evaluate_expression
from .posterior import SAMPLE_DIMS, fixef_draws

KINDS = ("mean", "response", "link")
GROUP_EFFECTS = ("sample_new", "zero_new", "population")


def predict_draws(
    design: Design,
    link: str,
    posterior: xr.Dataset,
    new_data: pd.DataFrame | None = None,
    kind: str = "mean",
    group_effects: str = "sample_new",
    random_seed=None,
) -> xr.DataArray:
    """(chain, draw, obs) draws of the prediction for each row of `new_data` (default: the data)."""
    _check_choice("kind", kind, KINDS)
    _check_choice("group_effects", group_effects, GROUP_EFFECTS)
    rng = np.random.default_rng(random_seed)
    if new_data is None:
        X, labels, offset = design.X, design.row_labels, design.offset
        indices, Zs = [b.index for b in design.blocks], [b.Z for b in design.blocks]
        row_levels = [np.asarray(b.levels, dtype=object)[b.index] for b in design.blocks]
    else:
        encoded = design.evaluate(new_data)
        X, indices, Zs, labels = encoded.X, encoded.index, encoded.Z, encoded.row_labels
        offset = encoded.offset
        row_levels = [labels_of(new_data, b.factors) for b in design.blocks]
    shape = tuple(posterior.sizes[d] for d in SAMPLE_DIMS)
    beta = _flat(fixef_draws(posterior), "term")  # (S, p)
    eta = beta @ X.T  # (S, p) @ (p, n) -> (S, n)
    if offset is not None:  # offset(...) terms: part of η, with no coefficient
        eta += offset
    if group_effects != "population":
        for block, index, Z, levels in zip(design.blocks, indices, Zs, row_levels, strict=True):
            r = _flat(posterior[naming.r(block)], block.level_dim, block.term_dim)  # (S, L, k)
            eta += _block_part(r, index, Z)
            if group_effects == "sample_new" and (index < 0).any():
                eta += _new_levels(block, posterior, index, Z, levels, rng)
    values = _transform(design, link, posterior, eta, kind, new_data, rng)
    return xr.DataArray(
        values.reshape(*shape, -1),
        dims=(*SAMPLE_DIMS, naming.OBS_DIM),
        coords={
            **{d: posterior[d].values for d in SAMPLE_DIMS},
            naming.OBS_DIM: np.asarray(labels),
        },
        name=f"prediction_{kind}",
    )


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise HierbayesError(f"{name}={value!r} is not one of {', '.join(map(repr, valid))}.")


def _flat(array: xr.DataArray, *dims: str) -> np.ndarray:
    """(chain * draw, *dims) numpy array."""
    values = array.transpose(*SAMPLE_DIMS, *dims).to_numpy()
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])


def _block_part(r: np.ndarray, index: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """(S, n): Z_i · r[:, index_i] for seen rows, 0 for unseen ones."""
    seen = index >= 0
    out = np.zeros((r.shape[0], len(index)))
    for k in range(Z.shape[1]):  # one term at a time keeps memory at S × n
        out[:, seen] += r[:, index[seen], k] * Z[seen, k]
    return out


def _new_levels(block, posterior, index, Z, levels, rng) -> np.ndarray:
    """(S, n): effects of unseen levels drawn from N(0, Σ_s), one draw per level and draw s."""
    sd = _flat(posterior[naming.sd(block)], block.term_dim)  # (S, k)
    chol = np.broadcast_to(np.eye(block.n_terms), (sd.shape[0], block.n_terms, block.n_terms))
    if naming.corr(block) in posterior:
        corr = _flat(posterior[naming.corr(block)], block.term_dim, naming.corr_dim(block))
        # A tiny ridge keeps the factorisation defined for correlations at ±1.
        chol = np.linalg.cholesky(corr + 1e-10 * np.eye(block.n_terms))  # (S, k, k)
    unseen = index < 0
    # One code per distinct unseen level (sorted labels, so a seed gives the same draws whatever
    # the row order); rows of the same level share its effect.
    labels, codes = np.unique(levels[unseen].astype(str), return_inverse=True)
    z = rng.standard_normal((sd.shape[0], len(labels), block.n_terms))  # (S, U, k)
    effect = sd[:, None, :] * np.einsum("sij,suj->sui", chol, z)  # (S, U, k): diag(sd) L z
    out = np.zeros((sd.shape[0], len(index)))
    # Row i of level u adds Z_i · effect_u: gather by code, multiply row-wise, sum over terms.
    out[:, unseen] = np.einsum("smk,mk->sm", effect[:, codes, :], Z[unseen])
    return out


def _transform(design, link, posterior, eta, kind, new_data, rng) -> np.ndarray:
    if kind == "link":
        return eta
    mu = get_link(link).inverse(eta)
    if kind == "mean":
        return mu
    return response_draws(design, posterior, mu, new_data, rng)


def _residual_sd(design, posterior, new_data) -> np.ndarray:
    column = design.known_sigma_column
    if column is None:
        return _flat(posterior[naming.SIGMA])[:, None]
    if new_data is None:
        return design.known_sigma[None, :]
    if column not in new_data.columns:
        raise HierbayesError(
            f"This model takes its residual SDs as known (column {column!r}); new data for "
            f"kind='response' need that column too (or use kind='mean')."
        )
    return pd.to_numeric(new_data[column]).to_numpy(dtype=float)[None, :]


def response_draws(design, posterior, mu, new_data, rng) -> np.ndarray:
    """One draw of the response per posterior draw, from the family's distribution."""
    family = design.family
    params = {}
    if family.response == "real":
        params["sigma"] = _residual_sd(design, posterior, new_data)  # (S, 1) or (1, n)
    if family.response == "binomial":
        params["trials"] = _trials(design, new_data)[None, :]
    # Named by family, not looked up: a grouping factor may itself be called "alpha".
    extra = {"student_t": naming.NU, "negative_binomial": naming.ALPHA}.get(family.name)
    if extra is not None:
        params[extra] = _flat(posterior[extra])[:, None]  # (S, 1)
    return family.draw(mu, rng, **params)


def _trials(design: Design, new_data) -> np.ndarray:
    if new_data is None:
        return design.trials.astype(np.int64)
    exprs = design.parsed.response.exprs
    try:
        successes, failures = (evaluate_expression(e, new_data, design.formula) for e in exprs)
    except Exception as err:  # formulaic raises several types for a missing column
        raise DesignError(
            f"Binomial responses for new data need the columns of cbind({', '.join(exprs)}) to "
            f"know the number of trials ({err}); or predict kind='mean' (probability)."
        ) from None
    return (np.asarray(successes) + np.asarray(failures)).astype(np.int64)
