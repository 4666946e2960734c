"""Predictions of a `RemlFit` (lme4's ``predict.merMod``): ``fit.predict(new_data, ...)``.

For row i: ``eta_i = X_i · β̂ + Σ_blocks Z_i · b̂[level_i]`` (+ the formula's offset) with b̂
the conditional modes (``ranef()``), and

- ``group_effects="conditional"`` (default): a level seen in the fit uses its mode; a level not
  seen uses 0, the population value (lme4's ``allow.new.levels = TRUE``): a prediction for a
  typical new group;
- ``group_effects="population"``: the fixed part only (lme4's ``re.form = NA``).

``kind="link"`` (default, lme4's ``type = "link"``) returns ``eta``; ``kind="mean"`` the expected
response, the inverse link of ``eta`` (for binomial the probability per trial, as lme4's
``type = "response"``). For gaussian models the two are the same.

New data are encoded exactly as the fitted data (`Design.evaluate`: the same contrasts, spline
knots and scalings); the unseen levels, per grouping factor, are in ``attrs["unseen_levels"]``,
and a label that differs from a fitted one only by whitespace, case or zeros is warned about.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..arguments import check_choice
from ..links import get_link

GROUP_EFFECTS = ("conditional", "population")
KINDS = ("link", "mean")


def predict_reml(fit, new_data: pd.DataFrame | None = None,
                 group_effects: str = "conditional", kind: str = "link") -> pd.Series:
    """One prediction per row of `new_data` (default: the fitted rows), indexed like it."""
    check_choice(group_effects, "group_effects", GROUP_EFFECTS)
    check_choice(kind, "kind", KINDS)
    design = fit.design
    if new_data is None:
        X, index, Z, rows = design.X, [b.index for b in design.blocks], \
            [b.Z for b in design.blocks], design.row_labels
        unseen, offset = {}, design.offset
    else:
        encoded = design.evaluate(new_data)
        X, index, Z, rows = encoded.X, encoded.index, encoded.Z, encoded.row_labels
        unseen, offset = encoded.unseen_levels, encoded.offset
    eta = X @ np.asarray(fit.beta, float)  # (n, p) @ (p,) -> (n,)
    if offset is not None:  # offset(...) terms: part of η, with no coefficient
        eta = eta + offset
    if group_effects == "conditional":
        for block, level, Zb in zip(design.blocks, index, Z, strict=True):
            eta = eta + _block_part(fit.modes[block.name], level, Zb)
    values = eta if kind == "link" else get_link(fit.link).inverse(eta)
    out = pd.Series(np.asarray(values, float), index=rows, name=f"prediction_{kind}")
    out.attrs["unseen_levels"] = unseen
    out.attrs["group_effects"] = group_effects
    return out


def _block_part(modes: np.ndarray, level: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """(n,): Z_i · modes[level_i] for seen rows, 0 for unseen ones (level -1)."""
    seen = level >= 0
    out = np.zeros(len(level))
    out[seen] = np.einsum("ik,ik->i", Z[seen], modes[level[seen]])  # row-wise dot, (n_seen,)
    return out
