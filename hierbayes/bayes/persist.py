"""Save a `BayesFit` to one netCDF file and load it back, ready to summarise and predict again.

The file is the fit's `DataTree` (posterior, sample_stats, log_likelihood, ...) plus:

- group ``hierbayes_data``: the design's data (the used columns of the used rows, index as
  coordinate ``row``); categorical columns are stored as their labels with their categories and
  order in attributes, so that level order and reference levels come back unchanged;
- root attribute ``hierbayes``: JSON with the formula, family, link, missing-value policy, the
  user's prior overrides, the full prior table and the sampler settings.

`hierbayes.bayes.restore.load` rebuilds the design, the priors and the PyMC model from these,
so a loaded fit gives the same tables and, with the same seed, the same predictions. Needs
h5netcdf (a dependency).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

DATA_GROUP = "hierbayes_data"
META_KEY = "hierbayes"
FORMAT_VERSION = 1


def save_fit(fit, path) -> None:
    tree = _netcdf_safe(fit.idata.copy())
    tree[DATA_GROUP] = xr.DataTree(_frame_to_dataset(fit.design.data))
    meta = {
        "format_version": FORMAT_VERSION,
        "formula": fit.formula,
        "family": fit.family,
        "link": fit.link,
        "missing": fit.spec.missing,
        "known_sigma": fit.design.known_sigma_column,
        "priors": {name: p.to_dict() for name, p in fit.priors.overrides.items()},
        "priors_table": {e.name: e.prior.to_dict() for e in fit.priors.entries},
        "settings": fit.settings,
    }
    tree.attrs = {**tree.attrs, META_KEY: json.dumps(meta)}
    tree.to_netcdf(Path(path))


def _netcdf_safe(tree: xr.DataTree) -> xr.DataTree:
    """netCDF cannot store Python objects such as None: object variables become strings."""
    for node in tree.subtree:
        for name, var in node.dataset.data_vars.items():
            if var.dtype == object:
                text = np.array(["" if v is None else str(v) for v in var.values.ravel()])
                node[name] = var.copy(data=text.reshape(var.shape).astype(object))
    return tree


def _frame_to_dataset(frame: pd.DataFrame) -> xr.Dataset:
    variables = {}
    for name, column in frame.items():
        attrs = {}
        if isinstance(column.dtype, pd.CategoricalDtype):
            attrs = {
                "categories": json.dumps([str(c) for c in column.cat.categories]),
                "ordered": int(column.cat.ordered),
            }
            values = column.astype(str).to_numpy(dtype=object)
        elif pd.api.types.is_string_dtype(column) or column.dtype == object:
            values = column.astype(str).to_numpy(dtype=object)
        else:
            values = column.to_numpy()
        variables[str(name)] = xr.Variable("row", values, attrs=attrs)
    index = np.asarray(frame.index)
    if index.dtype == object:
        index = index.astype(str).astype(object)
    return xr.Dataset(variables, coords={"row": index})


def dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    columns = {}
    for name, var in ds.data_vars.items():
        values = var.values
        if "categories" in var.attrs:
            categories = json.loads(var.attrs["categories"])
            columns[name] = pd.Categorical(
                values.astype(str), categories=categories, ordered=bool(var.attrs["ordered"])
            )
        else:
            columns[name] = values
    return pd.DataFrame(columns, index=pd.Index(ds["row"].values))
