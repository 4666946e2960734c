"""Gaussian mixed models from data larger than memory: a `dask.dataframe.DataFrame` in place of a
pandas frame (`hb.fit_reml(formula, ddf)`, `hb.fit_bayes(formula, ddf)`).

A Gaussian LMM needs only cross-products (ZᵀZ, ZᵀX, XᵀX, Zᵀy, Xᵀy, yᵀy), whose size is set by the
number of group effects, not by the rows. Two passes over the partitions, each a map-reduce run
by Dask (its threaded scheduler, or a `dask.distributed` cluster when a client is active):

1. `scan`: rows, missing and infinite values per column, the levels of every grouping factor and
   the categories of categorical predictors, and a few sample rows;
2. `moments`: per partition the cross-products of the design, summed.

`build.dask_design` turns them into a `Design` whose rows stay in the Dask frame (`rows`); both
engines start from its `moments` (`hierbayes.reml.layout`, `hierbayes.bayes.marginal`). The
checks of bad input are those of a pandas frame, with the same errors. Dask is imported only when
a Dask frame is given: this package loads without it.
"""

from __future__ import annotations


def is_dask_frame(data) -> bool:
    """Whether `data` is a Dask DataFrame, without importing Dask."""
    module = type(data).__module__ or ""
    return module.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "npartitions") and (
        hasattr(data, "columns"))


def design_for(formula: str, data, family="gaussian", missing: str = "drop",
               known_sigma: str | None = None, check_nlevels: str = "error"):
    """`make_design` for a pandas frame, `build.dask_design` for a Dask frame: the one place
    where the fitting functions choose (Dask is imported only in the second case)."""
    if is_dask_frame(data):
        from .build import dask_design

        return dask_design(formula, data, family, missing, known_sigma, check_nlevels)
    from ..design import make_design

    return make_design(formula, data, family, missing, known_sigma=known_sigma,
                       check_nlevels=check_nlevels)
