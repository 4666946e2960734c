"""Posterior draws laid out like the tidy tables, and their summaries.

Each ``*_draws`` function returns an `xarray.DataArray` with dims ``(chain, draw, <row>)`` whose
``<row>`` axis is exactly the rows of the matching tidy table, in the same order, with the table's
key columns as coordinates:

- `fixef_draws`   dim ``term``: coordinate = fixed-effect names;
- `varcorr_draws` dim ``component``: coordinates ``group``, ``term1``, ``term2`` ("" on SD rows),
  ``kind`` ("sd", "corr" or "residual"), ``variable`` (the posterior variable it comes from) and
  ``block`` (`Block.name`, "Residual" for the residual row);
- `ranef_draws`   dim ``effect``: coordinates ``group``, ``level``, ``term`` and ``block``, rows
  level-major (each level's terms together), as the REML side orders them.

The tidy tables are summaries of these draws, so comparison code that needs per-draw values can
use them directly and line them up with the tables row by row.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import naming
from ..design import Design
from ..tidy import fixef_frame, ranef_frame, varcorr_frame

SAMPLE_DIMS = naming.SAMPLE_DIMS


def fixef_draws(posterior: xr.Dataset) -> xr.DataArray:
    if naming.BETA not in posterior:  # a model without fixed effects, e.g. "y ~ 0 + (1 | g)"
        return _stack([], [], "term", (), posterior).assign_coords(term=[])
    beta = posterior[naming.BETA].transpose(*SAMPLE_DIMS, naming.FIXED_DIM)
    return beta.rename({naming.FIXED_DIM: "term"}).rename(None)


def varcorr_draws(design: Design, posterior: xr.Dataset) -> xr.DataArray:
    parts, rows = [], []
    for block in design.blocks:
        sd = _values(posterior[naming.sd(block)], block.term_dim)  # (C, D, k)
        parts.append(sd)
        rows.extend(
            (block.group, term, "", "sd", naming.sd(block), block.name) for term in block.terms
        )
        if naming.corr(block) in posterior:
            corr = _values(posterior[naming.corr(block)], block.term_dim, naming.corr_dim(block))
            upper = np.triu_indices(block.n_terms, k=1)
            parts.append(corr[..., upper[0], upper[1]])  # (C, D, pairs)
            rows.extend(
                (
                    block.group,
                    block.terms[i],
                    block.terms[j],
                    "corr",
                    naming.corr(block),
                    block.name,
                )
                for i, j in zip(*upper, strict=True)
            )
    if naming.SIGMA in posterior and design.family.name in ("gaussian", "student_t"):
        parts.append(_values(posterior[naming.SIGMA])[..., None])
        rows.append((naming.RESIDUAL, "", "", "residual", naming.SIGMA, naming.RESIDUAL))
    names = ("group", "term1", "term2", "kind", "variable", "block")
    return _stack(parts, rows, "component", names, posterior)


def ranef_draws(design: Design, posterior: xr.Dataset) -> xr.DataArray:
    parts, rows = [], []
    for block in design.blocks:
        # Rows level-major (level, then term), as the REML side's ranef().
        r = _values(posterior[naming.r(block)], block.level_dim, block.term_dim)  # (C, D, L, k)
        parts.append(r.reshape(*r.shape[:2], -1))  # (C, D, L * k)
        rows.extend(
            (block.group, level, term, block.name) for level in block.levels for term in block.terms
        )
    return _stack(parts, rows, "effect", ("group", "level", "term", "block"), posterior)


def _values(array: xr.DataArray, *dims: str) -> np.ndarray:
    """(chain, draw, *dims) numpy array."""
    return array.transpose(*SAMPLE_DIMS, *dims).to_numpy()


def _stack(parts, rows, dim, names, posterior: xr.Dataset) -> xr.DataArray:
    """(chain, draw, m_i) arrays joined along a new last dimension `dim`, labelled by `rows`."""
    shape = tuple(posterior.sizes[d] for d in SAMPLE_DIMS)
    values = np.concatenate(parts, axis=-1) if parts else np.zeros((*shape, 0))
    coords = {d: posterior[d].values for d in SAMPLE_DIMS}
    array = xr.DataArray(values, dims=(*SAMPLE_DIMS, dim), coords=coords)
    return _label(array, rows, dim, names)


def _label(array: xr.DataArray, rows, dim, names) -> xr.DataArray:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    coords = {
        name: (dim, np.array(col, dtype=object)) for name, col in zip(names, columns, strict=True)
    }
    return array.assign_coords(coords).rename(None)


def summarize(draws: xr.DataArray, ci_prob: float) -> dict[str, np.ndarray]:
    """Posterior mean, SD, median and equal-tailed `ci_prob` interval of each row."""
    (dim,) = [d for d in draws.dims if d not in SAMPLE_DIMS]
    values = draws.transpose(*SAMPLE_DIMS, dim).to_numpy()
    flat = values.reshape(values.shape[0] * values.shape[1], values.shape[2])  # (S, rows)
    tail = (1.0 - ci_prob) / 2.0
    lower, median, upper = np.quantile(flat, [tail, 0.5, 1.0 - tail], axis=0)
    return {
        "estimate": flat.mean(axis=0),
        "std_error": flat.std(axis=0, ddof=1),
        "median": median,
        "lower": lower,
        "upper": upper,
    }


def interval_label(ci_prob: float) -> str:
    return f"{100 * ci_prob:g}% equal-tailed credible interval"


def fixef_table(posterior: xr.Dataset, ci_prob: float):
    draws = fixef_draws(posterior)
    s = summarize(draws, ci_prob)
    frame = fixef_frame(
        draws["term"].values,
        s["estimate"],
        s["std_error"],
        s["lower"],
        s["upper"],
        interval_label(ci_prob),
    )
    frame["median"] = s["median"]
    return frame


def varcorr_table(design: Design, posterior: xr.Dataset, ci_prob: float):
    draws = varcorr_draws(design, posterior)
    s = summarize(draws, ci_prob)
    rows = []
    for k in range(draws.sizes["component"]):
        term2 = str(draws["term2"].values[k])
        rows.append(
            {
                "group": str(draws["group"].values[k]),
                "term1": str(draws["term1"].values[k]) or None,
                "term2": term2 or None,
                "estimate": s["estimate"][k],
                "std_error": s["std_error"][k],
                "median": s["median"][k],
                "lower": s["lower"][k],
                "upper": s["upper"][k],
                "block": str(draws["block"].values[k]),
            }
        )
    frame = varcorr_frame(rows, interval_label(ci_prob))
    if not rows:  # no group-level SDs and no residual SD: the extras still exist
        frame["median"], frame["block"] = np.zeros(0), np.zeros(0, dtype=object)
    return frame


def ranef_table(design: Design, posterior: xr.Dataset, ci_prob: float):
    draws = ranef_draws(design, posterior)
    s = summarize(draws, ci_prob)
    frame = ranef_frame(
        draws["group"].values.astype(str),
        draws["level"].values.astype(str),
        draws["term"].values.astype(str),
        s["estimate"],
        s["std_error"],
        s["lower"],
        s["upper"],
        interval_label(ci_prob),
    )
    frame["median"] = s["median"]
    frame["block"] = draws["block"].values.astype(str)
    return frame
