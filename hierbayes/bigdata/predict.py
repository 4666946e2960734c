"""Predictions for a Dask frame: a lazy Dask result, partition by partition.

Each partition is a pandas frame predicted by the fit's own `predict` (`hierbayes.reml.predict`,
`hierbayes.bayes.predict`), so every rule of prediction (unseen levels, encoding, warnings)
is the pandas one. A Bayesian fit gives its per-row summary here (`summary=True`): draws per row
would be (chains × draws) times the rows, which is what a Dask frame is meant to avoid. Each
partition's draws of unseen group effects come from the same `random_seed`.
"""

from __future__ import annotations

import pandas as pd

from ..errors import HierbayesError
from .moments import with_categories


def predict_dask(fit, ddf, **kwargs):
    """`fit.predict(partition, **kwargs)` on every partition of `ddf`: a Dask Series (REML) or
    DataFrame (Bayes summary), computed when asked (``.compute()``, ``.to_parquet(...)``)."""
    bayes = "summary" in kwargs
    if bayes and not kwargs["summary"]:
        raise HierbayesError(
            "On a Dask frame, BayesFit.predict gives one summary row per row (posterior mean, "
            "SD, median, interval): pass summary=True. For draws, predict a pandas frame (a "
            "partition or a sample)."
        )
    categories = getattr(fit.design.moments, "categories", {}) or {}

    def one(part: pd.DataFrame):
        present = {k: v for k, v in categories.items() if k in part.columns}
        return fit.predict(with_categories(part, present), **kwargs)

    if bayes:
        columns = ["estimate", "std_error", "median", "lower", "upper"]
        meta = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    else:
        meta = pd.Series(dtype=float, name=f"prediction_{kwargs.get('kind', 'link')}")
    return ddf.map_partitions(one, meta=meta)
