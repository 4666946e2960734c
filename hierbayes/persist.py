"""Save a `BayesFit` to one netCDF file and load it back, ready to summarise and predict again.

The file is the fit's `DataTree` (posterior, sample_stats, log_likelihood, ...) plus:

- group ``hierbayes_data``: the design's data (the used columns of the used rows, index as
  coordinate ``row``); categorical columns are stored as their labels with their categories and
  order in attributes, so that level order and reference levels come back unchanged;
- root attribute ``hierbayes``: JSON with the formula, family, link, missing-value policy, the
  user's prior overrides, the full prior table and the sampler settings.

`load` rebuilds the design, the priors and the PyMC model from these, so a loaded fit gives the
same tables and, with the same seed, the same predictions. Needs h5netcdf (a dependency).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataWarning, HierbayesError
from .priors import Prior
from .sampling import model_from_design

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


def load(path):
    """A `BayesFit` from a file written by `BayesFit.save`."""
    from .bayes import BayesFit
    from .design import make_design

    if not Path(path).is_file():
        raise HierbayesError(
            f"No file {str(path)!r} to load a fit from (hb.load reads what BayesFit.save wrote; "
            "shipped data sets are loaded with hierbayes.datasets.load)."
        )
    with xr.open_datatree(Path(path)) as opened:
        tree = opened.load()
    if META_KEY not in tree.attrs or DATA_GROUP not in tree.children:
        raise HierbayesError(f"{path} was not written by BayesFit.save (no hierbayes metadata).")
    meta = json.loads(tree.attrs[META_KEY])
    data = _dataset_to_frame(tree[DATA_GROUP].to_dataset())
    # The stored rows are the design's rows: nothing is missing, so nothing is dropped again.
    design = make_design(
        meta["formula"], data, meta["family"], meta["missing"], known_sigma=meta.get("known_sigma")
    )
    overrides = {name: Prior.from_dict(spec) for name, spec in meta["priors"].items()}
    spec = model_from_design(design, overrides, meta["link"], meta["missing"])
    stored = {name: Prior.from_dict(p) for name, p in meta["priors_table"].items()}
    if dict(spec.priors) != stored:
        warnings.warn(
            f"The priors rebuilt from {path} differ from those saved with the fit (a different "
            "hierbayes version?); the posterior draws are those saved.",
            DataWarning,
            stacklevel=2,
        )
    groups = {name: node for name, node in tree.children.items() if name != DATA_GROUP}
    idata = xr.DataTree.from_dict({f"/{name}": node.to_dataset() for name, node in groups.items()})
    return BayesFit(spec, idata, meta["settings"])


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


def _dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
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
