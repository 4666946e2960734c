"""`load`: a `BayesFit` back from the file `BayesFit.save` wrote (`hierbayes.bayes.persist`).

A file may be truncated, corrupted or written by someone else, so nothing in it is trusted until
checked; every failure is a `HierbayesError` naming the file and the problem:

1. it opens as netCDF and holds the hierbayes metadata and data group;
2. the metadata is JSON with every key of the right type and a known format version;
3. the checksum of the stored variables matches the one saved (format 2 on);
4. the stored formula passes the allow-list and the design, priors and model rebuild;
5. the posterior has every variable of the rebuilt model, with its dimensions and coordinates,
   and as many chains and draws as the settings say.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .. import naming
from ..arguments import as_path
from ..design import make_design
from ..errors import DataWarning, HierbayesError, LoadError
from .fit import BayesFit
from .model import model_from_design
from .persist import DATA_GROUP, FORMAT_VERSION, META_KEY, checksum, dataset_to_frame
from .priors import Prior

READABLE_VERSIONS = (1, FORMAT_VERSION)
_META_TYPES = {
    "format_version": int,
    "formula": str,
    "family": str,
    "link": str,
    "missing": str,
    "known_sigma": (str, type(None)),
    "priors": dict,
    "priors_table": dict,
    "settings": dict,
}
_SETTINGS_TYPES = {"draws": int, "tune": int, "chains": int, "random_seed": int, "sampler": str}


def load(path):
    """A `BayesFit` from a file written by `BayesFit.save` (checked as the module says)."""
    path = as_path(path, "hb.load's path")
    if not path.is_file():
        raise LoadError(
            f"No file {str(path)!r} to load a fit from (hb.load reads what BayesFit.save wrote; "
            "shipped data sets are loaded with hierbayes.datasets.load)."
        )
    tree = _read(path)
    meta = _metadata(tree, path)
    if meta["format_version"] >= 2 and checksum(tree) != meta["checksum"]:
        raise LoadError(
            f"{path}: the stored draws do not match their checksum: the file is corrupted "
            "(bit flips, an interrupted copy). Restore it from a copy or fit again."
        )
    spec, stored_priors = _rebuild(tree, meta, path)
    groups = {name: node for name, node in tree.children.items() if name != DATA_GROUP}
    idata = xr.DataTree.from_dict({f"/{name}": node.to_dataset() for name, node in groups.items()})
    _add_correlation_factors(idata, spec, path)
    _check_posterior(idata, spec.model, meta["settings"], path)
    if dict(spec.priors) != stored_priors:
        warnings.warn(
            f"The priors rebuilt from {path} differ from those saved with the fit (a different "
            "hierbayes version?); the posterior draws are those saved.",
            DataWarning,
            stacklevel=2,
        )
    return BayesFit(spec, idata, meta["settings"])


def _read(path: Path) -> xr.DataTree:
    try:
        with xr.open_datatree(path) as opened:
            return opened.load()
    except Exception as err:  # h5py/netCDF raise many types for a damaged file
        raise LoadError(
            f"{path}: not a readable netCDF file written by BayesFit.save (truncated, corrupted "
            f"or another format: {type(err).__name__})."
        ) from None


def _metadata(tree: xr.DataTree, path: Path) -> dict:
    if META_KEY not in tree.attrs or DATA_GROUP not in tree.children:
        raise LoadError(f"{path} was not written by BayesFit.save (no hierbayes metadata).")
    try:
        meta = json.loads(tree.attrs[META_KEY])
    except (TypeError, ValueError):
        raise LoadError(f"{path}: its hierbayes metadata is not valid JSON (corrupted).") from None
    if not isinstance(meta, dict):
        raise LoadError(f"{path}: its hierbayes metadata is not a JSON object (corrupted).")
    version = meta.get("format_version")
    if not _is(version, int) or version not in READABLE_VERSIONS:
        raise LoadError(
            f"{path}: format_version {version!r} is not one this hierbayes reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); it was written by another version."
        )
    types = {**_META_TYPES, **({"checksum": str} if version >= 2 else {})}
    _check_types(meta, types, path, "metadata")
    _check_types(meta["settings"], _SETTINGS_TYPES, path, "settings")
    if meta["missing"] not in ("drop", "raise"):
        raise LoadError(f"{path}: metadata 'missing' is {meta['missing']!r}, not drop or raise.")
    return meta


def _check_types(table: dict, types: dict, path: Path, what: str) -> None:
    for key, kind in types.items():
        if key not in table:
            raise LoadError(f"{path}: the {what} lack the key {key!r} (corrupted or foreign file).")
        if not _is(table[key], kind):
            raise LoadError(
                f"{path}: {what} {key!r} is {table[key]!r}, not of type "
                f"{getattr(kind, '__name__', 'str or None')} (corrupted or foreign file)."
            )


def _is(value, kind) -> bool:
    return isinstance(value, kind) and not (isinstance(value, bool) and kind is int)


def _rebuild(tree: xr.DataTree, meta: dict, path: Path):
    """(model, stored prior table) from the stored formula, data and priors; errors name the
    file."""
    try:
        data = dataset_to_frame(tree[DATA_GROUP].to_dataset())
        # The stored rows are the design's rows: nothing is missing, so nothing is dropped again.
        design = make_design(
            meta["formula"], data, meta["family"], meta["missing"], known_sigma=meta["known_sigma"]
        )
        overrides = {name: Prior.from_dict(spec) for name, spec in meta["priors"].items()}
        spec = model_from_design(design, overrides, meta["link"], meta["missing"])
        stored = {name: Prior.from_dict(p) for name, p in meta["priors_table"].items()}
    except HierbayesError as err:
        raise type(err)(f"{path}: the saved model cannot be rebuilt: {err}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise LoadError(
            f"{path}: the saved model cannot be rebuilt ({type(err).__name__}: {err})."
        ) from None
    return spec, stored


def _add_correlation_factors(idata: xr.DataTree, spec, path: Path) -> None:
    """``chol_<b>`` from ``corr_<b>`` for fits saved before the correlation's Cholesky factor
    became a free variable of the model (their posterior has the correlations only)."""
    if "posterior" not in idata.children:
        return
    posterior = idata["posterior"].to_dataset()
    added = {}
    for block in spec.design.blocks:
        chol, corr = naming.chol(block), naming.corr(block)
        if chol in spec.model.named_vars and chol not in posterior and corr in posterior:
            try:
                factor = np.linalg.cholesky(posterior[corr].values)
            except np.linalg.LinAlgError:
                raise LoadError(f"{path}: the draws of {corr!r} are not correlation matrices "
                                "(corrupted or edited file).") from None
            added[chol] = posterior[corr].copy(data=factor)
    if added:
        idata["posterior"] = xr.DataTree(posterior.assign(added))


def _check_posterior(idata: xr.DataTree, model, settings: dict, path: Path) -> None:
    """Every free and deterministic variable of `model`, with its dims and coordinates."""
    if "posterior" not in idata.children or "sample_stats" not in idata.children:
        raise LoadError(f"{path}: the file has no posterior or sample_stats group.")
    posterior = idata["posterior"].to_dataset()
    sizes = tuple(posterior.sizes.get(d) for d in naming.SAMPLE_DIMS)
    if sizes != (settings["chains"], settings["draws"]):
        raise LoadError(
            f"{path}: the posterior has {sizes[0]} chains × {sizes[1]} draws, but its settings "
            f"say {settings['chains']} × {settings['draws']} (corrupted or edited file)."
        )
    for var in [*model.free_RVs, *model.deterministics]:
        if var.name not in posterior:
            raise LoadError(
                f"{path}: the posterior lacks the variable {var.name!r} that its stored formula "
                "needs: the formula and the draws do not match (edited or foreign file)."
            )
        _check_dims(posterior, var.name, model, path)


def _check_dims(posterior: xr.Dataset, name: str, model, path: Path) -> None:
    named = tuple(model.named_vars_to_dims.get(name) or ())
    dims = posterior[name].dims
    expected = (*naming.SAMPLE_DIMS, *named)
    if named and (len(dims) != len(expected) or any(
            want is not None and have != want for have, want in zip(dims, expected, strict=True))):
        raise LoadError(
            f"{path}: the posterior variable {name!r} has dims {dims}, the stored formula "
            f"needs {expected}: the formula and the draws do not match."
        )
    for dim in named:
        if dim is None or dim not in model.coords:
            continue
        stored = [str(v) for v in np.asarray(posterior[dim].values).tolist()]
        if stored != [str(v) for v in model.coords[dim]]:
            shown = ", ".join(stored[:5]) + (", ..." if len(stored) > 5 else "")
            raise LoadError(
                f"{path}: the coordinate {dim!r} of {name!r} ({shown}) does not match the "
                "stored formula and data."
            )
