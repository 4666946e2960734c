"""Save a `BayesFit` to one netCDF file and load it back, ready to summarise and predict again.

The file is the fit's `DataTree` (posterior, sample_stats, log_likelihood, ...) plus:

- group ``hierbayes_data``: the design's data (the used columns of the used rows, index as
  coordinate ``row``); categorical columns are stored as their labels with their categories and
  order in attributes, so that level order and reference levels come back unchanged;
- root attribute ``hierbayes``: JSON with the format version, the formula, family, link,
  missing-value policy, the user's prior overrides, the full prior table, the sampler settings
  and a SHA-256 `checksum` of every variable and coordinate of every group (a truncated or
  bit-flipped file is refused on load instead of read as wrong draws).

The file is written atomically (`hierbayes.atomic`): a save killed halfway leaves the previous
file intact.

`hierbayes.bayes.restore.load` rebuilds the design, the priors and the PyMC model from these,
so a loaded fit gives the same tables and, with the same seed, the same predictions. Needs
h5netcdf (a dependency).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import xarray as xr

from ..arguments import check_output_file
from ..atomic import write_via
from ..bigdata.rows import RowsNotInMemory

DATA_GROUP = "hierbayes_data"
META_KEY = "hierbayes"
FORMAT_VERSION = 2  # 2: with checksum; 1 (no checksum) is still read


def save_fit(fit, path) -> None:
    if fit.design.moments is not None:
        raise RowsNotInMemory(
            "A fit from a Dask frame cannot be saved by BayesFit.save: hb.load rebuilds the "
            "design from the saved rows, and this fit has none. Keep the posterior with "
            "fit.idata.to_netcdf(path), or refit from the Dask frame."
        )
    path = check_output_file(path, "BayesFit.save's path")
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
        "checksum": checksum(tree),
    }
    tree.attrs = {**tree.attrs, META_KEY: json.dumps(meta)}
    write_via(path, tree.to_netcdf)


def checksum(tree: xr.DataTree) -> str:
    """SHA-256 of the names, shapes and values of every variable and coordinate in every group.

    Values are hashed in a form netCDF gives back unchanged (numbers as float64, text as UTF-8),
    so the sum of a tree equals the sum of the same tree read back from its file.
    """
    digest = hashlib.sha256()
    for node in sorted(tree.subtree, key=lambda n: n.path):
        ds = node.to_dataset(inherit=False)
        for name in sorted(map(str, ds.variables)):
            var = ds.variables[name]
            digest.update(f"{node.path}/{name}{var.dims}{var.shape}".encode())
            digest.update(_canonical_bytes(var.values))
    return digest.hexdigest()


def _canonical_bytes(values: np.ndarray) -> bytes:
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return np.ascontiguousarray(values, dtype="<f8").tobytes()
    if values.dtype.kind == "c":
        return np.ascontiguousarray(values, dtype="<c16").tobytes()
    if values.dtype.kind in "mM":
        return np.ascontiguousarray(values.astype("<i8")).tobytes()
    text = ["" if v is None else v.decode() if isinstance(v, bytes) else str(v)
            for v in values.ravel()]
    return "\x00".join(text).encode("utf-8", "surrogatepass")


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
